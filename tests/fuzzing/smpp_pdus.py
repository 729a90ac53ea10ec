"""Valid SMPP PDUs of every command, and the mutations that damage them: the inputs of the SMPP
fuzzing (``tests/fuzzing/smpp.py`` feeds them to the gateway's two roles).

* ``valid_pdu(rng)`` builds one PDU that ``encode`` accepts, any command, fields chosen to reach
  the interesting branches of what reads it: data codings, UDH, SAR TLVs, receipts, times,
  oversized ids, non-UTF-8 text, unknown TLVs; with the offsets of its length fields (``Frame``).
* ``mutate(rng, frame)`` damages one: bit flips, byte inserts and deletes, command_length /
  sm_length / TLV length rewrites, TLV splices, truncation, usually fixing the command_length
  afterwards so the damage reaches the body rather than only the framing.
* ``stream(rng)`` is one to four of them, most mutated; ``chunks(rng, data)`` cuts bytes as a
  network might (a quarter of the time one octet at a time).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from connectors.smpp import defs
from connectors.smpp.codec import PDU, encode

# --- valid PDUs -------------------------------------------------------------------------------------
#: Commands by weight: the ones the roles read fields of come most often.
_COMMANDS = (["submit_sm"] * 6 + ["deliver_sm"] * 6 + ["data_sm"] * 3 + ["query_sm"] * 2
             + ["cancel_sm"] * 2 + ["bind_transceiver", "bind_transmitter", "bind_receiver",
                                    "submit_sm_resp", "submit_sm_resp", "enquire_link",
                                    "enquire_link_resp", "generic_nack", "unbind", "unbind_resp",
                                    "replace_sm", "deliver_sm_resp", "bind_transceiver_resp",
                                    "outbind", "alert_notification", "query_sm_resp"])
_STATS = ("DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "ACCEPTD", "ENROUTE", "BUFFRED", "DELETED",
          "UNKNOWN", "delivrd", "Delivered", "", "XYZ")
_TIMES = ("", "261204120000000+", "261204120000004-", "000001000000000R", "991231235959948+",
          "000000000000000R", "261304120000000+", "26120412000000+",
          "261204120000000X", "99999999999999R", "abcdefghijklmno+", "2612041200000\xff+")


def _cstr(rng: random.Random, size: int) -> str:
    """A C-string value that fits ``size`` octets with its NUL: any Latin-1 character but NUL."""
    n = rng.choice((0, 1, rng.randrange(size), size - 1))
    return "".join(chr(rng.randrange(1, 256)) for _ in range(n))


def _digits(rng: random.Random, low: int = 1, high: int = 15) -> str:
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(low, high)))


def _text_bytes(rng: random.Random, data_coding: int, size: int) -> bytes:
    """User data for ``data_coding``: mostly right for it, sometimes any octets (non-UTF-8...)."""
    n = rng.choice((0, 1, rng.randrange(size + 1), size))
    kind = rng.random()
    if kind < 0.3:
        return bytes(rng.randrange(256) for _ in range(n))
    if data_coding == 8:
        text = "".join(chr(rng.choice((rng.randrange(32, 0xD800), rng.randrange(0xD800, 0xE000),
                                       rng.randrange(0xE000, 0x10000)))) for _ in range(n // 2))
        return text.encode("utf-16-be", "surrogatepass")
    if data_coding in (0, 1):
        return bytes(rng.randrange(0x80) for _ in range(n))
    return bytes(rng.randrange(0x20, 0x100) for _ in range(n))


def _udh(rng: random.Random) -> bytes:
    """A UDH: a concatenation element (8- or 16-bit), another element, or one that lies."""
    ref, total = rng.randrange(0x10000), rng.randrange(256)
    seq = rng.randrange(256)
    return rng.choice((
        bytes((5, 0, 3, ref & 0xFF, total, seq)),
        bytes((6, 8, 4, ref >> 8, ref & 0xFF, total, seq)),
        bytes((3, 0x24, 1, 1)),
        bytes((rng.randrange(256), 0, 3, 1, 2, 1)),
        bytes((5, 0, rng.randrange(256), 1, 2, 1)),
        b"\x00",
    ))


def _receipt_text(rng: random.Random) -> bytes:
    message_id = rng.choice((f"{rng.randrange(1 << 32):x}", _digits(rng), "", _cstr(rng, 70)))
    text = (f"id:{message_id} sub:001 dlvrd:{rng.choice(('001', '000', 'x'))} submit date:"
            f"{_digits(rng, 10, 10)} done date:{_digits(rng, 0, 12)} stat:{rng.choice(_STATS)}"
            f" err:{rng.choice(('000', '0', _digits(rng), 'abc', ''))} text:{_cstr(rng, 30)}")
    if rng.random() < 0.2:
        words = text.split(" ")
        rng.shuffle(words)
        text = rng.choice(("  ", " ", "\x00")).join(words).upper()
    return text.encode("latin-1", "replace")[:254]


def _param(rng: random.Random, command: str, f: defs.Field, params: dict) -> object:
    name = f.name
    if name == "system_id" and command.startswith("bind_") and not command.endswith("_resp"):
        return rng.choice(("acme-esme", "acme-esme", _cstr(rng, f.size)))
    if name == "password":
        return rng.choice(("s3cret", "s3cret", _cstr(rng, f.size)))
    if name in ("source_addr", "destination_addr", "esme_addr"):
        return rng.choice((_digits(rng), "4670" + _digits(rng, 7, 7), "ACME", "", _cstr(rng, f.size)))
    if name == "message_id":
        return rng.choice((f"{rng.randrange(1 << 32):x}", _digits(rng), "", _cstr(rng, f.size)))
    if name in ("schedule_delivery_time", "validity_period", "final_date"):
        return rng.choice(_TIMES + (_cstr(rng, f.size),))
    if name == "esm_class":
        return rng.choice((0, 0, 0x40, 0x04, 0x20, 0x08, 0x44, rng.randrange(256)))
    if name == "data_coding":
        return rng.choice((0, 0, 1, 3, 8, 8, 4, 0xF0, 0xF1, rng.randrange(256)))
    if name == "registered_delivery":
        return rng.choice((0, 1, 2, 3, rng.randrange(256)))
    if name == "short_message":
        if command == "deliver_sm" and params.get("esm_class", 0) & 0x3C:
            return _receipt_text(rng)
        data = _text_bytes(rng, params.get("data_coding", 0), f.size)
        if params.get("esm_class", 0) & 0x40 and rng.random() < 0.8:
            data = (_udh(rng) + data)[:f.size]
        return data
    if f.kind == defs.INT:
        top = (1 << (8 * f.size)) - 1
        return rng.choice((0, 1, top, rng.randrange(top + 1)))
    return _cstr(rng, f.size)


def _tlvs(rng: random.Random, command: str) -> dict:
    """Zero to four TLVs: the ones the roles read, with values in and out of their ranges, and
    unknown tags."""
    tlvs: dict = {}
    for _ in range(rng.choice((0, 0, 1, 1, 2, 4))):
        kind = rng.randrange(9)
        if kind == 0:
            tlvs["message_payload"] = bytes(rng.randrange(256) for _ in range(
                rng.choice((0, 1, 140, 300, 2000))))
        elif kind == 1:
            for name in rng.sample(("sar_msg_ref_num", "sar_total_segments", "sar_segment_seqnum"),
                                   rng.choice((1, 2, 3, 3, 3))):
                tlvs[name] = rng.choice((0, 1, 2, 255, rng.randrange(256)))
        elif kind == 2:
            tlvs["receipted_message_id"] = rng.choice((f"{rng.randrange(1 << 32):X}", "",
                                                       _cstr(rng, 65)))
        elif kind == 3:
            tlvs["message_state"] = rng.choice((1, 2, 5, 8, 0, rng.randrange(256)))
        elif kind == 4:
            tlvs["network_error_code"] = bytes(rng.randrange(256) for _ in range(3))
        elif kind == 5:
            tlvs["user_message_reference"] = rng.randrange(0x10000)
        elif kind == 6:
            tlvs["alert_on_message_delivery"] = True
        elif kind == 7:
            tlvs["additional_status_info_text"] = _cstr(rng, 256)
        else:
            tag = rng.choice((0x1400, 0x1401, 0xFFFF, 0, rng.randrange(0x10000)))
            if tag not in defs.TLVS_BY_TAG:
                tlvs[tag] = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 7, 255))))
    return tlvs


@dataclass(frozen=True, slots=True)
class Frame:
    """One valid PDU and where its length fields are: (offset, octets) of command_length,
    sm_length and each TLV's length, so ``mutate`` can lie in them."""

    data: bytes
    lengths: tuple[tuple[int, int], ...]


def valid_pdu(rng: random.Random, command: str | None = None) -> Frame:
    """A random PDU that ``encode`` accepts, with the offsets of its length fields."""
    command = command or rng.choice(_COMMANDS)
    params: dict = {}
    for f in defs.BODIES[command]:
        params[f.name] = _param(rng, command, f, params)
    tlvs = _tlvs(rng, command)
    status = rng.choice((0, 0, 0, 0x58, rng.randrange(0x500))) if command in defs.RESPONSES else 0
    sequence = rng.choice((1, 2, 3, rng.randrange(1, 0x7FFFFFFF), 0, 0xFFFFFFFF))
    body = encode(PDU(command, sequence, status, params))
    data = encode(PDU(command, sequence, status, params, tlvs))
    lengths = [(0, 4)]
    sm = params.get("short_message")
    if sm is not None and len(body) > 16:
        lengths.append((len(body) - 1 - len(sm), 1))
    pos = len(body)
    while pos + 4 <= len(data):
        lengths.append((pos + 2, 2))
        pos += 4 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return Frame(data, tuple(lengths))


# --- mutations --------------------------------------------------------------------------------------
_ODD_LENGTHS = (0, 1, 15, 16, 17, 255, 256, 0xFFFF, 0x10000, 0x10001, 0x7FFFFFFF, 0xFFFFFFFF)


def _rewrite_length(rng: random.Random, buf: bytearray, frame: Frame) -> bool:
    """Lie in one length field; True when it was command_length (leave it as it is then)."""
    offset, size = rng.choice(frame.lengths)
    if offset + size > len(buf):
        return False
    old = int.from_bytes(buf[offset:offset + size], "big")
    top = (1 << (8 * size)) - 1
    new = rng.choice((old + 1, old - 1, old + rng.randrange(1, 300), rng.randrange(top + 1), top, 0,
                      *(v for v in _ODD_LENGTHS if v <= top)))
    buf[offset:offset + size] = (new & top).to_bytes(size, "big")
    return offset == 0


def _splice_tlv(rng: random.Random, buf: bytearray) -> None:
    """A raw TLV, its length right or not, at the end of the frame or anywhere in its body."""
    tag = rng.choice((*defs.TLVS_BY_TAG, rng.randrange(0x10000)))
    value = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 2, 3, 4, 5, 17, 300))))
    length = rng.choice((len(value), len(value), rng.randrange(0x10000)))
    at = len(buf) if rng.random() < 0.6 else rng.randrange(16, max(17, len(buf) + 1))
    buf[at:at] = tag.to_bytes(2, "big") + length.to_bytes(2, "big") + value


def mutate(rng: random.Random, frame: Frame) -> bytes:
    """``frame`` damaged by one to three mutations; the command_length is then made right again
    three times in four, unless a mutation rewrote it on purpose."""
    buf = bytearray(frame.data)
    lied = False
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        at = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[at] = rng.choice((0, 0xFF, 0x80, rng.randrange(256)))
        elif op == 2:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3:
            del buf[at:at + rng.randint(1, 8)]
        elif op == 4:
            lied = _rewrite_length(rng, buf, frame) or lied
        elif op == 5:
            _splice_tlv(rng, buf)
        elif op == 6:
            del buf[rng.randrange(len(buf) + 1):]
        else:
            buf += buf[at:at + rng.randint(1, 40)]
    if not lied and len(buf) >= 4 and rng.random() < 0.75:
        buf[0:4] = len(buf).to_bytes(4, "big")
    return bytes(buf)


def stream(rng: random.Random) -> bytes:
    """One to four PDUs, most of them mutated, as one byte string."""
    frames = [valid_pdu(rng) for _ in range(rng.randint(1, 4))]
    data = b"".join(mutate(rng, f) if rng.random() < 0.8 else f.data for f in frames)
    if rng.random() < 0.1:
        data = data[:rng.randrange(len(data) + 1)]
    return data


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    """``data`` cut at random places; a quarter of the time into single octets."""
    if rng.random() < 0.25:
        return [data[i:i + 1] for i in range(len(data))]
    out, pos = [], 0
    while pos < len(data):
        n = rng.randint(1, max(1, len(data) // 2))
        out.append(data[pos:pos + n])
        pos += n
    return out
