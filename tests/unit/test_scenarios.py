"""Each misbehaving SMSC of ``connectors/sim/scenarios.py`` does what its docstring says, without
sockets: our ESME-side ``SMPPProtocol`` wired to the scenario through ``twisted.test.iosim`` and
driven by a ``Clock`` (the harness of ``tests.smsc_sim_rig``). What the *gateway* makes of each is
``tests/integration/test_misbehaving_smscs.py``."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from connectors.sim.scenarios import (
    SCENARIOS,
    BindRefused,
    DropMidWindow,
    DuplicateReceipts,
    GarbagePDUs,
    HexDecMixing,
    NoResponse,
    ReceiptBeforeResponse,
    ReceiptsOnAnotherSession,
    SlowResponses,
    Throttling,
    UnknownCommandId,
    sm_length_past_end,
    tlv_past_end,
    truncated_body,
    unframeable,
    unknown_command,
)
from connectors.smpp.codec import (
    DEFAULT_MAX_LENGTH,
    Decoder,
    FatalDecodeError,
    RecoverableDecodeError,
)
from connectors.smpp.defs import (
    ESME_RBINDFAIL,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARSTREAM,
    ESME_ROK,
    ESME_RTHROTTLED,
)
from connectors.smpp.protocol import RequestFailed
from connectors.smsc_sim import SimSettings, SimulatedSMSC
from tests.smsc_sim_rig import Harness, failure_status, result

NOW = SimSettings(system_id="gw", password="secret", receipt_delay=0.0)
FIRST_ID = 0xA00000  # ids a00000, a00001 ... (10485760 ... in decimal)


def harness(cls, settings: SimSettings = NOW, **kw) -> Harness:
    h = Harness(settings)
    h.sim = cls(settings, h.clock, "opsim", first_message_id=FIRST_ID, **kw)
    return h


def submit_noting_receipts(conn) -> tuple:
    """Submit; the Deferred of the response, and a list that gets how many receipts the ESME had
    when the response came."""
    seen: list[int] = []
    d = conn.client.request("submit_sm", {
        "source_addr": "Acme", "destination_addr": "46701234567", "registered_delivery": 1,
        "short_message": b"Hello"})
    d.addCallback(lambda resp: seen.append(len(conn.esme.receipts)) or resp)
    conn.pump.flush()
    return d, seen


def test_the_catalogue_has_one_documented_class_per_scenario():
    assert sorted(SCENARIOS) == sorted([
        "BindRefused", "SlowResponses", "NoResponse", "Throttling", "DropMidWindow",
        "GarbagePDUs", "UnknownCommandId", "ReceiptBeforeResponse", "HexDecMixing",
        "ReceiptsOnAnotherSession", "DuplicateReceipts", "ReusedIds"])
    for cls in SCENARIOS.values():
        assert issubclass(cls, SimulatedSMSC) and "Imitates" in cls.__doc__, cls


def test_bind_refused_refuses_the_first_binds_then_accepts():
    h = harness(BindRefused, refusals=2)
    conn = h.connect()
    credentials = {"system_id": "gw", "password": "secret"}
    assert failure_status(conn.send("bind_transceiver", credentials)) == ESME_RBINDFAIL
    assert failure_status(conn.send("bind_transceiver", credentials)) == ESME_RBINDFAIL
    assert conn.call("bind_transceiver", credentials).status == ESME_ROK
    assert h.sim.bind_attempts == 3 and len(h.sim.bound) == 1


def test_slow_responses_answer_after_the_delay_and_the_receipt_comes_after_that():
    h = harness(SlowResponses, delay=0.3)
    conn = h.bound()
    d, receipts_when_answered = submit_noting_receipts(conn)
    h.advance(0.29, conn)
    assert not d.called
    h.advance(0.01, conn)
    assert result(d).params["message_id"] == "a00000"
    assert receipts_when_answered == [0] and len(conn.esme.receipts) == 1  # then the receipt


def test_no_response_is_silent_once_per_chosen_destination_and_still_sends_the_receipt():
    h = harness(NoResponse, silent_for={"46701234567"})
    conn = h.bound()
    silent = conn.submit()
    other = conn.submit(to="46709876543")
    h.advance(5, conn)
    assert not silent.called and result(other).status == ESME_ROK
    again = result(conn.submit())  # the resend is answered
    assert again.params["message_id"] == "a00002"
    h.advance(0, conn)
    assert [r.tlvs["receipted_message_id"] for r in conn.esme.receipts] == [
        "a00000", "a00001", "a00002"]
    assert [r.message_id for r in h.sim.unanswered] == ["a00000"]


def test_throttling_refuses_submits_beyond_its_rate():
    h = harness(Throttling, tps=2)
    conn = h.bound()
    assert [failure_status(conn.submit()) if i == 2 else result(conn.submit()).status
            for i in range(3)] == [ESME_ROK, ESME_ROK, ESME_RTHROTTLED]
    h.advance(1.0, conn)
    assert result(conn.submit()).status == ESME_ROK
    assert h.sim.throttled == 1


def test_drop_mid_window_closes_with_the_submits_unanswered_and_keeps_their_receipts():
    h = harness(DropMidWindow, SimSettings(receipt_delay=1.0), hold=2)
    first = h.bound()
    a, b = first.submit(), first.submit(to="46709876543")
    h.advance(1, first)
    assert first.esme.closed and h.sim.drops == 1
    for d in (a, b):
        with pytest.raises(RequestFailed, match="connection lost"):
            result(d)
    assert first.esme.receipts == [] and h.sim.receipts_pending == 2
    second = h.bound()
    assert [r.tlvs["receipted_message_id"] for r in second.esme.receipts] == ["a00000", "a00001"]
    assert result(second.submit()).params["message_id"] == "a00002"  # later connections behave
    assert [r.message_id for r in h.sim.unanswered] == ["a00000", "a00001"]


@pytest.mark.parametrize("data, status", [
    (truncated_body(7), ESME_RINVCMDLEN),
    (sm_length_past_end(7), ESME_RINVMSGLEN),
    (tlv_past_end(7), ESME_RINVOPTPARSTREAM),
    (unknown_command(7), ESME_RINVCMDID),
])
def test_malformed_pdus_have_a_sane_header_and_a_bad_body(data, status):
    decoder = Decoder()
    decoder.feed(data)
    with pytest.raises(RecoverableDecodeError) as info:
        decoder.next_pdu()
    assert (info.value.sequence, info.value.status) == (7, status)


@pytest.mark.parametrize("length", [3, 15, DEFAULT_MAX_LENGTH + 1])
def test_unframeable_bytes_lose_the_framing(length):
    decoder = Decoder()
    decoder.feed(unframeable(length))
    with pytest.raises(FatalDecodeError):
        decoder.next_pdu()


def test_unknown_command_refuses_a_defined_command_id():
    with pytest.raises(ValueError):
        unknown_command(1, command_id=0x00000004)  # submit_sm


@pytest.mark.parametrize("cls, statuses", [
    (GarbagePDUs, [ESME_RINVCMDLEN, ESME_RINVMSGLEN, ESME_RINVOPTPARSTREAM]),
    (UnknownCommandId, [ESME_RINVCMDID, ESME_RINVCMDID]),
])
def test_interjections_follow_submit_responses_and_the_esmes_answers_are_kept(cls, statuses):
    h = harness(cls)
    conn = h.bound()
    for _ in range(4):
        assert result(conn.submit()).status == ESME_ROK
    assert [(p.command, p.sequence, p.status) for p in h.sim.answers] == [
        ("generic_nack", s, st) for s, st in zip(cls.SEQUENCES, statuses)]
    assert len(conn.esme.errors) == len(statuses) and not conn.esme.closed


def test_receipt_before_response_answers_once_the_receipt_is_acknowledged():
    h = harness(ReceiptBeforeResponse)
    conn = h.bound()
    d, receipts_when_answered = submit_noting_receipts(conn)
    h.advance(0, conn)
    assert result(d).params["message_id"] == "a00000"
    assert receipts_when_answered == [1]
    assert h.sim.answered_after_receipt == ["a00000"]
    assert result(conn.submit(registered_delivery=0)).status == ESME_ROK  # no receipt: no wait


@pytest.mark.parametrize("kw, response_id, receipt_id", [
    (dict(), "A00000", "10485760"),
    (dict(response_width=8, receipt_width=12), "00A00000", "000010485760"),
    (dict(response_base="dec", receipt_base="hex"), "10485760", "A00000"),
    (dict(response_base="dec", receipt_base="hex", upper=False, receipt_width=8),
     "10485760", "00a00000"),
])
@pytest.mark.parametrize("tlv", [False, True])
def test_hex_dec_mixing_prints_the_id_in_the_other_base(kw, response_id, receipt_id, tlv):
    h = harness(HexDecMixing, tlv=tlv, **kw)
    conn = h.bound()
    assert result(conn.submit()).params["message_id"] == response_id
    h.advance(0, conn)
    [r] = conn.esme.receipts
    assert r.params["short_message"].startswith(f"id:{receipt_id} ".encode())
    assert r.tlvs.get("receipted_message_id") == (receipt_id if tlv else None)
    assert r.tlvs["message_state"] == 2


def test_hex_dec_mixing_knows_only_two_bases():
    with pytest.raises(ValueError):
        HexDecMixing(NOW, Clock(), receipt_base="oct")


def test_receipts_on_another_session_wait_for_one_and_never_use_the_submitting_one():
    h = harness(ReceiptsOnAnotherSession)
    a = h.bound()
    result(a.submit())
    h.advance(5, a)
    assert a.esme.receipts == [] and h.sim.receipts_pending == 1
    b = h.bound()
    [r] = b.esme.receipts
    assert r.tlvs["receipted_message_id"] == "a00000"
    result(b.submit())
    h.advance(0, a, b)
    assert [r.tlvs["receipted_message_id"] for r in a.esme.receipts] == ["a00001"]
    assert h.sim.crossed == [("a00000", "opsim#1", "opsim#2"), ("a00001", "opsim#2", "opsim#1")]


@pytest.mark.parametrize("at_once", [False, True])
def test_duplicate_receipts_send_each_receipt_twice(at_once):
    h = harness(DuplicateReceipts, at_once=at_once)
    conn = h.bound()
    result(conn.submit())
    result(conn.submit())
    h.advance(0, conn)
    ids = [r.tlvs["receipted_message_id"] for r in conn.esme.receipts]
    assert sorted(ids) == ["a00000", "a00000", "a00001", "a00001"]
    assert h.sim.receipts_acked == 4 and h.sim.sent == {"a00000": 2, "a00001": 2}


# --- the SMSC core's hooks the scenarios stand on ---------------------------------------------------
def test_a_connection_the_smsc_is_closing_gets_no_receipt():
    h = Harness(SimSettings(receipt_delay=1.0))
    conn = h.bound()
    result(conn.submit())
    conn.server.close_reason = "closing"  # as between proto.close() and connectionLost
    h.advance(1, conn)
    assert conn.esme.receipts == [] and h.sim.receipts_pending == 1


def test_choose_receiver_returning_none_holds_the_receipt_until_the_next_flush():
    class Picky(SimulatedSMSC):
        allow = False

        def choose_receiver(self, receipt, ready):
            return ready[0] if self.allow else None

    h = harness(Picky)
    conn = h.bound()
    result(conn.submit())
    h.advance(1, conn)
    assert conn.esme.receipts == [] and h.sim.receipts_pending == 1
    h.sim.allow = True
    result(conn.submit())  # the next receipt due flushes the one held too
    h.advance(0, conn)
    assert [r.tlvs["receipted_message_id"] for r in conn.esme.receipts] == ["a00000", "a00001"]
