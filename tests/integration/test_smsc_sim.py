"""The simulated SMSC on real loopback sockets: smpplib, an independent SMPP implementation, binds,
submits and reads the receipt; the HTTP control API (called with treq) sends MOs to our own
ESME-side ``SMPPProtocol``. Ports are 0 (the OS picks); nothing sleeps: Deferreds wait.

smpplib is blocking, so it runs in a thread (``deferToThread``) with a socket timeout, and the
reactor keeps serving the SMSC meanwhile.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.threads import deferToThread

from connectors.smpp.defs import ESME_ROK
from connectors.smpp.protocol import SMPPProtocol
from connectors.smpp.session import ESME
from connectors.smsc_sim import SimSettings, SimulatedSMSC, control_site
from connectors.smpp.text import gsm_decode, parse_udh
from tests.esme import bind_status

SETTINGS = SimSettings(system_id="gw", password="secret", receipt_delay=0.05)


@pytest.fixture
def sim():
    sim = SimulatedSMSC(SETTINGS, reactor, name="loopsim")
    sim.port = pytest_twisted.blockon(sim.listen("127.0.0.1", 0))
    yield sim
    pytest_twisted.blockon(sim.stop())


# --- smpplib as the ESME ------------------------------------------------------------------------
def smpplib_submit_and_wait_for_receipt(port: int) -> dict:
    """Bind as transceiver, submit one message asking for a receipt, read the submit_sm_resp and
    the receipt (smpplib answers it deliver_sm_resp ROK), unbind. Runs in a thread."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    seen: dict = {}

    def keep(key):
        def handler(pdu, **_):  # smpplib answers deliver_sm with what this returns (None: ROK)
            seen.setdefault(key, pdu)
        return handler

    client.set_message_sent_handler(keep("resp"))
    client.set_message_received_handler(keep("receipt"))
    client.connect()
    try:
        bind = client.bind_transceiver(system_id="gw", password="secret")
        seen["bind_system_id"] = bind.system_id
        submit = client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_ALNUM, source_addr_npi=0, source_addr="Acme",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL, dest_addr_npi=1,
            destination_addr="46701234567", short_message=b"Hello from smpplib",
            registered_delivery=1)
        seen["submit_sequence"] = submit.sequence
        while "receipt" not in seen:
            client.read_once(auto_send_enquire_link=False)
        seen["unbind"] = client.unbind().command
    finally:
        client.disconnect()
    return seen


@pytest_twisted.ensureDeferred
async def test_smpplib_transceiver_gets_a_receipt_for_its_submit(sim):
    seen = await deferToThread(smpplib_submit_and_wait_for_receipt, sim.port)
    resp, receipt = seen["resp"], seen["receipt"]
    assert seen["bind_system_id"] == b"loopsim"
    assert (resp.status, resp.sequence) == (ESME_ROK, seen["submit_sequence"])
    message_id = resp.message_id.decode()
    assert message_id == sim.submits[0].message_id
    assert message_id == message_id.lower() and int(message_id, 16) > 0
    assert receipt.receipted_message_id.decode() == message_id
    assert receipt.message_state == 2
    assert (receipt.esm_class, receipt.source_addr, receipt.destination_addr) == (
        0x04, b"46701234567", b"Acme")
    assert receipt.short_message.startswith(f"id:{message_id} sub:001 dlvrd:001 ".encode())
    assert receipt.short_message.endswith(b" stat:DELIVRD err:000 text:Hello from smpplib")
    assert seen["unbind"] == "unbind_resp"
    assert (sim.receipts_acked, sim.receipts_pending) == (1, 0)
    [record] = sim.submits
    assert (record.system_id, record.source_addr, record.destination_addr) == (
        "gw", "Acme", "46701234567")
    assert record.short_message == b"Hello from smpplib"


@pytest_twisted.ensureDeferred
async def test_smpplib_bind_with_a_wrong_password_is_refused(sim):
    status = await deferToThread(bind_status, sim.port, "gw", "wrong")
    assert status == smpplib.consts.SMPP_ESME_RINVPASWD


# --- the control API and our ESME ---------------------------------------------------------------
class Receiver:
    """Our ESME's handler: records every deliver_sm and answers ROK."""

    def __init__(self) -> None:
        self.received = []
        self.closed = Deferred()

    def request_received(self, proto, pdu):
        self.received.append(pdu)
        proto.respond(pdu, ESME_ROK)

    def connection_closed(self, proto, reason):
        self.closed.callback(reason)


@pytest.fixture
def control(sim):
    port = reactor.listenTCP(0, control_site(sim), interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}"
    pytest_twisted.blockon(port.stopListening())


async def bound_esme(sim) -> tuple[SMPPProtocol, Receiver]:
    receiver = Receiver()
    proto = SMPPProtocol(ESME, receiver, reactor)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", sim.port), proto)
    resp = await proto.request("bind_transceiver", {"system_id": "gw", "password": "secret"})
    assert resp.params["system_id"] == "loopsim"
    return proto, receiver


async def post_mo(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = await treq.post(url + "/mo", data=data,
                           headers={"Content-Type": ["application/json"]})
    return resp.code, json.loads(await resp.content())


@pytest_twisted.ensureDeferred
async def test_control_mo_without_a_receiver(sim, control):
    assert await post_mo(control, {"from": "46701234567", "to": "72550", "text": "hi"}) == (
        202, {"outcome": "no receiver bound"})


@pytest_twisted.ensureDeferred
async def test_control_mo_in_gsm_reaches_the_bound_esme(sim, control):
    proto, receiver = await bound_esme(sim)
    text = "DEMO hello {world} €5 @home"
    assert await post_mo(control, {"from": "46701234567", "to": "72550", "text": text}) == (
        202, {"outcome": "delivered"})
    [mo] = receiver.received
    assert (mo.command, mo.params["data_coding"], mo.params["esm_class"]) == ("deliver_sm", 0, 0)
    assert (mo.params["source_addr_ton"], mo.params["source_addr_npi"]) == (1, 1)
    assert (mo.params["source_addr"], mo.params["destination_addr"]) == ("46701234567", "72550")
    assert gsm_decode(mo.params["short_message"]) == text
    assert sim.mo_acked == 1


@pytest_twisted.ensureDeferred
async def test_control_mo_in_ucs2_reaches_the_bound_esme(sim, control):
    proto, receiver = await bound_esme(sim)
    text = "Привет, мир ✓"
    assert (await post_mo(control, {"from": "46701234567", "to": "72550", "text": text}))[1] == {
        "outcome": "delivered"}
    [mo] = receiver.received
    assert (mo.params["data_coding"], mo.params["esm_class"]) == (8, 0)
    assert mo.params["short_message"].decode("utf-16-be") == text


@pytest.mark.parametrize("text, coding, parts", [
    ("The quick brown fox jumps over the lazy dog. " * 8, 0, 3),  # 360 septets
    ("Съешь же ещё этих мягких французских булок. " * 4, 8, 3),  # 176 UCS-2 units
])
@pytest_twisted.ensureDeferred
async def test_control_long_mo_comes_in_udh_parts_that_reassemble(sim, control, text, coding,
                                                                  parts):
    proto, receiver = await bound_esme(sim)
    assert (await post_mo(control, {"from": "46701234567", "to": "72550", "text": text}))[1] == {
        "outcome": "delivered"}
    pdus = receiver.received
    assert [(p.params["esm_class"], p.params["data_coding"]) for p in pdus] == [
        (0x40, coding)] * parts
    infos, bodies = zip(*(parse_udh(p.params["short_message"]) for p in pdus))
    assert [(i.total, i.seq) for i in infos] == [(parts, n) for n in range(1, parts + 1)]
    assert len({i.ref for i in infos}) == 1
    joined = b"".join(bodies)
    assert (gsm_decode(joined) if coding == 0 else joined.decode("utf-16-be")) == text


@pytest.mark.parametrize("body, code, error, field", [
    (b"{not json", 400, "invalid_json", None),
    (b"[1, 2]", 400, "invalid_request", None),
    ({"to": "72550", "text": "hi"}, 400, "invalid_request", "from"),
    ({"from": "46701234567", "to": 72550, "text": "hi"}, 400, "invalid_request", "to"),
    ({"from": "46701234567", "to": "72550"}, 400, "invalid_request", "text"),
    ({"from": "4670123456789012345678", "to": "72550", "text": "hi"}, 400, "invalid_request",
     "from"),
])
@pytest_twisted.ensureDeferred
async def test_control_refuses_bad_requests_with_a_json_error(sim, control, body, code, error,
                                                               field):
    status, answer = await post_mo(control, body)
    assert status == code and answer["error"]["code"] == error
    assert answer["error"].get("field") == field and answer["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_control_unknown_path_is_a_json_404(sim, control):
    resp = await treq.get(control + "/nothing")
    assert resp.code == 404
    assert json.loads(await resp.content())["error"]["code"] == "not_found"


@pytest_twisted.ensureDeferred
async def test_stop_unbinds_our_esme(sim):
    proto, receiver = await bound_esme(sim)
    await sim.stop()
    assert await receiver.closed == "peer unbound"
    assert sim.bound == []
