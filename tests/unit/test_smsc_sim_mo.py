"""The simulated SMSC's MO (``tests.smsc_sim_rig``), and its pure pieces: receipt text and
fields, MO parts, settings."""

from __future__ import annotations

import pytest

from connectors.sim.mo import InvalidMO, mo_parts
from connectors.sim.receipts import (
    DELIVERED,
    UNDELIVERABLE,
    message_text,
    receipt_fields,
    receipt_text,
    wants_receipt,
)
from connectors.smpp.defs import ESME_RX_T_APPN
from connectors.smpp.text import gsm_decode, gsm_encode, parse_udh
from connectors.smsc_sim import SimSettings
from tests.smsc_sim_rig import T0, Esme, Harness, result


# --- MO ----------------------------------------------------------------------------------------
def test_mo_without_a_receiver_reports_it():
    h = Harness()
    h.bound("bind_transmitter")
    assert result(h.sim.inject_mo("46701234567", "72550", "hi")) == "no receiver bound"


def test_mo_in_gsm_reaches_the_receiver():
    h = Harness()
    conn = h.bound("bind_receiver")
    d = h.sim.inject_mo("46701234567", "72550", "DEMO hello {€}")
    conn.pump.flush()
    assert result(d) == "delivered" and h.sim.mo_acked == 1
    [mo] = conn.esme.received
    p = mo.params
    assert (p["source_addr_ton"], p["source_addr_npi"], p["source_addr"]) == (1, 1, "46701234567")
    assert (p["destination_addr"], p["esm_class"], p["data_coding"]) == ("72550", 0, 0)
    assert p["short_message"] == gsm_encode("DEMO hello {€}")


def test_long_ucs2_mo_comes_in_udh_parts_that_reassemble():
    h = Harness()
    conn = h.bound()
    text = "Привет! " * 20  # 160 UCS-2 characters: 3 parts of at most 67
    d = h.sim.inject_mo("46701234567", "72550", text)
    conn.pump.flush()
    assert result(d) == "delivered"
    parts = conn.esme.received
    assert [(p.params["esm_class"], p.params["data_coding"]) for p in parts] == [(0x40, 8)] * 3
    infos, bodies = zip(*(parse_udh(p.params["short_message"]) for p in parts))
    assert [(i.total, i.seq) for i in infos] == [(3, 1), (3, 2), (3, 3)]
    assert len({i.ref for i in infos}) == 1
    assert b"".join(bodies).decode("utf-16-be") == text
    assert h.sim.mo_acked == 3


def test_refused_mo_reports_the_status():
    h = Harness()
    conn = h.bound(esme=Esme(status=ESME_RX_T_APPN))
    d = h.sim.inject_mo("46701234567", "72550", "hi")
    conn.pump.flush()
    assert result(d) == "refused: ESME_RX_T_APPN" and h.sim.mo_acked == 0


def test_mo_with_a_bad_address_raises_at_once():
    h = Harness()
    with pytest.raises(InvalidMO) as info:
        h.sim.inject_mo("4670123456789012345678", "72550", "hi")
    assert info.value.field == "from"


# --- pure pieces -------------------------------------------------------------------------------
def test_receipt_text_in_the_standard_form():
    assert receipt_text("00ff", UNDELIVERABLE, T0, T0 + 86400, "Ünïcode ok") == (
        "id:00ff sub:001 dlvrd:000 submit date:2311142213 done date:2311152213"
        " stat:UNDELIV err:001 text:?n?code ok")


def test_receipt_fields_swap_the_addresses():
    submit = {"source_addr_ton": 5, "source_addr_npi": 0, "source_addr": "Acme",
              "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": "4670"}
    params, tlvs = receipt_fields(submit, "7", DELIVERED, T0, T0, "x")
    assert (params["source_addr"], params["destination_addr"]) == ("4670", "Acme")
    assert tlvs == {"receipted_message_id": "7", "message_state": 2}


@pytest.mark.parametrize("payload, data_coding, esm_class, text", [
    (gsm_encode("a€b"), 0, 0, "a€b"),
    ("Жж".encode("utf-16-be"), 8, 0, "Жж"),
    ("é".encode("latin-1"), 3, 0, "é"),
    (bytes((5, 0, 3, 1, 2, 1)) + b"abc", 0, 0x40, "abc"),
    (bytes((9, 0)), 0, 0x40, gsm_decode(bytes((9, 0)))),  # broken UDH: shown as is
])
def test_message_text_decodes_per_data_coding_without_the_udh(payload, data_coding, esm_class,
                                                              text):
    assert message_text(payload, data_coding, esm_class) == text


def test_wants_receipt_reads_only_the_two_low_bits():
    assert [wants_receipt(rd, DELIVERED) for rd in (0, 1, 2, 3, 4, 5)] == [
        False, True, False, True, False, True]
    assert [wants_receipt(rd, UNDELIVERABLE) for rd in (0, 1, 2, 3)] == [False, True, True, False]


def test_mo_parts_single_gsm_and_ucs2():
    [gsm] = mo_parts("46701234567", "72550", "Hi @ you", ref=7)
    assert (gsm["data_coding"], gsm["esm_class"], gsm["short_message"]) == (
        0, 0, gsm_encode("Hi @ you"))
    [ucs2] = mo_parts("46701234567", "72550", "Hi ✓", ref=7)
    assert (ucs2["data_coding"], ucs2["short_message"]) == (8, "Hi ✓".encode("utf-16-be"))


def test_mo_parts_long_gsm_uses_the_reference_modulo_256():
    parts = mo_parts("46701234567", "72550", "x" * 200, ref=257)
    assert [p["short_message"][:6] for p in parts] == [bytes((5, 0, 3, 1, 2, 1)),
                                                       bytes((5, 0, 3, 1, 2, 2))]
    assert [len(p["short_message"]) for p in parts] == [6 + 153, 6 + 47]


@pytest.mark.parametrize("sender, to, text, field", [
    ("", "72550", "hi", "from"), ("46701234567", "x" * 21, "hi", "to"),
    ("46701234567", "72550", "bad \ud800", "text"),
])
def test_mo_parts_name_the_bad_field(sender, to, text, field):
    with pytest.raises(InvalidMO) as info:
        mo_parts(sender, to, text, ref=0)
    assert info.value.field == field


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="message_id_format"):
        SimSettings(message_id_format="uuid")
    with pytest.raises(ValueError, match="receipt_delay"):
        SimSettings(receipt_delay=-1)
    assert SimSettings(unreachable_prefixes=["46"]).unreachable_prefixes == ("46",)
