"""What the gateway sends customers' ESMEs (``deliver_fields``): the receipt deliver_sm of SPEC §13
field by field, read back with the gateway's own receipt parser; MO deliver_sm; query_sm answers."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.api import ReceiptOutcome
from connectors.smpp.addressing import source_address
from connectors.smpp.codec import PDU, EncodeError, decode, encode
from connectors.smpp.deliver_fields import (
    QueryAnswer,
    final_state,
    message_state,
    mo,
    query_sm_resp_params,
    receipt,
    receipt_text,
)
from connectors.smpp.receipts import parse_receipt_text, receipt_facts
from connectors.smpp.text import gsm_decode
from connectors.smpp.times import parse_time

SUBMITTED = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
DONE = SUBMITTED + 125


@pytest.mark.parametrize("status, cancelled, stat, state", [
    ("delivered", False, "DELIVRD", 2),
    ("failed", False, "UNDELIV", 5),
    ("expired", False, "EXPIRED", 3),
    ("stopped", True, "DELETED", 4),
    ("stopped", False, "REJECTD", 8),
    ("rejected", False, "REJECTD", 8),
    ("unknown", False, "UNKNOWN", 7),
])
def test_final_state_table(status, cancelled, stat, state):
    assert final_state(status, cancelled) == (stat, state)
    assert message_state(status, cancelled) == state


@pytest.mark.parametrize("status", ["scheduled", "pending_approval", "paused", "queued",
                                    "submitted", "buffered"])
def test_statuses_not_final_are_enroute_and_get_no_receipt(status):
    assert message_state(status) == 1
    with pytest.raises(ValueError):
        final_state(status)


def test_receipt_fields():
    item = receipt("m-42", "delivered", to="46701234567", sender="Acme",
                   submitted_at=SUBMITTED, done_at=DONE, text="Hello there, this is long")
    params, tlvs = item.params, item.tlvs
    assert (params["source_addr_ton"], params["source_addr_npi"], params["source_addr"]) == (
        1, 1, "46701234567")
    assert (params["dest_addr_ton"], params["dest_addr_npi"], params["destination_addr"]) == (
        5, 0, "Acme")
    assert (params["esm_class"], params["data_coding"]) == (0x04, 0)
    assert params["short_message"] == (
        b"id:m-42 sub:001 dlvrd:001 submit date:2311142213 done date:2311142215 stat:DELIVRD"
        b" err:000 text:Hello there, this is")
    assert tlvs == {"receipted_message_id": "m-42", "message_state": 2}
    assert (item.kind, item.ref) == ("receipt", "m-42")


@pytest.mark.parametrize("sender, ton_npi", [("72550", (3, 0)), ("+46709876543", (1, 1))])
def test_receipt_goes_back_to_a_numeric_sender(sender, ton_npi):
    item = receipt("1", "failed", to="46701234567", sender=sender, submitted_at=SUBMITTED,
                   done_at=DONE, text="x", err="34")
    params = item.params
    assert (params["dest_addr_ton"], params["dest_addr_npi"]) == ton_npi
    assert params["destination_addr"] == sender.removeprefix("+")
    assert b" dlvrd:000 " in params["short_message"]
    assert b" stat:UNDELIV err:034 " in params["short_message"]


@pytest.mark.parametrize("err, shown", [("", "000"), (7, "007"), ("1", "001"), ("0x1a", "000"),
                                        ("255", "255"), ("999", "999"), ("1234", "999"), ("0042", "042"),
                                        (10**6, "999")])
def test_err_is_three_digits(err, shown):
    text = receipt_text("1", "UNDELIV", delivered=False, submitted_at=SUBMITTED, done_at=DONE,
                        err=err, text="")
    assert f" err:{shown} " in text


@pytest.mark.parametrize("at, shown", [
    (SUBMITTED, "2311142213"), (SUBMITTED - 20.001, "2311142212"), (SUBMITTED - 20, "2311142213"),
    (SUBMITTED + 39.999, "2311142213"), (SUBMITTED + 40, "2311142214"), (0, "7001010000"), (59.9, "7001010000"),
    (1_700_000_040, "2311142214"), (4_102_444_799.99, "9912312359"),
])
def test_receipt_dates_are_the_utc_minute_the_time_falls_in(at, shown):
    text = receipt_text("1", "DELIVRD", delivered=True, submitted_at=at, done_at=at, err="", text="")
    assert f" submit date:{shown} done date:{shown} " in text


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False) | st.integers(0, 4_102_444_800),
       st.floats(min_value=0, max_value=1e7))
def test_receipt_dates_are_what_strftime_writes_of_gmtime(submitted_at, later):
    """The dates are remembered by the minute: each is still exactly the YYMMDDhhmm of
    ``time.gmtime`` (which drops a fraction downwards), for any time."""
    done_at = submitted_at + later
    text = receipt_text("1", "DELIVRD", delivered=True, submitted_at=submitted_at, done_at=done_at, err="",
                        text="")
    written = [time.strftime("%y%m%d%H%M", time.gmtime(t)) for t in (submitted_at, done_at)]
    assert f" submit date:{written[0]} done date:{written[1]} " in text


def test_receipt_text_shows_only_characters_ascii_and_gsm_agree_on():
    text = receipt_text("1", "DELIVRD", delivered=True, submitted_at=SUBMITTED, done_at=DONE,
                        err=0, text="Pay $5 @ café_[x]!")
    assert text.endswith(" text:Pay ?5 ? caf???x?!")
    body = text.encode("ascii")
    assert gsm_decode(body) == text  # read as GSM 03.38, the same text


def test_the_gateways_own_parser_reads_our_receipt():
    item = receipt("0a1b2c", "expired", to="46701234567", sender="Acme",
                   submitted_at=SUBMITTED, done_at=DONE, text="x")
    facts = receipt_facts("client", item.params["short_message"].decode(), item.tlvs)
    assert facts.outcome is ReceiptOutcome.EXPIRED and facts.raw_id == "0a1b2c"
    fields = parse_receipt_text(item.params["short_message"].decode())
    assert (fields["submit_date"], fields["done_date"]) == ("2311142213", "2311142215")


def test_receipt_encodes_to_a_deliver_sm_that_decodes_the_same():
    item = receipt("7", "unknown", to="46701234567", sender="Acme", submitted_at=SUBMITTED,
                   done_at=DONE, text="y")
    pdu = decode(encode(PDU("deliver_sm", 3, params=item.params, tlvs=item.tlvs)))
    assert pdu.tlvs == {"receipted_message_id": "7", "message_state": 7}


def test_receipt_refuses_what_does_not_fit_or_is_not_final():
    with pytest.raises(EncodeError):
        receipt("1", "delivered", to="4" * 21, sender="Acme", submitted_at=SUBMITTED,
                done_at=DONE, text="")
    with pytest.raises(ValueError):
        receipt("1", "queued", to="46701234567", sender="Acme", submitted_at=SUBMITTED,
                done_at=DONE, text="")
    for _ in range(2):  # a sender's address is remembered, not whether it fits
        with pytest.raises(EncodeError):
            receipt("1", "delivered", to="46701234567", sender="4" * 21, submitted_at=SUBMITTED,
                    done_at=DONE, text="")


@given(st.text(max_size=40), st.sampled_from(["delivered", "failed", "stopped"]))
def test_any_text_gives_an_ascii_receipt_with_at_most_20_characters(text, status):
    item = receipt("id", status, to="46701234567", sender="Acme", submitted_at=SUBMITTED,
                   done_at=DONE, text=text)
    shown = item.params["short_message"].decode("ascii").split(" text:", 1)[1]
    assert len(shown) == min(len(text), 20)


@given(st.text(st.characters(max_codepoint=127), max_size=70), st.text(max_size=24), st.text(max_size=24),
       st.sampled_from(["delivered", "failed", "stopped"]))
def test_a_receipt_either_encodes_or_is_refused_when_built(message_id, to, sender, status):
    """The receipt is checked without encoding it (the codec encodes it once, when it is sent):
    what it lets through must encode, and what it refuses must not (message ids are ASCII: the
    receipt's text carries them)."""
    try:
        item = receipt(message_id, status, to=to, sender=sender, submitted_at=SUBMITTED, done_at=DONE,
                       text="t")
    except EncodeError:
        built = None
    else:
        built = item
    try:
        src, dst = source_address(to)[2], source_address(sender)[2]
        encode(PDU("deliver_sm", 1, params={"source_addr": src, "destination_addr": dst},
                   tlvs={"receipted_message_id": message_id, "message_state": 2}))
    except EncodeError:
        fits = False
    else:
        fits = True
    assert (built is not None) == fits
    if built is not None:
        encode(PDU("deliver_sm", 1, params=built.params, tlvs=built.tlvs))


# --- MO ---------------------------------------------------------------------------------------
def test_mo_in_gsm():
    item = mo("+46701234567", "72550", "STOP {all} €", "mo-7")
    params = item.params
    assert (params["source_addr_ton"], params["source_addr_npi"], params["source_addr"]) == (
        1, 1, "46701234567")
    assert (params["destination_addr"], params["data_coding"], params["esm_class"]) == (
        "72550", 0, 0)
    assert gsm_decode(params["short_message"]) == "STOP {all} €"
    assert (item.kind, item.ref, item.tlvs) == ("mo", "mo-7", {})  # the MO's id, for the logs


def test_mo_in_ucs2_and_long_mo_in_message_payload():
    short = mo("46701234567", "72550", "Привет")
    assert short.params["data_coding"] == 8
    assert short.params["short_message"].decode("utf-16-be") == "Привет"
    long = mo("46701234567", "72550", "Привет " * 20)  # 280 octets: over 254
    assert "short_message" not in long.params
    assert long.tlvs["message_payload"].decode("utf-16-be") == "Привет " * 20


# --- query_sm ---------------------------------------------------------------------------------
def test_query_answer_for_a_final_message():
    params = query_sm_resp_params("m-1", QueryAnswer("delivered", final_at=DONE, err="0"))
    assert params == {"message_id": "m-1", "final_date": "231114221525000+",
                      "message_state": 2, "error_code": 0}
    assert parse_time(params["final_date"], 0) == DONE


def test_query_answer_while_not_final_and_when_cancelled():
    assert query_sm_resp_params("m-2", QueryAnswer("queued")) == {
        "message_id": "m-2", "final_date": "", "message_state": 1, "error_code": 0}
    cancelled = query_sm_resp_params("m-3", QueryAnswer("stopped", final_at=DONE, cancelled=True))
    assert cancelled["message_state"] == 4
    failed = query_sm_resp_params("m-4", QueryAnswer("failed", final_at=DONE, err="34"))
    assert (failed["message_state"], failed["error_code"]) == (5, 34)
    assert query_sm_resp_params("m-5", QueryAnswer("failed", final_at=DONE,
                                                   err="1234"))["error_code"] == 0
