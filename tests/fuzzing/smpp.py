"""Mutated valid PDUs, fed as bytes to the gateway's two SMPP roles, and what must hold of them.

Why this module exists: the codec and the session are fuzzed on their own
(``tests/unit/test_smpp_codec.py``, ``test_smpp_session.py``); what reads a PDU *after* them is
not: the customer-facing ``CustomerSMPPServer`` (binds, ``submit_fields.read_submit``, query_sm,
cancel_sm) and the SMSC-facing ``OperatorLink`` (receipts through ``receipts.receipt_facts``, MO
through ``addressing.decode_mo_text``, submit_sm_resp). Both are driven whole here, through their
``SMPPProtocol`` on a ``StringTransport``, with no I/O and a clock that never moves.

Theory of operation
-------------------
* ``tests/fuzzing/smpp_pdus.py`` makes the input: one to four valid PDUs of any command, most of
  them mutated (``stream``), cut in chunks as a network might (``chunks``).
* ``ServerRig`` and ``ClientRig`` each ``run(data, chunks)`` one fresh connection: the server side
  is first bound by a valid bind (unless the rng says the stream starts raw), the client side has
  answered its bind and has two submit_sm outstanding. The result (``Run``) is everything the role
  wrote back, everything it handed the application, and every log line of level error or above.
* ``check(rig, data, rng)`` runs the data whole and in random chunks (a quarter of the time one
  octet at a time) and returns the problems: an exception out of the protocol, an error logged,
  written bytes that are not whole PDUs, or a different result for a different chunking. It stops
  feeding once the protocol asked to close, as a real transport stops reading then.
"""

from __future__ import annotations

import itertools
import random
import traceback
from collections import Counter
from dataclasses import dataclass, field

from structlog.testing import capture_logs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from connectors.api import SubmitRequest
from connectors.smpp import defs
from connectors.smpp.client import LinkSettings, OperatorLink
from connectors.smpp.codec import NEED_DATA, PDU, Decoder, SMPPError, decode, encode
from connectors.smpp.deliver_fields import QueryAnswer
from connectors.smpp.protocol import SMPPProtocol
from connectors.smpp.server import CustomerSMPPServer, Refused
from tests.fuzzing.smpp_pdus import chunks

T0 = 1_796_385_600.0  # 2026-12-04T12:00:00Z
CREDENTIALS = {"acme-esme": ("acme", "s3cret")}
PEER = IPv4Address("TCP", "192.0.2.7", 40000)


# --- the two roles ----------------------------------------------------------------------------------
@dataclass
class Run:
    """What one connection did with the bytes: what it wrote back, what it handed the
    application, error log lines, whether it asked to close, and what it raised."""

    written: bytes = b""
    calls: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    closed: str = ""
    raised: str = ""

    def same(self) -> tuple:
        return self.written, self.calls, self.closed


def _feed(proto, transport: StringTransport, pieces: list[bytes], out: Run) -> None:
    """Feed ``pieces`` as a transport would: nothing more once the protocol asked to close."""
    try:
        for piece in pieces:
            if transport.disconnecting:
                break
            proto.dataReceived(piece)
        out.closed = proto.close_reason
        proto.connectionLost(Failure(ConnectionDone()))
    except Exception:  # noqa: BLE001 - what the fuzzing looks for
        out.raised = traceback.format_exc()


class _App:
    """The server's application: answers at once, from the request alone (so that two runs of
    the same bytes get the same answers), and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list = []
        self._ids = itertools.count(1)

    def submit(self, session, message):
        self.calls.append(("submit", session.bind, message))
        if message.destination.endswith("9"):
            return fail(Refused("invalid_number", "fuzz"))
        return succeed(f"{next(self._ids):08x}")

    def query(self, session, message_id):
        self.calls.append(("query", message_id))
        statuses = ("delivered", "queued", "failed", "stopped", "unknown")
        if len(message_id) % 7 == 0:
            return fail(Refused("not_found"))
        return succeed(QueryAnswer(statuses[len(message_id) % 5], T0, message_id[-3:]))

    def cancel(self, session, message_id):
        self.calls.append(("cancel", message_id))
        return fail(Refused("conflict")) if len(message_id) % 2 else succeed(None)

    def receiver_bound(self, session):
        self.calls.append(("receiver_bound", session.bind))


def _authenticate(system_id: str, password: str) -> str | None:
    account, expected = CREDENTIALS.get(system_id, (None, None))
    return account if password == expected else None


class ServerRig:
    """The customer-facing SMPP server, one fresh ESME connection per ``run``."""

    role = "server"
    BIND = encode(PDU("bind_transceiver", 1, params={"system_id": "acme-esme", "password": "s3cret",
                                                    "interface_version": 0x34}))

    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0)
        self.app = _App()
        self.server = CustomerSMPPServer(self.clock, authenticate=_authenticate,
                                         max_binds=lambda account: 1_000_000, handler=self.app,
                                         window=10, max_pending=100)

    def prefix(self, rng: random.Random) -> bytes:
        """A valid bind first (most of the time), so that requests reach the handlers."""
        return self.BIND if rng.random() < 0.8 else b""

    def run(self, pieces: list[bytes]) -> Run:
        out = Run()
        self.app.calls = []
        self.app._ids = itertools.count(1)
        proto = self.server.build_protocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        with capture_logs() as logs:
            proto.makeConnection(transport)
            _feed(proto, transport, pieces, out)
        out.written = transport.value()
        out.calls = list(self.app.calls)
        out.errors = [e for e in logs if e.get("log_level") in ("error", "critical")]
        return out


class _Listener:
    """The link's listener: stores every receipt and MO at once, except MO from a sender ending
    in 9 (refused: the SMSC is answered ESME_RX_T_APPN)."""

    def __init__(self) -> None:
        self.calls: list = []

    def receipt_received(self, receipt):
        self.calls.append(("receipt", receipt))
        return succeed(None)

    def mo_received(self, mo):
        self.calls.append(("mo", mo))
        return fail(RuntimeError("store down")) if mo.sender.endswith("9") else succeed(None)

    def link_ready(self, operator):
        pass

    def bind_changed(self, operator, session, up):
        pass

    def pdu_counts(self, operator):
        return Counter()


class ClientRig:
    """The SMSC-facing operator link, bound, with submit_sm 2 and 3 outstanding, one fresh link
    per ``run`` (``packed_gsm`` on for data of an odd length)."""

    role = "client"

    def prefix(self, rng: random.Random) -> bytes:
        return b""

    def _connected(self, packed_gsm: bool):
        reactor = MemoryReactorClock()
        reactor.advance(T0)
        listener = _Listener()
        settings = LinkSettings(host="smsc.fuzz", port=2775, system_id="gw", password="pw",
                                packed_gsm=packed_gsm)
        link = OperatorLink("fuzz", settings, listener, reactor, jitter=lambda: 0.0)
        link.start()
        factory = reactor.tcpClients[0][2]
        outer = factory.buildProtocol(IPv4Address("TCP", "192.0.2.1", 2775))
        transport = StringTransport(peerAddress=PEER)
        outer.makeConnection(transport)
        bind = decode(transport.value())
        transport.clear()
        outer.dataReceived(encode(PDU("bind_transceiver_resp", bind.sequence,
                                      params={"system_id": "SMSC"})))
        return link, listener, _inner(outer), transport

    def run(self, pieces: list[bytes]) -> Run:
        out = Run()
        results: list = []
        with capture_logs() as logs:
            link, listener, proto, transport = self._connected(sum(map(len, pieces)) % 2 == 1)
            for n in range(2):
                request = SubmitRequest(f"m{n}", "46701234567", "ACME", "hello", "gsm7")
                link.submit(request).addBoth(lambda r: results.append(_outcome(r)))
            transport.clear()
            _feed(proto, transport, pieces, out)
        out.written = transport.value()
        out.calls = listener.calls + results
        out.errors = [e for e in logs if e.get("log_level") in ("error", "critical")]
        return out


def _inner(proto) -> SMPPProtocol:
    """The link's own protocol inside the endpoint's and the ClientService's wrappers."""
    while not isinstance(proto, SMPPProtocol):
        proto = getattr(proto, "_wrappedProtocol", None) or proto._protocol
    return proto


def _outcome(result) -> str:
    """A submit's result as comparable text (a Failure's repr holds an address)."""
    if isinstance(result, Failure):
        return f"failed: {result.type.__name__}: {result.getErrorMessage()}"
    return f"ok: {result!r}"


# --- the property -----------------------------------------------------------------------------------
def replies(written: bytes) -> list[PDU] | str:
    """The PDUs a role wrote, or why the bytes are not a sequence of whole PDUs."""
    decoder = Decoder()
    decoder.feed(written)
    pdus = []
    try:
        while (pdu := decoder.next_pdu()) is not NEED_DATA:
            pdus.append(pdu)
    except SMPPError as exc:
        return f"wrote bytes that do not decode: {exc}"
    if decoder.buffered:
        return f"wrote {decoder.buffered} octets of a partial PDU"
    return pdus


def check(rig, data: bytes, rng: random.Random) -> tuple[Run, list[str]]:
    """Run ``data`` through ``rig`` whole and in random chunks; the run and its problems."""
    whole = rig.run([data])
    problems = []
    if whole.raised:
        problems.append(f"raised:\n{whole.raised}")
    problems += [f"logged an error: {e}" for e in whole.errors]
    pdus = replies(whole.written)
    if isinstance(pdus, str):
        problems.append(pdus)
    if len(data) > 1:
        cut = rig.run(chunks(rng, data))
        if cut.same() != whole.same():
            problems.append(f"another chunking gave another result:\n  whole: {whole.same()}"
                            f"\n  cut:   {cut.same()}")
    return whole, problems


def outcome_kinds(run: Run) -> Counter:
    """What a run amounts to, for the figures: each reply by command and status, each call to
    the application by kind, and how the connection ended."""
    kinds: Counter = Counter()
    pdus = replies(run.written)
    for pdu in pdus if isinstance(pdus, list) else ():
        kinds[f"{pdu.command} {defs.status_name(pdu.status)}"] += 1
    for call in run.calls:
        kinds[f"call {call[0] if isinstance(call, tuple) else call.split(':')[0]}"] += 1
    if run.closed:
        kinds[f"closed: {run.closed.split(':')[0]}"] += 1
    return kinds
