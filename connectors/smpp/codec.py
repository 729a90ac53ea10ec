"""One generic SMPP 3.4 codec over the tables of ``defs.py``: PDUs to bytes and back, no I/O.

Why this module exists: every SMPP byte the gateway reads or writes passes through here, more
than 3,000 times a second per direction, and every peer has its quirks. Keeping the codec free of
sockets, clocks and state makes it testable byte for byte against an independent implementation
(smpplib) and fast enough to stay a small share of the per-message budget.

Theory of operation
-------------------
* A ``PDU`` is a command name, a sequence number, a command_status, the mandatory body fields by
  their SMPP name (``params``) and the optional parameters (``tlvs``). C-Octet strings are ``str``
  (decoded as Latin-1, so decoding never fails on odd bytes), integers are ``int``,
  ``short_message`` is ``bytes``. ``sm_length`` never appears: it is derived from ``short_message``.
  Known TLVs are keyed by name (``int``, ``str`` or ``bytes`` value by their kind); unknown TLVs are
  keyed by their integer tag with the raw value bytes, and encode back unchanged, in the same order.
* At import, each command's body (``defs.BODIES``) is compiled into a *plan*: runs of consecutive
  integer fields become one precompiled ``struct.Struct``; C-strings and ``sm_length`` +
  ``short_message`` are single steps. ``encode`` and ``decode`` walk the plan; nothing is rebuilt
  per call.
* ``Decoder`` frames a byte stream: ``feed`` appends, ``next_pdu`` returns one ``PDU`` or
  ``NEED_DATA``. The command_length is checked as soon as its 4 octets are in, so a peer cannot make
  us buffer more than ``max_length`` octets.

Errors: who broke the protocol (as in h11)
------------------------------------------
* ``LocalProtocolError`` — *we* did: ``EncodeError`` (also a ``ValueError``) when a value does not
  fit its field (integer out of range, C-string longer than its SMPP maximum, ``short_message``
  over 254 octets, an unknown field or TLV name). We never truncate: a truncated address or message
  id is a silent bug.
* ``RemoteProtocolError`` — the *peer* did; carries ``sequence`` (or None), ``status`` (the
  command_status for the generic_nack) and ``reason``.
  ``FatalDecodeError``: command_length < 16 or > ``max_length``; the framing is lost, close the
  connection. The ``Decoder`` stays failed.
  ``RecoverableDecodeError``: the header was sane, the frame has been consumed, answer generic_nack
  and carry on. Unknown (or body-less, e.g. submit_multi) command id → ESME_RINVCMDID; a mandatory
  field running past the end of the frame (C-string without NUL, integer, missing body) →
  ESME_RINVCMDLEN; ``sm_length`` past the end → ESME_RINVMSGLEN; a TLV header or value past the
  end → ESME_RINVOPTPARSTREAM; an integer TLV whose length is not 1..4 → ESME_RINVPARLEN.

Leniency (be liberal in what you accept; each is a real-world peer quirk)
------------------------------------------------------------------------
* A C-string longer than its SMPP maximum but NUL-terminated inside the frame is accepted whole.
* A C-string TLV (``receipted_message_id``…) without its trailing NUL decodes to the full value
  (smpplib drops the last character there; we must not, it is the id that matches a receipt).
* A response with an empty body decodes with zero-valued fields, whatever its status (SMPP 3.4
  §4.4.2 omits the body of an error response; some SMSCs omit it on success too). Encoding a
  response with a non-zero status, no TLVs and only zero-valued params writes the header only.
* A response whose last mandatory field is a C-string running to the end of the frame without a NUL
  (``message_id`` of submit_sm_resp, seen in the wild) is accepted whole.
* An integer TLV of 1..4 octets is read whatever its declared size; TLVs are accepted on any
  command; a repeated TLV keeps its last value.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from . import defs
from .defs import (
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARSTREAM,
    ESME_RINVPARLEN,
    ESME_RSYSERR,
)

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "Decoder",
    "EncodeError",
    "FatalDecodeError",
    "LocalProtocolError",
    "NEED_DATA",
    "PDU",
    "RecoverableDecodeError",
    "RemoteProtocolError",
    "SMPPError",
    "decode",
    "encode",
]

DEFAULT_MAX_LENGTH = 64 * 1024
HEADER_LENGTH = 16

_HEADER = struct.Struct(">IIII")
_LENGTH = struct.Struct(">I")
_TLV_HEAD = struct.Struct(">HH")
_INT_FORMATS = {1: "B", 2: "H", 4: "I"}
_OCTET = tuple(bytes((i,)) for i in range(256))


class _Sentinel:
    """A named singleton, compared with ``is`` (h11 style)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: Returned by ``Decoder.next_pdu`` and ``Session.next_event`` until a whole PDU is buffered.
NEED_DATA = _Sentinel("NEED_DATA")


@dataclass(slots=True)
class PDU:
    """One SMPP PDU, decoded: what the session and the adapters pass around instead of bytes."""

    command: str
    sequence: int
    status: int = 0
    params: dict[str, object] = field(default_factory=dict)
    tlvs: dict[str | int, object] = field(default_factory=dict)

    @property
    def is_response(self) -> bool:
        return self.command in defs.RESPONSES


# --- errors ---------------------------------------------------------------------------------------
class SMPPError(Exception):
    """Base of every error this package raises."""


class LocalProtocolError(SMPPError):
    """We broke the protocol: our own code asked for something SMPP cannot express or allow.

    Never caused by the peer; it points at a bug or a missing check in the caller.
    """


class EncodeError(LocalProtocolError, ValueError):
    """A value does not fit its field; raised instead of truncating it."""


class RemoteProtocolError(SMPPError):
    """The peer broke the protocol. ``status`` is the command_status to answer with."""

    def __init__(self, reason: str, *, sequence: int | None = None, status: int = ESME_RSYSERR,
                 command_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sequence = sequence
        self.status = status
        self.command_id = command_id


class RecoverableDecodeError(RemoteProtocolError):
    """The frame was consumed but its body is unusable: answer generic_nack, keep the session."""


class FatalDecodeError(RemoteProtocolError):
    """The framing is lost (bad command_length): the connection must be closed."""


# --- compiled plans -------------------------------------------------------------------------------
_CSTR, _INTS, _SM = 0, 1, 2
_ZERO = {defs.CSTRING: "", defs.INT: 0, defs.SM: b""}


class _Plan:
    """A command's body compiled for ``encode``/``decode`` (built once, at import)."""

    __slots__ = ("name", "command_id", "is_response", "steps", "names", "defaults", "lenient")

    def __init__(self, name: str, body: tuple[defs.Field, ...]) -> None:
        self.name = name
        self.command_id = defs.COMMAND_IDS[name]
        self.is_response = name in defs.RESPONSES
        steps: list[tuple] = []
        run: list[defs.Field] = []

        def flush() -> None:
            if run:
                fmt = ">" + "".join(_INT_FORMATS[f.size] for f in run)
                names = tuple(f.name for f in run)
                steps.append((_INTS, names, struct.Struct(fmt), (0,) * len(names)))
                run.clear()

        for f in body:
            if f.kind == defs.INT:
                run.append(f)
                continue
            flush()
            if f.kind == defs.CSTRING:
                steps.append((_CSTR, f.name, f.size, None))
            elif f.kind == defs.SM:
                steps.append((_SM, f.name, f.size, None))
            else:  # pragma: no cover - table error
                raise TypeError(f"{name}.{f.name}: unknown kind {f.kind!r}")
        flush()
        self.steps = tuple(steps)
        self.names = frozenset(f.name for f in body)
        self.defaults = {f.name: _ZERO[f.kind] for f in body}
        last = self.steps[-1] if self.steps else None
        self.lenient = last if (self.is_response and last and last[0] == _CSTR) else None


_PLANS: dict[str, _Plan] = {name: _Plan(name, body) for name, body in defs.BODIES.items()}
_PLANS_BY_ID: dict[int, _Plan] = {p.command_id: p for p in _PLANS.values()}

_T_INT, _T_CSTR, _T_OCTETS, _T_FLAG = 0, 1, 2, 3
_TLV_KIND = {defs.INT: _T_INT, defs.CSTRING: _T_CSTR, defs.OCTETS: _T_OCTETS, defs.FLAG: _T_FLAG}
#: tag → (name, kind) for decoding; name → (tag, kind, size, header-or-full Struct) for encoding.
_TLV_DEC = {t.tag: (t.name, _TLV_KIND[t.kind]) for t in defs.TLVS}
_TLV_ENC = {
    t.name: (t.tag, _TLV_KIND[t.kind], t.size,
             struct.Struct(">HH" + _INT_FORMATS[t.size]) if t.kind == defs.INT else _TLV_HEAD)
    for t in defs.TLVS
}


# --- encode ---------------------------------------------------------------------------------------
def encode(pdu: PDU) -> bytes:
    """The wire bytes of ``pdu``. Missing params encode as '' / 0 / b''. Raises ``EncodeError``."""
    plan = _PLANS.get(pdu.command)
    if plan is None:
        raise EncodeError(f"cannot encode command {pdu.command!r}")
    params = pdu.params
    tlvs = pdu.tlvs
    if params and not plan.names.issuperset(params):
        raise EncodeError(f"{pdu.command}: unknown params {sorted(set(params) - plan.names)}")
    try:
        if plan.is_response and pdu.status and not tlvs and not any(params.values()):
            body = b""  # SMPP 3.4 §4.4.2: no body in an error response
        else:
            parts: list[bytes] = []
            append = parts.append
            get = params.get
            for kind, name, arg, zeros in plan.steps:
                if kind == _INTS:
                    append(arg.pack(*map(get, name, zeros)))
                elif kind == _CSTR:
                    value = get(name)
                    if not value:
                        append(b"\0")
                        continue
                    raw = value.encode("latin-1") if value.__class__ is str else _octets(value)
                    if len(raw) >= arg or 0 in raw:
                        raise EncodeError(f"{pdu.command}.{name}: {value!r} holds a NUL or does"
                                          f" not fit a C-string of {arg} octets with its NUL")
                    append(raw + b"\0")
                else:  # _SM
                    value = get(name) or b""
                    if not isinstance(value, (bytes, bytearray, memoryview)):
                        raise EncodeError(f"{pdu.command}.{name} must be bytes, not {type(value)}")
                    if len(value) > arg:
                        raise EncodeError(f"{pdu.command}.{name}: {len(value)} octets > {arg}")
                    append(_OCTET[len(value)])
                    append(value)
            if tlvs:
                _encode_tlvs(pdu.command, tlvs, append)
            body = b"".join(parts)
        return _HEADER.pack(HEADER_LENGTH + len(body), plan.command_id, pdu.status,
                            pdu.sequence) + body
    except struct.error as exc:
        raise EncodeError(f"{pdu.command}: {_misfit(plan, pdu) or exc}") from None
    except UnicodeEncodeError as exc:
        raise EncodeError(f"{pdu.command}: a C-string is not Latin-1: {exc}") from None


def _encode_tlvs(command: str, tlvs: dict, append) -> None:
    for key, value in tlvs.items():
        if key.__class__ is int:
            raw = _octets(value)
            if not 0 <= key <= 0xFFFF or len(raw) > 0xFFFF:
                raise EncodeError(f"{command}: TLV tag 0x{key:X} or its length does not fit")
            append(_TLV_HEAD.pack(key, len(raw)))
            append(raw)
            continue
        spec = _TLV_ENC.get(key)
        if spec is None:
            raise EncodeError(f"{command}: unknown TLV {key!r} (use its integer tag)")
        tag, kind, size, st = spec
        if kind == _T_INT:
            append(st.pack(tag, size, value))
            continue
        if kind == _T_CSTR:
            raw = value.encode("latin-1") if value.__class__ is str else _octets(value)
            if len(raw) >= size or 0 in raw:
                raise EncodeError(f"{command}: TLV {key} {value!r} does not fit {size} octets"
                                  " with its NUL, or holds a NUL")
            raw += b"\0"
        elif kind == _T_FLAG:
            raw = b"" if value is True or value is None else _octets(value)
        else:
            raw = _octets(value)
            if len(raw) > (size or 0xFFFF):
                raise EncodeError(f"{command}: TLV {key} has {len(raw)} octets > {size or 0xFFFF}")
        append(st.pack(tag, len(raw)))
        append(raw)


def _misfit(plan: _Plan, pdu: PDU) -> str:
    """Which integer did not fit (only on the error path: struct.error does not say)."""
    fields = [("sequence", pdu.sequence, 4), ("status", pdu.status, 4)]
    fields += [(f.name, pdu.params.get(f.name, 0), f.size)
               for f in defs.BODIES[plan.name] if f.kind == defs.INT]
    fields += [(k, v, defs.TLVS_BY_NAME[k].size) for k, v in pdu.tlvs.items()
               if k in defs.TLVS_BY_NAME and defs.TLVS_BY_NAME[k].kind == defs.INT]
    for name, value, size in fields:
        if value.__class__ is not int or not 0 <= value < 1 << (8 * size):
            return f"{name}={value!r} is not an integer of {size} octet(s)"
    return ""


def _octets(value: object) -> bytes:
    # bytes(int) would allocate that many zero octets: accept only real byte strings.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise EncodeError(f"expected str or bytes, not {type(value).__name__}: {value!r}")


# --- decode ---------------------------------------------------------------------------------------
def decode(data: bytes) -> PDU:
    """Decode exactly one whole PDU (``data`` holds one frame, no more, no less).

    Convenience for tests and tools; a byte stream goes through ``Decoder``.
    """
    if len(data) < 4:
        raise FatalDecodeError(f"{len(data)} octets are not a PDU", status=ESME_RINVCMDLEN)
    (length,) = _LENGTH.unpack_from(data)
    if length != len(data) or length < HEADER_LENGTH:
        raise FatalDecodeError(f"command_length {length} but {len(data)} octets",
                               status=ESME_RINVCMDLEN)
    return _decode_frame(bytes(data))


def _decode_frame(frame: bytes) -> PDU:
    _, command_id, status, sequence = _HEADER.unpack_from(frame)
    plan = _PLANS_BY_ID.get(command_id)
    if plan is None:
        name = defs.COMMAND_NAMES.get(command_id)
        raise RecoverableDecodeError(
            f"unsupported command {name}" if name else f"unknown command_id 0x{command_id:08X}",
            sequence=sequence, status=ESME_RINVCMDID, command_id=command_id)
    end = len(frame)
    if end == HEADER_LENGTH:
        if plan.steps and not plan.is_response:
            raise RecoverableDecodeError(f"{plan.name} without its body", sequence=sequence,
                                         status=ESME_RINVCMDLEN, command_id=command_id)
        return PDU(plan.name, sequence, status, dict(plan.defaults), {})
    params: dict[str, object] = {}
    pos = HEADER_LENGTH
    for step in plan.steps:
        kind, name, arg, _ = step
        if kind == _INTS:
            nxt = pos + arg.size
            if nxt > end:
                raise RecoverableDecodeError(
                    f"{plan.name}: {name[0]} runs past the end of the PDU", sequence=sequence,
                    status=ESME_RINVCMDLEN, command_id=command_id)
            params.update(zip(name, arg.unpack_from(frame, pos)))
            pos = nxt
        elif kind == _CSTR:
            nul = frame.find(0, pos, end)
            if nul < 0:
                if step is not plan.lenient:
                    raise RecoverableDecodeError(
                        f"{plan.name}: C-string {name} has no NUL", sequence=sequence,
                        status=ESME_RINVCMDLEN, command_id=command_id)
                nul = end
            params[name] = frame[pos:nul].decode("latin-1")
            pos = nul + 1
        else:  # _SM
            if pos >= end:
                raise RecoverableDecodeError(
                    f"{plan.name}: sm_length runs past the end of the PDU", sequence=sequence,
                    status=ESME_RINVCMDLEN, command_id=command_id)
            nxt = pos + 1 + frame[pos]
            if nxt > end:
                raise RecoverableDecodeError(
                    f"{plan.name}: sm_length {frame[pos]} runs past the end of the PDU",
                    sequence=sequence, status=ESME_RINVMSGLEN, command_id=command_id)
            params[name] = frame[pos + 1:nxt]
            pos = nxt
    tlvs = _decode_tlvs(frame, pos, end, plan, sequence) if pos < end else {}
    return PDU(plan.name, sequence, status, params, tlvs)


def _decode_tlvs(frame: bytes, pos: int, end: int, plan: _Plan, sequence: int) -> dict:
    tlvs: dict[str | int, object] = {}
    while pos < end:
        if pos + 4 > end:
            raise RecoverableDecodeError(
                f"{plan.name}: {end - pos} stray octets after the TLVs", sequence=sequence,
                status=ESME_RINVOPTPARSTREAM, command_id=plan.command_id)
        tag, length = _TLV_HEAD.unpack_from(frame, pos)
        pos += 4
        nxt = pos + length
        if nxt > end:
            raise RecoverableDecodeError(
                f"{plan.name}: TLV 0x{tag:04X} length {length} runs past the end of the PDU",
                sequence=sequence, status=ESME_RINVOPTPARSTREAM, command_id=plan.command_id)
        known = _TLV_DEC.get(tag)
        if known is None:
            tlvs[tag] = frame[pos:nxt]
        else:
            name, kind = known
            if kind == _T_INT:
                if not 1 <= length <= 4:
                    raise RecoverableDecodeError(
                        f"{plan.name}: integer TLV {name} of length {length}", sequence=sequence,
                        status=ESME_RINVPARLEN, command_id=plan.command_id)
                tlvs[name] = int.from_bytes(frame[pos:nxt], "big")
            elif kind == _T_CSTR:
                nul = frame.find(0, pos, nxt)
                tlvs[name] = frame[pos:nxt if nul < 0 else nul].decode("latin-1")
            elif kind == _T_FLAG and length == 0:
                tlvs[name] = True
            else:
                tlvs[name] = frame[pos:nxt]
        pos = nxt
    return tlvs


class Decoder:
    """Frames a byte stream into PDUs; robust to bytes arriving one at a time.

    ``feed(data)`` appends; ``next_pdu()`` returns the next ``PDU`` or ``NEED_DATA``, or raises
    ``RecoverableDecodeError`` (frame consumed, call again) or ``FatalDecodeError`` (raised again on
    every later call: the stream cannot be resynchronised).
    """

    __slots__ = ("max_length", "_buf", "_pos", "_fatal")

    def __init__(self, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.max_length = max_length
        self._buf = bytearray()
        self._pos = 0
        self._fatal: FatalDecodeError | None = None

    def feed(self, data: bytes) -> None:
        if self._fatal is None:
            self._buf += data

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as a PDU."""
        return len(self._buf) - self._pos

    def next_pdu(self) -> PDU | _Sentinel:
        if self._fatal is not None:
            raise self._fatal
        buf = self._buf
        pos = self._pos
        end = len(buf)
        avail = end - pos
        if avail < 4:
            return self._need_data()
        (length,) = _LENGTH.unpack_from(buf, pos)
        if length < HEADER_LENGTH or length > self.max_length:
            self._fatal = FatalDecodeError(
                f"command_length {length} outside {HEADER_LENGTH}..{self.max_length}",
                status=ESME_RINVCMDLEN)
            self._buf = bytearray()
            self._pos = 0
            raise self._fatal
        if avail < length:
            return self._need_data()
        frame = bytes(buf[pos:pos + length])
        pos += length
        if pos == end:
            buf.clear()
            pos = 0
        self._pos = pos
        return _decode_frame(frame)

    def _need_data(self) -> _Sentinel:
        if self._pos:  # compact: at most one partial frame is moved
            del self._buf[:self._pos]
            self._pos = 0
        return NEED_DATA
