"""The SMPP session, a property: nothing the peer sends (arbitrary bytes, or well-formed PDUs of
any command in any state) makes it raise; every reply it makes is one well-formed PDU."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.smpp import defs
from connectors.smpp import session as smpp
from connectors.smpp.codec import NEED_DATA, PDU, Decoder, decode, encode
from tests.smpp_session_rig import bound_esme, bound_smsc, events


# --- property: nothing the peer sends makes the session raise ------------------------------------
ALLOWED_EVENTS = (smpp.RequestReceived, smpp.ResponseReceived, smpp.UnexpectedResponse,
                  smpp.EnquireLinkAnswered, smpp.PeerUnbound, smpp.RequestRejected, smpp.GenericNackSent,
                  smpp.MustClose)


def _sessions() -> list[smpp.Session]:
    return [smpp.Session(smpp.ESME, now=0.0), smpp.Session(smpp.SMSC, now=0.0), bound_esme(),
            bound_smsc(), bound_esme("bind_receiver")]


def _feed_all(data: bytes, chunk: int) -> None:
    for session in _sessions():
        session.send_request("enquire_link", now=0.0)
        for i in range(0, len(data), chunk):
            for event in events(session, data[i:i + chunk], now=1.0):
                assert isinstance(event, ALLOWED_EVENTS)
                reply = getattr(event, "reply", b"")
                if reply:
                    decode(reply)  # every reply is one well-formed PDU
        assert session.next_event() is NEED_DATA


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_never_raise(data, chunk):
    _feed_all(data, chunk)


_names = st.sampled_from(sorted(defs.BODIES))


@st.composite
def valid_pdus(draw) -> bytes:
    command = draw(_names)
    params = {}
    for f in defs.BODIES[command]:
        if f.kind == defs.CSTRING:
            params[f.name] = draw(st.text(st.characters(min_codepoint=1, max_codepoint=255),
                                          max_size=f.size - 1))
        elif f.kind == defs.INT:
            params[f.name] = draw(st.integers(0, (1 << (8 * f.size)) - 1))
        else:
            params[f.name] = draw(st.binary(max_size=f.size))
    tlvs = draw(st.dictionaries(st.sampled_from(["message_state", "receipted_message_id",
                                                 "sar_msg_ref_num", "message_payload"]),
                                st.just(None), max_size=3))
    values = {"message_state": 2, "receipted_message_id": "a1", "sar_msg_ref_num": 513,
              "message_payload": b"\x00\x01"}
    pdu = PDU(command, draw(st.integers(0, 0xFFFFFFFF)), draw(st.sampled_from([0, 0x58])),
              params, {k: values[k] for k in tlvs})
    return encode(pdu)


@st.composite
def mutated_streams(draw) -> bytes:
    frames = draw(st.lists(valid_pdus(), min_size=1, max_size=4))
    stream = bytearray(b"".join(frames))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(stream) - 1)))
        if op == "flip" and stream:
            stream[at] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del stream[at:]
        elif op == "insert":
            stream[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif stream:
            del stream[at:at + draw(st.integers(1, 8))]
    return bytes(stream)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_streams(), st.integers(min_value=1, max_value=40))
def test_mutated_valid_pdus_never_raise(data, chunk):
    _feed_all(data, chunk)


@settings(max_examples=200)
@given(st.lists(valid_pdus(), min_size=1, max_size=5), st.integers(min_value=1, max_value=50))
def test_valid_pdus_round_trip_whatever_the_chunking(frames, chunk):
    decoder = Decoder()
    stream = b"".join(frames)
    got = []
    for i in range(0, len(stream), chunk):
        decoder.feed(stream[i:i + chunk])
        while (pdu := decoder.next_pdu()) is not NEED_DATA:
            got.append(pdu)
    assert [encode(p) for p in got] == frames
