"""A customer's ESME through the whole gateway (SPEC §13), continued from test_customer_smpp.py
(its config, fixture and smpplib helpers): text the operator takes in another alphabet, UCS-2
parts that split a character between them, and a receipt the ESME leaves unanswered."""

from __future__ import annotations

import socket
import time

import pytest_twisted
import smpplib.exceptions
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from connectors.smpp.codec import PDU, decode, encode
from connectors.smpp.defs import ESME_RINVMSGLEN, ESME_ROK
from smscore.api.render import render_message
from smscore.app import Gateway
from smscore.config import parse_config
from tests.esme import Esme
from tests.harness.waiting import eventually
from tests.integration.test_customer_smpp import CONFIG, _delivered, gateway, submit_as_transmitter  # noqa: F401


def submit_latin1_and_ia5(port: int) -> dict:
    """IA5 (data_coding 1) text that GSM carries, and a Latin-1 (3) part concatenated by the ESME
    that stays one SMS only as Latin-1 (the operator here takes no Latin-1)."""
    esme = Esme(port)
    esme.client.connect()
    out = {}
    try:
        esme.client.bind_transmitter(system_id="acme", password="s3cret")
        out["ia5"] = esme.submit("46701234567", b"x" * 250, data_coding=1, registered_delivery=0)
        udh = bytes.fromhex("0500033802") + b"\x01"
        try:
            esme.submit("46701234567", udh + "þ".encode("latin-1") * 100, data_coding=3, esm_class=0x40,
                        registered_delivery=0)
        except smpplib.exceptions.PDUError as exc:
            out["udh_part"] = exc.args[1]
    finally:
        esme.client.disconnect()
    return out


@pytest_twisted.ensureDeferred
async def test_latin1_and_ia5_text_go_as_gsm_or_are_refused_when_a_part_would_not_fit(gateway):
    """SPEC §7: Latin-1 only for operators with ``latin1 = true``; never more parts than counted.
    Before, IA5 text went as UCS-2 (4 parts for 2 counted) and a Latin-1 part the ESME concatenated
    was accepted and then failed (206 octets with its UDH as UCS-2)."""
    gw, port = gateway
    out = await deferToThread(submit_latin1_and_ia5, port)
    assert out["udh_part"] == ESME_RINVMSGLEN
    await eventually(_delivered(gw, out["ia5"]), "the IA5 text delivered")
    m = await gw.store.get(out["ia5"])
    sent = [s for s in gw.sims["sim"].submits if s.destination_addr == "46701234567"]
    assert m.parts == len(sent) == 2
    assert {s.data_coding for s in sent} == {0}


EMOJI = "\U0001F600"


def submit_ucs2_parts_splitting_an_emoji(port: int) -> tuple[list[str], list[bytes]]:
    """Two UCS-2 parts the ESME concatenated, the emoji's high half ending the first and its low
    half starting the second (as phones and some ESMEs split)."""
    units = ("ab" + EMOJI + "cd").encode("utf-16-be")
    payloads = [bytes.fromhex("0500033902") + bytes([seq]) + half
                for seq, half in ((1, units[:6]), (2, units[6:]))]
    esme = Esme(port)
    esme.client.connect()
    try:
        esme.client.bind_transmitter(system_id="acme", password="s3cret")
        ids = [esme.submit("46701234569", p, data_coding=8, esm_class=0x40, registered_delivery=0) for p in payloads]
    finally:
        esme.client.disconnect()
    return ids, payloads


@pytest_twisted.ensureDeferred
async def test_ucs2_parts_that_split_a_character_reach_the_operator_as_the_esme_sent_them(gateway):
    """Each part went out with U+FFFD for its half: the phone showed two replacement characters
    where the ESME sent one emoji. The operator now gets the very octets the ESME sent."""
    gw, port = gateway
    ids, payloads = await deferToThread(submit_ucs2_parts_splitting_an_emoji, port)
    for message_id in ids:
        await eventually(_delivered(gw, message_id), f"{message_id} delivered")
    sent = [s for s in gw.sims["sim"].submits if s.destination_addr == "46701234569"]
    assert sorted(s.short_message for s in sent) == sorted(payloads)
    assert {s.data_coding for s in sent} == {8}
    # GET /v1/messages/{id} shows a half alone as any broken text: U+FFFD
    assert [render_message(await gw.store.get(i))["text"] for i in ids] == ["ab\ufffd", "\ufffdcd"]


def deliver_sms_unanswered(port: int, seconds: float) -> list[str]:
    """Bind as receiver and read for ``seconds`` without answering any deliver_sm (enquire_link is
    answered, so the session stays up): the receipted ids of every deliver_sm, copies included."""
    got, buf = [], b""
    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
        sock.sendall(encode(PDU("bind_receiver", 1, params={"system_id": "acme", "password": "s3cret"})))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                buf += sock.recv(4096)
            except TimeoutError:
                continue
            while len(buf) >= 4 and len(buf) >= int.from_bytes(buf[:4], "big"):
                size = int.from_bytes(buf[:4], "big")
                pdu, buf = decode(buf[:size]), buf[size:]
                if pdu.command == "bind_receiver_resp":
                    assert pdu.status == ESME_ROK
                elif pdu.command == "deliver_sm":
                    got.append(pdu.tlvs["receipted_message_id"])
                elif pdu.command == "enquire_link":
                    sock.sendall(encode(PDU("enquire_link_resp", pdu.sequence)))
    return got


@pytest_twisted.ensureDeferred
async def test_a_receipt_waiting_for_its_answer_is_not_sent_again_when_its_lease_runs_out(tmp_path):
    """SPEC §13: a receipt is sent again after 30 s without deliver_sm_resp, not sooner. The job's
    lease ([gateway] lease, 30 s by default, as long as the response timeout) ran out while the
    deliver_sm waited and the next poll sent it again: twice within a second, every 30 s. With a
    lease of 1 s the ESME got a copy a second."""
    config = parse_config(CONFIG.format(tps=0).replace('node = "gw1"', 'node = "gw1"\nlease = "1s"'),
                          path=tmp_path / "gw.toml")
    gw = Gateway(config, reactor, CollectorRegistry())
    await gw.start()
    try:
        await eventually(lambda: gw.links["sim"].is_up(), "the simulated operator bound")
        port = gw.smpp_ports[0].getHost().port
        message_id = await deferToThread(submit_as_transmitter, port)
        await eventually(_delivered(gw, message_id), "the message delivered")
        got = await deferToThread(deliver_sms_unanswered, port, 4.5)
        assert got == [message_id]
    finally:
        await gw.stop()
