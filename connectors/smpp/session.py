"""The SMPP session state machine, sans I/O: one per TCP connection, either role (ESME or SMSC).

Why this module exists: what may be sent when, which sequence number goes out, which response
belongs to which request and when a request has waited too long are protocol rules, not I/O. Kept
here, with time passed in as a float and bytes in and out, they are tested without a reactor, and
the Twisted adapters (``protocol.py``) stay thin: write the bytes we return, act on the events.

Theory of operation
-------------------
Bytes in → events out::

    session.receive_data(data, now=clock.seconds())
    while (event := session.next_event()) is not NEED_DATA:
        if getattr(event, "reply", b""):  write it first, in order
        ...act on the event...

Requests in → bytes out: ``send_request(command, params, tlvs, now=...)`` → ``(sequence, bytes)``
and ``send_response(request_pdu, status, params)`` → ``bytes``.

States::

    OPEN ──bind sent/received──▶ BINDING ──bind_resp ROK──▶ BOUND_TX | BOUND_RX | BOUND_TRX
      ▲                            │ bind_resp error                │ unbind sent
      └────────────────────────────┘                                ▼
    CLOSED ◀──unbind_resp received── UNBINDING;  peer unbind (auto-answered), framing lost or
    ``connection_lost()`` → CLOSED from any state.

``_MOVES`` is this diagram as a table (h11's way), and ``Session._move`` the one place that
changes the state by it.

``REQUEST_RULES`` is the one table of who may send which request in which state (SMPP 3.4 §2.3,
table 2-1). When *we* break it, ``send_request`` raises ``LocalProtocolError`` and nothing is sent.
When the *peer* breaks it, the session answers for the application: the command's response (or a
generic_nack for commands without one) with ESME_RINVBNDSTS (ESME_RALYBND for a second bind,
ESME_RINVCMDID for a command the peer's role never sends) and a ``RequestRejected`` event.

Also answered by the session itself, with the bytes in the event's ``reply``: enquire_link
(``EnquireLinkAnswered``), unbind (``PeerUnbound``; the state becomes CLOSED, the adapter closes the
connection once the reply is written), an undecodable PDU (``GenericNackSent``, the session carries
on; a malformed *response* is nacked too and its request stays in the window until it expires)
and lost framing (``MustClose``, with a generic_nack ESME_RINVCMDLEN as a courtesy; afterwards
``next_event`` only returns ``NEED_DATA``). Every other request is a ``RequestReceived`` the
application must answer with ``send_response`` (except outbind and alert_notification, which have
no response).

Outstanding requests live in an explicit ``Window`` (cloudhopper's idea): a response completes its
entry (``ResponseReceived`` with the request and the elapsed time) or, when none matches,
is an ``UnexpectedResponse``. The adapter calls ``window.expired(now)`` on a timer and fails what
it returns, and ``connection_lost()`` when the TCP connection drops: it returns every outstanding
entry, to requeue at once. bind, unbind and enquire_link are never refused for a full window.

Sequence numbers run 1..0x7FFFFFFF and wrap to 1. ``needs_enquire_link(now)`` is true when bound,
nothing has been received for ``enquire_link_interval`` seconds and no enquire_link is outstanding.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from . import defs
from .codec import (
    DEFAULT_MAX_LENGTH,
    NEED_DATA,
    PDU,
    Decoder,
    FatalDecodeError,
    LocalProtocolError,
    RecoverableDecodeError,
    encode,
)
from .defs import ESME_RALYBND, ESME_RINVBNDSTS, ESME_RINVCMDID, ESME_RINVCMDLEN, ESME_ROK

__all__ = [
    "ESME",
    "SMSC",
    "EnquireLinkAnswered",
    "GenericNackSent",
    "MAX_SEQUENCE",
    "MustClose",
    "PeerUnbound",
    "REQUEST_RULES",
    "RequestReceived",
    "RequestRejected",
    "ResponseReceived",
    "Session",
    "State",
    "UNKNOWN_COMMAND",
    "UnexpectedResponse",
    "Window",
    "WindowEntry",
    "WindowFull",
]

ESME = "esme"
SMSC = "smsc"
MAX_SEQUENCE = 0x7FFFFFFF
#: ``GenericNackSent.command`` of a PDU whose command_id SMPP does not define.
UNKNOWN_COMMAND = "unknown"


class State(enum.Enum):
    """Where a session stands (SMPP 3.4 §2.2), plus BINDING and UNBINDING while a bind or an
    unbind awaits its response."""

    OPEN = "open"
    BINDING = "binding"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBINDING = "unbinding"
    CLOSED = "closed"

    # Members are singletons compared by identity: hashing them by identity, in C, spares the
    # Python-level ``Enum.__hash__`` on every ``state in _BOUND`` (several a message at load).
    __hash__ = object.__hash__


_BIND_STATE = {
    "bind_transmitter": State.BOUND_TX,
    "bind_receiver": State.BOUND_RX,
    "bind_transceiver": State.BOUND_TRX,
}
_TX = frozenset({State.BOUND_TX, State.BOUND_TRX})
_RX = frozenset({State.BOUND_RX, State.BOUND_TRX})
_BOUND = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})
_OPEN = frozenset({State.OPEN})
_UNBIND = _BOUND | {State.UNBINDING}  # both sides may unbind at once
_LIVE = frozenset(State) - {State.CLOSED}
_BINDING_OR_BOUND = _BOUND | {State.BINDING}

#: Every change of a session's state, as h11 keeps them: (state, what happened) → the state after.
#: ``Session._move`` is the one place the state changes; what may be *sent* in each state is
#: ``REQUEST_RULES``'s, below, so no move here is reached by a request out of turn.
_MOVES: dict[tuple[State, str], State] = {
    (State.OPEN, "bind"): State.BINDING,  # a bind sent, or one received
    **{(State.BINDING, f"{command} accepted"): bound for command, bound in _BIND_STATE.items()},
    (State.BINDING, "bind refused"): State.OPEN,
    **{(state, "unbind sent"): State.UNBINDING for state in _UNBIND},  # both sides may unbind at once
    # unbind received or answered, framing lost, the connection gone
    **{(state, "closed"): State.CLOSED for state in State},
}

#: (role of the sender, request) → states of the session in which it may be sent.
REQUEST_RULES: dict[tuple[str, str], frozenset[State]] = {
    (ESME, "bind_transmitter"): _OPEN,
    (ESME, "bind_receiver"): _OPEN,
    (ESME, "bind_transceiver"): _OPEN,
    (SMSC, "outbind"): _OPEN,
    (ESME, "submit_sm"): _TX,
    (ESME, "submit_multi"): _TX,
    (ESME, "query_sm"): _TX,
    (ESME, "cancel_sm"): _TX,
    (ESME, "replace_sm"): _TX,
    (ESME, "data_sm"): _TX,
    (SMSC, "data_sm"): _RX,
    (SMSC, "deliver_sm"): _RX,
    (SMSC, "alert_notification"): _RX,
    (ESME, "unbind"): _UNBIND,
    (SMSC, "unbind"): _UNBIND,
    (ESME, "enquire_link"): _LIVE,
    (SMSC, "enquire_link"): _LIVE,
}
#: Requests that a full window never holds back: without them the session cannot live or end.
_CONTROL = frozenset({"bind_transmitter", "bind_receiver", "bind_transceiver", "unbind",
                      "enquire_link"})


# --- window ---------------------------------------------------------------------------------------
class WindowFull(LocalProtocolError):
    """``offer`` on a full window: the caller should have waited for ``Window.free``."""


@dataclass(slots=True)
class WindowEntry:
    """One outstanding request: what was sent, when, and until when its response may come."""

    sequence: int
    request: PDU
    sent_at: float
    deadline: float


class Window:
    """The requests sent and not yet answered, by sequence number (cloudhopper's ``Window``).

    Why a class of its own: the window is where SMPP flow control, response matching and response
    timeouts meet, and where nothing may be lost when a connection drops (``drain``).
    """

    __slots__ = ("size", "_entries", "free")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be at least 1, not {size}")
        self.size = size
        self._entries: dict[int, WindowEntry] = {}
        self.free = size  # more requests it takes now: kept by each change, read for every part sent

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, sequence: int) -> bool:
        return sequence in self._entries

    def offer(self, sequence: int, request: PDU, now: float, timeout: float, *,
              force: bool = False) -> WindowEntry:
        """Record ``request`` as sent at ``now``; ``force`` admits it even over ``size``."""
        if not force and not self.free:
            raise WindowFull(f"window of {self.size} is full")
        if sequence in self._entries:
            raise LocalProtocolError(f"sequence {sequence} is already outstanding")
        entry = WindowEntry(sequence, request, now, now + timeout)
        self._entries[sequence] = entry
        if self.free:  # else over size (forced): still none
            self.free -= 1
        return entry

    def complete(self, sequence: int, response: PDU) -> WindowEntry | None:
        """Remove and return the entry ``response`` answers; None when it answers none of them
        (unknown sequence, or a response of another command than the request's)."""
        entry = self._entries.get(sequence)
        if entry is None:
            return None
        if (response.command != defs.RESPONSE_OF.get(entry.request.command)
                and response.command != "generic_nack"):
            return None
        del self._entries[sequence]
        if self.free or len(self._entries) < self.size:  # not still over size (forced)
            self.free += 1
        return entry

    def expired(self, now: float) -> list[WindowEntry]:
        """Remove and return the entries whose deadline is at or before ``now``."""
        gone = [e for e in self._entries.values() if e.deadline <= now]
        for e in gone:
            del self._entries[e.sequence]
        self.free = max(0, self.size - len(self._entries))
        return gone

    def drain(self) -> list[WindowEntry]:
        """Remove and return every entry, oldest first (the connection is gone)."""
        entries = list(self._entries.values())
        self._entries.clear()
        self.free = self.size
        return entries


# --- events ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class RequestReceived:
    """The peer sent a request the application must answer with ``send_response``."""

    pdu: PDU


@dataclass(slots=True)
class ResponseReceived:
    """A response to one of our requests (a generic_nack counts); ``elapsed`` in seconds.
    For a bind response, ``Session.state`` already tells whether we are bound."""

    pdu: PDU
    request: PDU
    elapsed: float


@dataclass(frozen=True, slots=True)
class UnexpectedResponse:
    """A response matching no outstanding request (late after expiry, or bogus)."""

    pdu: PDU


@dataclass(frozen=True, slots=True)
class EnquireLinkAnswered:
    """The peer's enquire_link; ``reply`` is its enquire_link_resp, to write."""

    pdu: PDU
    reply: bytes


@dataclass(frozen=True, slots=True)
class PeerUnbound:
    """The peer unbound; ``reply`` is the unbind_resp to write, then close the connection."""

    pdu: PDU
    reply: bytes


@dataclass(frozen=True, slots=True)
class RequestRejected:
    """The peer sent a request not allowed now; ``reply`` answers it with ``status``."""

    pdu: PDU
    status: int
    reply: bytes


@dataclass(frozen=True, slots=True)
class GenericNackSent:
    """An undecodable PDU was consumed; ``reply`` is the generic_nack to write. Carry on.
    ``command`` names what was read: its command's name when SMPP defines its command_id,
    else ``UNKNOWN_COMMAND`` (a name from a fixed set, never the peer's raw id: a metric label)."""

    command: str
    reason: str
    sequence: int | None
    status: int
    reply: bytes


@dataclass(frozen=True, slots=True)
class MustClose:
    """The byte stream cannot be framed any more: write ``reply`` (may be empty), then close."""

    reason: str
    reply: bytes = b""


Event = (RequestReceived | ResponseReceived | UnexpectedResponse | EnquireLinkAnswered
         | PeerUnbound | RequestRejected | GenericNackSent | MustClose)


# --- session --------------------------------------------------------------------------------------
class Session:
    """One SMPP session (one TCP connection), ESME or SMSC side, with no I/O and no clock.

    Why a class: sequence numbers, bind state, the window and keep-alive bookkeeping belong to one
    connection and change together; see the module docstring for the rules.
    """

    def __init__(self, role: str, *, now: float, window_size: int = 10,
                 response_timeout: float = 30.0, enquire_link_interval: float = 30.0,
                 max_length: int = DEFAULT_MAX_LENGTH, first_sequence: int = 1) -> None:
        if role not in (ESME, SMSC):
            raise ValueError(f"role must be {ESME!r} or {SMSC!r}, not {role!r}")
        if not 1 <= first_sequence <= MAX_SEQUENCE:
            raise ValueError(f"first_sequence {first_sequence} outside 1..{MAX_SEQUENCE}")
        self.role = role
        self.peer_role = SMSC if role == ESME else ESME
        self.state = State.OPEN
        self.is_bound = False  # in a BOUND state: kept by ``_move``, read for every part sent
        self.window = Window(window_size)
        self.response_timeout = response_timeout
        self.enquire_link_interval = enquire_link_interval
        self.peer_system_id = ""
        self._decoder = Decoder(max_length)
        self._next_sequence = first_sequence
        self._now = now
        self._last_received = now
        self._enquire_sequence: int | None = None
        self._dead = False

    # -- properties --
    def _move(self, what: str) -> None:
        """Change the state by ``_MOVES``: a move the table lacks is a bug of this module (KeyError)."""
        self.state = _MOVES[(self.state, what)]
        self.is_bound = self.state in _BOUND

    @property
    def last_received(self) -> float:
        """When bytes last arrived from the peer (the keep-alive clock)."""
        return self._last_received

    # -- bytes in, events out --
    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the peer, arrived at ``now``; then call ``next_event`` until NEED_DATA."""
        if data:
            self._now = now
            self._last_received = now
            self._decoder.feed(data)

    def next_event(self) -> Event | object:
        """The next event, or ``NEED_DATA``. Never raises for anything the peer sends."""
        if self._dead:
            return NEED_DATA
        try:
            pdu = self._decoder.next_pdu()
        except RecoverableDecodeError as exc:
            reply = encode(PDU("generic_nack", exc.sequence or 0, exc.status))
            command = defs.COMMAND_NAMES.get(exc.command_id, UNKNOWN_COMMAND)
            return GenericNackSent(command, exc.reason, exc.sequence, exc.status, reply)
        except FatalDecodeError as exc:
            self._dead = True
            self._move("closed")
            return MustClose(exc.reason, encode(PDU("generic_nack", 0, ESME_RINVCMDLEN)))
        if pdu is NEED_DATA:
            return NEED_DATA
        if pdu.command in defs.RESPONSES:
            return self._on_response(pdu)
        return self._on_request(pdu)

    def _on_response(self, pdu: PDU) -> Event:
        entry = self.window.complete(pdu.sequence, pdu)
        if entry is None:
            return UnexpectedResponse(pdu)
        command = entry.request.command
        if command in _BIND_STATE and self.state is State.BINDING:
            if pdu.status == ESME_ROK and pdu.command != "generic_nack":
                self._move(f"{command} accepted")
                self.peer_system_id = str(pdu.params.get("system_id", ""))
            else:
                self._move("bind refused")
        elif command == "unbind":
            self._move("closed")
        elif command == "enquire_link" and entry.sequence == self._enquire_sequence:
            self._enquire_sequence = None
        return ResponseReceived(pdu, entry.request, self._now - entry.sent_at)

    def _on_request(self, pdu: PDU) -> Event:
        command = pdu.command
        allowed = REQUEST_RULES.get((self.peer_role, command))
        if allowed is None:
            return self._reject(pdu, ESME_RINVCMDID)
        if self.state not in allowed:
            already = command in _BIND_STATE and self.state in _BINDING_OR_BOUND
            return self._reject(pdu, ESME_RALYBND if already else ESME_RINVBNDSTS)
        if command == "enquire_link":
            return EnquireLinkAnswered(pdu, encode(PDU("enquire_link_resp", pdu.sequence)))
        if command == "unbind":
            self._move("closed")
            return PeerUnbound(pdu, encode(PDU("unbind_resp", pdu.sequence)))
        if command in _BIND_STATE:
            self._move("bind")
        return RequestReceived(pdu)

    def _reject(self, pdu: PDU, status: int) -> RequestRejected:
        reply = encode(PDU(defs.response_to(pdu.command), pdu.sequence, status))
        return RequestRejected(pdu, status, reply)

    # -- requests in, bytes out --
    def send_request(self, command: str, params: dict | None = None, tlvs: dict | None = None, *,
                     now: float, timeout: float | None = None) -> tuple[int, bytes]:
        """Encode a request with the next sequence number and record it in the window.

        Raises ``LocalProtocolError`` when ``command`` may not be sent by our role in this state,
        ``WindowFull`` when the window is full (never for bind, unbind, enquire_link) and
        ``EncodeError`` for a value that does not fit; in every case nothing changed. ``params``
        and ``tlvs`` are kept by reference in the window entry: do not mutate them afterwards.
        """
        if command in defs.RESPONSES or command not in defs.COMMAND_IDS:
            raise LocalProtocolError(f"{command!r} is not a request")
        allowed = REQUEST_RULES.get((self.role, command))
        if allowed is None:
            raise LocalProtocolError(f"an {self.role.upper()} never sends {command}")
        if self.state not in allowed:
            raise LocalProtocolError(f"{command} not allowed in state {self.state.name}")
        answered = command in defs.RESPONSE_OF
        force = command in _CONTROL
        if answered and not force and not self.window.free:
            raise WindowFull(f"window of {self.window.size} is full")
        sequence = self._next_sequence
        pdu = PDU(command, sequence, ESME_ROK, params or {}, tlvs or {})
        data = encode(pdu)
        self._next_sequence = 1 if sequence >= MAX_SEQUENCE else sequence + 1
        if answered:
            self.window.offer(sequence, pdu, now,
                              self.response_timeout if timeout is None else timeout, force=force)
        if command in _BIND_STATE:
            self._move("bind")
        elif command == "unbind":
            self._move("unbind sent")
        elif command == "enquire_link":
            self._enquire_sequence = sequence
        return sequence, data

    def send_response(self, request: PDU, status: int = ESME_ROK, params: dict | None = None,
                      tlvs: dict | None = None) -> bytes:
        """Encode the response to the peer's ``request``. Answering a bind with ESME_ROK binds
        the session (SMSC side); with an error it returns to OPEN."""
        response = defs.RESPONSE_OF.get(request.command)
        if response is None or request.command in defs.RESPONSES:
            raise LocalProtocolError(f"{request.command} has no response")
        data = encode(PDU(response, request.sequence, status, params or {}, tlvs or {}))
        if request.command in _BIND_STATE and self.state is State.BINDING:
            if status == ESME_ROK:
                self._move(f"{request.command} accepted")
                self.peer_system_id = str(request.params.get("system_id", ""))
            else:
                self._move("bind refused")
        return data

    # -- time and teardown --
    def needs_enquire_link(self, now: float) -> bool:
        """True when a keep-alive should be sent now (see the module docstring)."""
        return (self.state in _BOUND
                and now - self._last_received >= self.enquire_link_interval
                and (self._enquire_sequence is None
                     or self._enquire_sequence not in self.window))

    def connection_lost(self) -> list[WindowEntry]:
        """The TCP connection is gone: CLOSED, and every outstanding request, to requeue."""
        self._move("closed")
        self._dead = True
        return self.window.drain()
