"""A customer's ESME through the whole gateway (SPEC §13): smpplib binds to a ``Gateway`` with
``[smpp_server]`` (real SQLite store, a simulated operator, loopback sockets), submits as
``POST /v1/messages`` would, and gets its receipts as deliver_sm, durably.

smpplib runs in a thread (``deferToThread``) while the reactor runs the gateway.
"""

from __future__ import annotations

import json
import socket
import struct
import threading

import pytest
import pytest_twisted
import smpplib.exceptions
from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from connectors.smpp.codec import PDU, decode, encode
from connectors.smpp.defs import (
    ESME_RBINDFAIL,
    ESME_RCANCELFAIL,
    ESME_RINVDSTADR,
    ESME_RINVSRCADR,
    ESME_ROK,
    ESME_RQUERYFAIL,
    ESME_RTHROTTLED,
)
from smscore.app import Gateway
from smscore.config import parse_config
from smscore.model import Status
from tests.esme import Esme, bind_status, cancel_over
from tests.harness.waiting import eventually

CONFIG = """
[gateway]
node = "gw1"
[store]
url = "sqlite:///gw.db"
[http]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
[smpp_server]
listen = "127.0.0.1:0"
[operators.sim]
type = "simulated"
receipt_delay = "10ms"
[profiles.standard]
operators = ["sim"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["Acme"]
tps = {tps}
[accounts.acme.smpp]
system_id = "acme"
password = "s3cret"
max_binds = 2
[[shortcodes]]
number = "72550"
[[keywords]]
shortcode = "72550"
keyword = "ACME"
account = "acme"
url = "smpp"
"""


async def _gateway(tmp_path, tps: int = 0) -> Gateway:
    config = parse_config(CONFIG.format(tps=tps), path=tmp_path / "gw.toml")
    gw = Gateway(config, reactor, CollectorRegistry())
    await gw.start()
    await eventually(lambda: gw.links["sim"].is_up(), "the simulated operator bound")
    return gw


@pytest.fixture
def gateway(tmp_path):
    gw = pytest_twisted.blockon(Deferred.fromCoroutine(_gateway(tmp_path)))
    yield gw, gw.smpp_ports[0].getHost().port
    pytest_twisted.blockon(gw.stop())


def submit_receipt_query_cancel(port: int) -> dict:
    """Bind as transceiver; a submit with a receipt, read the receipt; query it; a refused one;
    a scheduled one, cancelled; cancel and query what cannot be; unbind."""
    esme = Esme(port)
    esme.client.connect()
    out = {}
    try:
        out["bind"] = esme.client.bind_transceiver(system_id="acme", password="s3cret")
        out["id"] = esme.submit("+46701234567", b"Hello over SMPP")
        out["receipt"] = esme.wait_for("deliver")
        esme.client.query_message(message_id=out["id"], source_addr_ton=5, source_addr_npi=0, source_addr="Acme")
        out["query"] = esme.wait_for("query")
        for key, to, source in (("bad_number", "12", "Acme"), ("bad_sender", "46701234567", "Globex")):
            try:
                esme.submit(to, b"no", source=source)
            except smpplib.exceptions.PDUError as exc:
                out[key] = exc.args[1]
        out["later"] = esme.submit("46701234568", b"Tomorrow", registered_delivery=0,
                                   schedule_delivery_time="000001000000000R")  # in one day
        out["cancel_later"] = cancel_over(esme.client, out["later"], 900)
        out["cancel_delivered"] = cancel_over(esme.client, out["id"], 901)
        out["cancel_unknown"] = cancel_over(esme.client, "nope", 902)
        esme.client.query_message(message_id="nope", source_addr_ton=5, source_addr_npi=0, source_addr="Acme")
        try:
            esme.wait_for("query")
        except smpplib.exceptions.PDUError as exc:
            out["query_unknown"] = exc.args[1]
        esme.client.unbind()
    finally:
        esme.client.disconnect()
    return out


@pytest_twisted.ensureDeferred
async def test_an_esme_submits_gets_its_receipt_queries_and_cancels(gateway):
    gw, port = gateway
    out = await deferToThread(submit_receipt_query_cancel, port)
    assert out["bind"].status == ESME_ROK
    m = await gw.store.get(out["id"])
    assert (m.account, m.to, m.sender, m.text, m.status) == ("acme", "46701234567", "Acme", "Hello over SMPP",
                                                             Status.DELIVERED)
    rcpt = out["receipt"]
    assert (rcpt.esm_class, rcpt.source_addr, rcpt.destination_addr) == (0x04, b"46701234567", b"Acme")
    assert rcpt.receipted_message_id == out["id"].encode() and rcpt.message_state == 2
    assert rcpt.short_message.startswith(f"id:{out['id']} sub:001 dlvrd:001 ".encode())
    assert b" stat:DELIVRD err:000 text:Hello over SMPP" in rcpt.short_message
    assert (out["query"].message_state, len(out["query"].final_date)) == (2, 16)
    assert (out["bad_number"], out["bad_sender"]) == (ESME_RINVDSTADR, ESME_RINVSRCADR)
    assert out["cancel_later"].status == ESME_ROK
    later = await gw.store.get(out["later"])
    assert later.status is Status.STOPPED and later.callback_url == "smpp"
    assert out["cancel_delivered"].status == out["cancel_unknown"].status == ESME_RCANCELFAIL
    assert out["query_unknown"] == ESME_RQUERYFAIL
    # Nothing of the refused submits was kept: the delivered one and the cancelled one only.
    assert await gw.store.count_by_status() == {"delivered": 1, "stopped": 1}
    # The receipt was acknowledged: no job left for it.
    assert await gw.store.pending_push_jobs() == []


def hold_receiver(port: int, release: threading.Event) -> None:
    esme = Esme(port)
    esme.client.connect()
    try:
        esme.client.bind_receiver(system_id="acme", password="s3cret")
        release.wait(10)
    finally:
        esme.client.disconnect()


@pytest_twisted.ensureDeferred
async def test_wrong_passwords_and_unknown_ids_get_the_same_refusal(gateway):
    gw, port = gateway
    assert await deferToThread(bind_status, port, "acme", "wrong") == ESME_RBINDFAIL
    assert await deferToThread(bind_status, port, "acme", "s3cret") == ESME_ROK


@pytest_twisted.ensureDeferred
async def test_bound_sessions_are_a_metric_and_max_binds_holds(gateway):
    gw, port = gateway
    release = threading.Event()
    held = [deferToThread(hold_receiver, port, release) for _ in range(2)]
    try:
        def sessions():
            return gw.metrics.registry.get_sample_value("smsgw_smpp_server_sessions",
                                                        {"account": "acme", "bind": "receiver"})
        await eventually(lambda: sessions() == 2, "two receivers in the metric", state=sessions)
        assert await deferToThread(bind_status, port, "acme", "s3cret") == ESME_RBINDFAIL  # max_binds = 2
    finally:
        release.set()
        for d in held:
            await d
    # gone, the sessions read 0: the series stays (it vanished, and a dashboard showed "no data")
    await eventually(lambda: sessions() == 0, "no receiver in the metric", state=sessions)


def _raw(command_id: int, sequence: int, body: bytes = b"") -> bytes:
    """A PDU as octets our codec would never write."""
    return struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body


def _read_pdu(sock: socket.socket) -> PDU:
    data = b""
    while len(data) < 4 or len(data) < int.from_bytes(data[:4], "big"):
        chunk = sock.recv(4096)
        assert chunk, f"closed after {len(data)} octets of a PDU"
        data += chunk
    return decode(data)


def nonsense_on_a_bound_session(port: int) -> list[tuple[str, int]]:
    """As raw octets: bind_transceiver, a command_id SMPP does not define, enquire_link, a
    submit_sm that cannot be decoded, unbind; the (command, sequence) of each answer."""
    frames = [encode(PDU("bind_transceiver", 1, params={"system_id": "acme", "password": "s3cret"})),
              _raw(0x00000999, 2),
              encode(PDU("enquire_link", 3)),
              _raw(0x00000004, 4, b"\x00\x05\x00OTH"),  # submit_sm whose source_addr lacks its NUL
              encode(PDU("unbind", 5))]
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for frame in frames:  # one at a time, so each answer is read whole and alone
            sock.sendall(frame)
            answer = _read_pdu(sock)
            answers.append((answer.command, answer.sequence))
        assert sock.recv(1) == b""  # closed after the unbind_resp
    return answers


@pytest_twisted.ensureDeferred
async def test_pdus_total_counts_what_the_server_reads_in_and_what_it_writes_out(gateway):
    """SPEC §9/§13: the generic_nacks the gateway answers with are "out", the unknown command
    and the undecodable submit_sm it read are "in" (the unknown one as "unknown", never its
    raw id), and so is the bind, counted once the session is the account's."""
    gw, port = gateway
    assert await deferToThread(nonsense_on_a_bound_session, port) == [
        ("bind_transceiver_resp", 1), ("generic_nack", 2), ("enquire_link_resp", 3),
        ("generic_nack", 4), ("unbind_resp", 5)]
    counted = {(sample.labels["command"], sample.labels["direction"]): sample.value
               for family in gw.metrics.registry.collect() if family.name == "smsgw_pdus"
               for sample in family.samples if sample.labels.get("operator") == "client:acme"}
    assert counted == {
        ("bind_transceiver", "in"): 1, ("bind_transceiver_resp", "out"): 1,
        ("unknown", "in"): 1, ("enquire_link", "in"): 1, ("enquire_link_resp", "out"): 1,
        ("submit_sm", "in"): 1, ("generic_nack", "out"): 2,
        ("unbind", "in"): 1, ("unbind_resp", "out"): 1}


def submit_as_transmitter(port: int) -> str:
    esme = Esme(port)
    esme.client.connect()
    try:
        esme.client.bind_transmitter(system_id="acme", password="s3cret")
        return esme.submit("46701234567", b"Receipt waits for a receiver")
    finally:
        esme.client.disconnect()


def receive_one(port: int):
    esme = Esme(port)
    esme.client.connect()
    try:
        esme.client.bind_receiver(system_id="acme", password="s3cret")
        return esme.wait_for("deliver")
    finally:
        esme.client.disconnect()


@pytest_twisted.ensureDeferred
async def test_a_receipt_waits_durably_until_a_receiver_binds(gateway):
    gw, port = gateway
    message_id = await deferToThread(submit_as_transmitter, port)
    await eventually(_delivered(gw, message_id), "the message delivered")
    assert len(await gw.store.pending_push_jobs()) == 1  # the receipt, kept for a receiver
    rcpt = await deferToThread(receive_one, port)
    assert rcpt.receipted_message_id == message_id.encode()
    await eventually(_no_jobs(gw), "the receipt acknowledged")


def receive_and_drop(port: int) -> bytes:
    """Bind as receiver, read one deliver_sm without answering it, and drop the connection."""
    esme = Esme(port)
    esme.client.connect()
    try:
        esme.client.bind_receiver(system_id="acme", password="s3cret")
        pdu = esme.client.read_pdu()  # read, not acted on: no deliver_sm_resp goes back
        return pdu.receipted_message_id
    finally:
        esme.client.disconnect()


@pytest_twisted.ensureDeferred
async def test_a_receipt_whose_receiver_dropped_goes_at_once_to_the_next_receiver(gateway):
    """A deliver_sm left unanswered by a receiver that went away is given back at once: the next
    receiver to bind gets it now, not once the node's 30 s lease on the job runs out."""
    gw, port = gateway
    message_id = await deferToThread(submit_as_transmitter, port)
    await eventually(_delivered(gw, message_id), "the message delivered")
    assert await deferToThread(receive_and_drop, port) == message_id.encode()

    async def released():
        rows = await gw.store.read(lambda cur: cur.execute("SELECT owner FROM push_jobs").fetchall())
        return rows == [(None,)]

    await eventually(released, "the job given back", timeout=5)
    rcpt = await deferToThread(receive_one, port)
    assert rcpt.receipted_message_id == message_id.encode()
    await eventually(_no_jobs(gw), "the receipt acknowledged")


@pytest_twisted.ensureDeferred
async def test_a_receipt_job_stored_without_the_esme_part_is_sent_from_the_stored_message(gateway):
    """A receipt job an earlier version stored has only the status callback's body: sending it
    reads the message, and the deliver_sm says the same."""
    gw, port = gateway
    message_id = await deferToThread(submit_as_transmitter, port)
    await eventually(_delivered(gw, message_id), "the message delivered")
    [job] = await gw.store.pending_push_jobs()
    assert job.body["esme"]["sender"] == "Acme" and job.body["esme"]["cancelled"] is False
    older = {k: v for k, v in job.body.items() if k != "esme"}

    def rewrite(cur):
        cur.execute("UPDATE push_jobs SET body = ? WHERE id = ?", (json.dumps(older), job.id))

    await gw.store.run(rewrite)
    assert "esme" not in (await gw.store.pending_push_jobs())[0].body
    rcpt = await deferToThread(receive_one, port)
    assert (rcpt.receipted_message_id, rcpt.source_addr, rcpt.destination_addr) == (
        message_id.encode(), b"46701234567", b"Acme")
    assert b" stat:DELIVRD err:000 text:Receipt waits for a " in rcpt.short_message  # 20 characters
    await eventually(_no_jobs(gw), "the receipt acknowledged")


def submit_and_cancel(port: int) -> tuple[str, object]:
    esme = Esme(port)
    esme.client.connect()
    try:
        esme.client.bind_transceiver(system_id="acme", password="s3cret")
        message_id = esme.submit("46701234568", "Tomorrow at nine, café".encode("latin-1"), data_coding=3,
                                 schedule_delivery_time="000001000000000R")
        assert cancel_over(esme.client, message_id, 900).status == ESME_ROK
        return message_id, esme.wait_for("deliver")
    finally:
        esme.client.disconnect()


@pytest_twisted.ensureDeferred
async def test_a_cancelled_message_with_a_receipt_asked_gets_a_deleted_receipt(gateway):
    gw, port = gateway
    message_id, rcpt = await deferToThread(submit_and_cancel, port)
    assert rcpt.receipted_message_id == message_id.encode() and rcpt.message_state == 4  # DELETED
    assert (rcpt.source_addr, rcpt.destination_addr) == (b"46701234568", b"Acme")
    assert rcpt.short_message.startswith(f"id:{message_id} sub:001 dlvrd:000 ".encode())
    assert rcpt.short_message.endswith(b" stat:DELETED err:000 text:Tomorrow at nine, ca")
    await eventually(_no_jobs(gw), "the receipt acknowledged")


def submit_to_a_stopped_number(port: int) -> tuple[str, object]:
    esme = Esme(port)
    esme.client.connect()
    try:
        esme.client.bind_transceiver(system_id="acme", password="s3cret")
        message_id = esme.submit("46701110000", b"You asked us to stop")
        return message_id, esme.wait_for("deliver")
    finally:
        esme.client.disconnect()


@pytest_twisted.ensureDeferred
async def test_a_message_stopped_at_acceptance_gets_a_rejectd_receipt(gateway):
    """The submit_sm_resp carries only the id: the ESME hears of the stop list by the receipt its
    registered_delivery asked for."""
    gw, port = gateway
    await gw.store.stoplist_change(["46701110000"], account="acme", at=1000.0)
    message_id, rcpt = await deferToThread(submit_to_a_stopped_number, port)
    assert (await gw.store.get(message_id)).status is Status.STOPPED
    assert rcpt.receipted_message_id == message_id.encode() and rcpt.message_state == 8  # REJECTD
    assert b" stat:REJECTD " in rcpt.short_message
    await eventually(_no_jobs(gw), "the receipt acknowledged")


def _delivered(gw, message_id):
    async def check():
        m = await gw.store.get(message_id)
        return m is not None and m.status is Status.DELIVERED
    return check


def _no_jobs(gw):
    async def check():
        return await gw.store.pending_push_jobs() == []
    return check


def burst(port: int, count: int) -> list[int]:
    esme = Esme(port)
    esme.client.connect()
    statuses = []
    try:
        esme.client.bind_transmitter(system_id="acme", password="s3cret")
        for i in range(count):
            try:
                esme.submit(f"4670123450{i}", b"burst", registered_delivery=0)
                statuses.append(ESME_ROK)
            except smpplib.exceptions.PDUError as exc:
                statuses.append(exc.args[1])
    finally:
        esme.client.disconnect()
    return statuses


@pytest_twisted.ensureDeferred
async def test_the_accounts_tps_throttles_submits(tmp_path):
    gw = await _gateway(tmp_path, tps=2)
    try:
        statuses = await deferToThread(burst, gw.smpp_ports[0].getHost().port, 6)
        assert statuses[:2] == [ESME_ROK, ESME_ROK] and ESME_RTHROTTLED in statuses, statuses
    finally:
        await gw.stop()


@pytest_twisted.ensureDeferred
async def test_an_mo_for_a_keyword_with_url_smpp_reaches_the_esme_and_stays_pullable(gateway):
    gw, port = gateway
    assert await gw.sims["sim"].inject_mo("46709876543", "72550", "ACME hello there") == "delivered"
    deliver = await deferToThread(receive_one, port)
    assert (deliver.source_addr, deliver.destination_addr, deliver.short_message) == (
        b"46709876543", b"72550", b"ACME hello there")
    assert deliver.esm_class == 0
    await eventually(_no_jobs(gw), "the MO acknowledged")
    [mo] = (await gw.store.inbox("acme", 0, 10))
    assert (mo.text, mo.keyword) == ("ACME hello there", "ACME")
    got = await gw.store.get_mo(mo.id)
    assert "pushed" in [e.status for e in got.events]


def submit_parts_and_expired(port: int) -> dict:
    """Two parts concatenated by the ESME with a UDH, one with SAR TLVs, and one whose validity
    ended before it could go (scheduled past it)."""
    esme = Esme(port)
    esme.client.connect()
    out = {}
    try:
        esme.client.bind_transmitter(system_id="acme", password="s3cret")
        udh = bytes.fromhex("0500033702")
        out["udh"] = [esme.submit("46701234567", udh + part + b"x" * 10, esm_class=0x40, registered_delivery=0)
                      for part in (b"\x01", b"\x02")]  # ref 0x37, 2 parts, seq 1 and 2 (UDH ends in seq)
        out["sar"] = esme.submit("46701234567", b"second half", registered_delivery=0,
                                 sar_msg_ref_num=300, sar_total_segments=2, sar_segment_seqnum=2)
        out["expired"] = esme.submit("46701234568", b"too late", registered_delivery=0,
                                     schedule_delivery_time="000000000002000R",  # in 2 s
                                     validity_period="000000000001000R")  # valid for 1 s
    finally:
        esme.client.disconnect()
    return out


@pytest_twisted.ensureDeferred
async def test_parts_the_esme_concatenated_go_on_as_they_came_and_validity_expires(gateway):
    gw, port = gateway
    out = await deferToThread(submit_parts_and_expired, port)
    ids = out["udh"] + [out["sar"]]
    assert len(set(ids)) == 3
    for message_id in ids:
        await eventually(_delivered(gw, message_id), f"{message_id} delivered")
    sent = [s.short_message for s in gw.sims["sim"].submits]
    assert bytes.fromhex("050003370201") + b"x" * 10 in sent
    assert bytes.fromhex("050003370202") + b"x" * 10 in sent
    sar = next(s for s in gw.sims["sim"].submits if s.short_message.endswith(b"second half"))
    assert sar.esm_class & 0x40 and sar.short_message[:1] in (b"\x05", b"\x06")  # a UDH from the TLVs
    assert all(s.tlvs.get("sar_msg_ref_num") is None for s in gw.sims["sim"].submits)
    first = await gw.store.get(out["udh"][0])
    assert (first.parts, first.udh, first.text) == (1, bytes.fromhex("050003370201"), "x" * 10)

    async def expired():
        m = await gw.store.get(out["expired"])
        return m.status is Status.EXPIRED
    await eventually(expired, "the message past its validity expired", timeout=15)
    assert (await gw.store.get(out["expired"])).error == "validity period ended before submission"
    assert not any(s.destination_addr == "46701234568" for s in gw.sims["sim"].submits)
