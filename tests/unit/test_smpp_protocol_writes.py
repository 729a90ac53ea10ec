"""``SMPPProtocol`` hands what a connection writes in one reactor turn to its transport as one
write (protocol.py's module doc): in order, before the turn ends, before any close, and nothing
once the connection is gone."""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from connectors.smpp.codec import PDU, encode
from connectors.smpp.defs import ESME_RINVCMDLEN
from connectors.smpp.protocol import SMPPProtocol
from tests.smpp_session_rig import SUBMIT


class _Transport(StringTransport):
    """A StringTransport that keeps each write, and the close, in the order they came."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list = []

    def write(self, data: bytes) -> None:
        self.calls.append(data)
        super().write(data)

    def loseConnection(self) -> None:
        self.calls.append("close")
        super().loseConnection()


class _Handler:
    def __init__(self) -> None:
        self.requests: list[PDU] = []
        self.closed: list[str] = []

    def request_received(self, proto, pdu) -> None:
        self.requests.append(pdu)

    def connection_closed(self, proto, reason) -> None:
        self.closed.append(reason)


def _bound() -> tuple[SMPPProtocol, _Transport, Clock, _Handler]:
    """An ESME's protocol, bound, with nothing written since."""
    clock, handler, transport = Clock(), _Handler(), _Transport()
    proto = SMPPProtocol("esme", handler, clock)
    proto.makeConnection(transport)
    proto.request("bind_transceiver", {"system_id": "user", "password": "pw"})
    clock.advance(0)
    proto.dataReceived(encode(PDU("bind_transceiver_resp", 1, params={"system_id": "SMSC"})))
    assert proto.session.is_bound
    transport.calls.clear()
    transport.clear()
    return proto, transport, clock, handler


def _submit(sequence: int) -> bytes:
    return encode(PDU("submit_sm", sequence, params=SUBMIT))


def test_what_a_turn_writes_goes_out_as_one_write_in_order_at_its_end():
    proto, transport, clock, _ = _bound()
    proto.send("submit_sm", SUBMIT)
    proto.send("submit_sm", SUBMIT)
    proto.write(b"raw")
    assert transport.calls == []  # not before the turn ends
    clock.advance(0)
    assert transport.calls == [_submit(2) + _submit(3) + b"raw"]
    assert proto.pdus["submit_sm", "out"] == 2
    proto.send("submit_sm", SUBMIT)  # the next turn has its own write
    clock.advance(0)
    assert transport.calls[1:] == [_submit(4)]
    assert len(clock.getDelayedCalls()) == 1  # the keep-alive's tick alone: no flush left behind


def test_reading_writes_its_answers_as_it_returns_behind_what_the_turn_wrote():
    proto, transport, clock, handler = _bound()
    proto.send("submit_sm", SUBMIT)
    deliver = encode(PDU("deliver_sm", 7, params={"short_message": b"hi"}))
    proto.dataReceived(encode(PDU("enquire_link", 5)) + deliver + encode(PDU("enquire_link", 6)))
    proto.respond(handler.requests[0])  # what a later turn answers goes out at that turn's end
    assert transport.calls == [_submit(2) + encode(PDU("enquire_link_resp", 5))
                               + encode(PDU("enquire_link_resp", 6))]
    clock.advance(0)
    assert transport.calls[1:] == [encode(PDU("deliver_sm_resp", 7, params={"message_id": ""}))]


def test_close_writes_what_waits_first():
    proto, transport, clock, _ = _bound()
    proto.send("submit_sm", SUBMIT)
    proto.close("done")
    assert transport.calls == [_submit(2), "close"]


def test_peer_unbind_and_lost_framing_answer_before_closing():
    proto, transport, _, _ = _bound()
    proto.send("submit_sm", SUBMIT)
    proto.dataReceived(encode(PDU("unbind", 9)))
    assert transport.calls == [_submit(2) + encode(PDU("unbind_resp", 9)), "close"]

    proto, transport, _, _ = _bound()
    proto.dataReceived(b"\x00\x00\x00\x05garbage")
    assert transport.calls == [encode(PDU("generic_nack", 0, ESME_RINVCMDLEN)), "close"]
    assert proto.close_reason.startswith("framing lost")


def test_a_lost_connection_drops_what_waits_and_writes_nothing_more():
    proto, transport, clock, handler = _bound()
    proto.send("submit_sm", SUBMIT)
    proto.connectionLost(Failure(ConnectionDone()))
    assert clock.getDelayedCalls() == []  # the turn's flush is cancelled with the connection
    proto.write(b"late")
    proto.respond(PDU("deliver_sm", 8, params={"short_message": b"hi"}))
    clock.advance(0)
    assert transport.calls == [] and clock.getDelayedCalls() == []
    assert handler.closed
