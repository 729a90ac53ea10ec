"""OperatorLink submitting (``tests.smpp_link_rig``): the parts and their fields, the error table,
windows, the least loaded session, throttling back-off, the adaptive cap and the tps bucket."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from connectors.api import SubmitError
from connectors.smpp import defs
from connectors.smpp.addressing import source_address
from connectors.smpp.client import SUBMIT_STATUS_KINDS
from connectors.smpp.defs import ESME_RINVDSTADR, ESME_RMSGQFUL, ESME_RSYSERR, ESME_RTHROTTLED
from connectors.smpp.text import concat_udh, gsm_pack
from tests.smpp_link_rig import Net, error_of


# --- submitting ----------------------------------------------------------------------------------------
def test_single_gsm_part_fields_and_key():
    net = Net()
    got = net.submit("Hello @ £ {x}", sender="ACME", to="+46701234567")
    [pdu] = net.smsc.submits
    p = pdu.params
    assert (p["source_addr_ton"], p["source_addr_npi"], p["source_addr"]) == (5, 0, "ACME")
    assert (p["dest_addr_ton"], p["dest_addr_npi"], p["destination_addr"]) == (1, 1, "46701234567")
    assert (p["esm_class"], p["data_coding"], p["registered_delivery"]) == (0, 0, 1)
    # one septet per octet; '{' is ESC + 0x28
    assert p["short_message"] == b"Hello \x00 \x01 \x1b\x28x\x1b\x29"
    assert got == [["1"]]  # "0001" normalised


def test_submit_to_answers_its_callbacks_with_their_arguments_once_without_a_deferred():
    from connectors.api import SubmitRequest

    net = Net()
    net.smsc.auto = False
    answers: list = []
    ok, failed = (lambda result, *args: answers.append((result, args))), (lambda e, *a: answers.append((e, a)))
    assert net.link.submit_to(SubmitRequest("m1", "46701234567", "ACME", "x" * 200, "gsm7"), ok, failed, "m", 1) is None
    net.flush()
    net.smsc.answer()
    net.flush()
    assert answers == []  # one part of two answered
    net.smsc.answer()
    net.flush()
    assert answers == [(["1", "2"], ("m", 1))]  # both parts' keys, once
    net.link.submit_to(SubmitRequest("m2", "46701234567", "ACME", "hi", "klingon"), ok, failed, "n")
    [(error, args)] = answers[1:]  # refused at once, to the errback
    assert isinstance(error, SubmitError) and error.kind == SubmitError.PERMANENT and args == ("n",)
    net.link.submit_to(SubmitRequest("m3", "46701234567", "ACME", "y" * 200, "gsm7"), ok, failed, "o")
    net.flush()
    net.smsc.answer(status=ESME_RINVDSTADR)  # the first part refused: the message fails
    net.smsc.answer(status=ESME_RINVDSTADR)  # the second too: no second answer
    net.flush()
    [(error, args)] = answers[2:]
    assert isinstance(error, SubmitError) and error.kind == SubmitError.PERMANENT and args == ("o",)


def test_multipart_gsm_has_udh_esm_class_and_a_rolling_reference():
    net = Net()
    net.smsc.auto = False
    text = "a" * 153 + "b" * 100
    got = net.submit(text)
    first, second = net.smsc.submits
    for n, pdu in enumerate((first, second), start=1):
        assert pdu.params["esm_class"] == 0x40
        assert pdu.params["data_coding"] == 0
        assert pdu.params["short_message"][:6] == bytes([5, 0, 3, 1, 2, n])
    assert first.params["short_message"][6:] == b"a" * 153
    assert second.params["short_message"][6:] == b"b" * 100
    # answered out of order: the keys still come back in part order
    net.smsc.answer(1, message_id="00BB")
    net.flush()
    assert got == []
    net.smsc.answer(0, message_id="00AA")
    net.flush()
    assert got == [["aa", "bb"]]
    net.smsc.auto = True
    net.submit(text)
    assert net.smsc.submits[2].params["short_message"][:6] == bytes([5, 0, 3, 2, 2, 1])
    net.submit("short")
    assert net.smsc.submits[4].params["esm_class"] == 0  # a single part takes no reference


def test_ucs2_and_latin1_data_coding():
    net = Net(latin1=True)
    net.submit("Привет", encoding="ucs2")
    net.submit("Café", encoding="latin1")
    ucs2, latin1 = net.smsc.submits
    assert (ucs2.params["data_coding"], ucs2.params["short_message"]) == (
        8, "Привет".encode("utf-16-be"))
    assert (latin1.params["data_coding"], latin1.params["short_message"]) == (3, b"Caf\xe9")


def test_multipart_ucs2_udh():
    net = Net()
    text = "Ж" * 100
    net.submit(text, encoding="ucs2")
    first, second = net.smsc.submits
    assert first.params["short_message"] == concat_udh(1, 2, 1) + ("Ж" * 67).encode("utf-16-be")
    assert second.params["short_message"] == concat_udh(1, 2, 2) + ("Ж" * 33).encode("utf-16-be")
    assert first.params["data_coding"] == 8 and first.params["esm_class"] == 0x40


def test_packed_gsm_single_and_multipart():
    net = Net(packed_gsm=True)
    net.submit("hello")
    text = "x" * 160 + "y"
    net.submit(text)
    single, first, second = net.smsc.submits
    assert single.params["short_message"] == gsm_pack(b"hello") == bytes.fromhex("e8329bfd06")
    assert first.params["short_message"] == concat_udh(1, 2, 1) + gsm_pack(b"x" * 153, 1)
    assert second.params["short_message"] == concat_udh(1, 2, 2) + gsm_pack(b"x" * 7 + b"y", 1)
    assert single.params["data_coding"] == 0


@pytest.mark.parametrize("request_kwargs, detail", [
    ({"text": "Привет", "encoding": "gsm7"}, "cannot be encoded"),
    ({"text": "hi", "encoding": "klingon"}, "unknown encoding"),
    ({"text": "hi", "encoding": "GSM7"}, "unknown encoding"),  # the API's names, not the Enum's
    ({"text": "hi", "to": "4" * 25}, "cannot encode"),
])
def test_what_the_link_cannot_send_fails_permanent_never_raises(request_kwargs, detail):
    net = Net()
    got = net.submit(**request_kwargs)
    err = error_of(got)
    assert err.kind == SubmitError.PERMANENT and detail in err.detail


@pytest.mark.parametrize("sender, expected", [
    ("ACME", (5, 0, "ACME")),
    ("Acme2024", (5, 0, "Acme2024")),
    ("72550", (3, 0, "72550")),
    ("123456", (3, 0, "123456")),
    ("4670111111", (1, 1, "4670111111")),
    ("+4670111111", (1, 1, "4670111111")),
    ("", (0, 0, "")),
])
def test_source_address_ton_npi(sender, expected):
    assert source_address(sender) == expected


@pytest.mark.parametrize("status, kind", [
    (ESME_RTHROTTLED, SubmitError.THROTTLED),
    (ESME_RMSGQFUL, SubmitError.THROTTLED),
    (ESME_RSYSERR, SubmitError.TRANSIENT),
    (defs.ESME_RX_T_APPN, SubmitError.TRANSIENT),
    (ESME_RINVDSTADR, SubmitError.PERMANENT),
    (defs.ESME_RINVSRCADR, SubmitError.PERMANENT),
    (0x104, SubmitError.PERMANENT),  # ESME_RINVDCS
    (defs.ESME_RINVESMCLASS, SubmitError.PERMANENT),
    (defs.ESME_RSUBMITFAIL, SubmitError.PERMANENT),
    (defs.ESME_RX_P_APPN, SubmitError.PERMANENT),
    (defs.ESME_RINVMSGLEN, SubmitError.PERMANENT),
    (0x400, SubmitError.PERMANENT),  # a vendor code
])
def test_submit_status_maps_to_an_error_kind(status, kind):
    net = Net()
    net.smsc.auto = False
    got = net.submit()
    net.smsc.answer(status=status)
    net.flush()
    err = error_of(got)
    assert err.kind == kind
    assert err.detail == defs.status_name(status)


def test_the_status_table_is_data():
    assert SUBMIT_STATUS_KINDS[ESME_RTHROTTLED] == SubmitError.THROTTLED
    assert all(k in (SubmitError.THROTTLED, SubmitError.TRANSIENT, SubmitError.PERMANENT)
               for k in SUBMIT_STATUS_KINDS.values())


def test_generic_nack_and_response_timeout_are_transient():
    net = Net(response_timeout=10.0)
    net.smsc.auto = False
    nacked = net.submit()
    net.smsc.nack()
    net.flush()
    assert error_of(nacked).kind == SubmitError.TRANSIENT
    assert "generic_nack" in error_of(nacked).detail and error_of(nacked).answered
    assert net.link.capacity() == 0  # the SMSC refused: the link backs off as for throttling
    net.advance(1.0)
    waiting = net.submit()
    net.advance(9.0)
    assert waiting == []
    ready = net.listener.ready
    net.advance(2.0)
    err = error_of(waiting)
    assert (err.kind, err.detail) == (SubmitError.TRANSIENT, "response timeout")
    assert net.listener.ready > ready  # the window slot is free again


def test_multipart_failing_part_way_fails_whole_with_the_first_error():
    net = Net()
    net.smsc.auto = False
    got = net.submit("z" * 400)  # 3 parts
    assert len(net.smsc.held) == 3
    net.smsc.answer(0)
    net.smsc.answer(0, status=ESME_RINVDSTADR)
    net.flush()
    err = error_of(got)
    assert (err.kind, err.detail) == (SubmitError.PERMANENT, "ESME_RINVDSTADR")
    net.smsc.answer(0, status=ESME_RSYSERR)  # a later answer changes nothing
    net.flush()
    assert len(got) == 1


def test_unsent_parts_of_a_failed_message_are_dropped():
    net = Net(window=1)
    net.smsc.auto = False
    got = net.submit("z" * 400)  # 3 parts, window of 1: one on the wire, two queued
    assert len(net.smsc.held) == 1
    net.smsc.answer(status=ESME_RINVDSTADR)
    net.flush()
    assert error_of(got).kind == SubmitError.PERMANENT
    assert len(net.smsc.submits) == 1
    assert net.link.capacity() == 1


def test_parts_wait_for_window_room_and_capacity_counts_them():
    net = Net(window=2)
    net.smsc.auto = False
    got = net.submit("z" * 400)  # 3 parts
    assert len(net.smsc.held) == 2
    assert net.link.capacity() == 0
    net.smsc.answer(0)
    net.flush()
    assert len(net.smsc.held) == 2  # the third part went out in the freed slot
    assert net.link.capacity() == 0
    net.smsc.answer(0)
    net.smsc.answer(0)
    net.flush()
    assert got == [["1", "2", "3"]]
    assert net.link.capacity() == 2


def test_window_full_gives_capacity_zero_and_a_response_makes_room():
    net = Net(window=2)
    net.smsc.auto = False
    net.submit()
    assert net.link.capacity() == 1
    net.submit()
    assert net.link.capacity() == 0
    ready = net.listener.ready
    net.smsc.answer()
    net.flush()
    assert net.link.capacity() == 1
    assert net.listener.ready == ready + 1


def test_parts_go_to_the_least_loaded_session():
    net = Net(binds=2, window=5)
    net.smsc.auto = False
    for _ in range(4):
        net.submit()
    per_session = {}
    for proto, _ in net.smsc.held:
        per_session[proto] = per_session.get(proto, 0) + 1
    assert sorted(per_session.values()) == [2, 2]
    assert net.link.capacity() == 6


# --- throttling and tps ---------------------------------------------------------------------------------
def test_throttled_backs_off_then_recovers_with_link_ready_and_grows_on_repeats():
    net = Net()
    net.smsc.auto = False
    got = net.submit()
    net.smsc.answer(status=ESME_RTHROTTLED)
    net.flush()
    assert error_of(got).kind == SubmitError.THROTTLED
    assert net.link.capacity() == 0 and net.link.is_up()
    ready = net.listener.ready
    net.advance(0.99)
    assert net.link.capacity() == 0
    assert net.listener.ready == ready
    net.advance(0.01)
    assert net.link.capacity() == 10
    assert net.listener.ready == ready + 1
    # throttled again right away: the back-off doubles
    net.submit()
    net.smsc.answer(status=ESME_RMSGQFUL)
    net.flush()
    net.advance(1.99)
    assert net.link.capacity() == 0
    net.advance(0.01)
    assert net.link.capacity() == 10
    # an accepted part resets it
    net.submit()
    net.smsc.answer()
    net.submit()
    net.smsc.answer(status=ESME_RTHROTTLED)
    net.flush()
    net.advance(1.0)
    assert net.link.capacity() == 10


def test_a_temporary_smsc_error_backs_the_link_off_as_throttling_does():
    """ESME_RSYSERR sent again at once came back at once: thousands of submits a second."""
    net = Net()
    net.submit()  # accepted: a throttling refusal now would cap the link
    net.smsc.auto = False
    got = net.submit()
    net.smsc.answer(status=ESME_RSYSERR)
    net.flush()
    error = error_of(got)
    assert (error.kind, error.detail, error.answered) == (SubmitError.TRANSIENT, "ESME_RSYSERR", True)
    assert net.link.capacity() == 0 and net.link.is_up()
    assert net.link.describe()["paced_at"] is None  # not about the rate: no cap, though one was accepted
    net.advance(1.0)
    assert net.link.capacity() == 10


def test_many_throttled_responses_of_one_window_are_one_back_off():
    net = Net()
    net.smsc.auto = False
    for _ in range(5):
        net.submit()
    for _ in range(5):
        net.smsc.answer(status=ESME_RTHROTTLED)
    net.flush()
    net.advance(1.0)
    assert net.link.capacity() == 10  # 1 s, not 1+2+4+8+16


def test_throttling_paces_the_link_below_what_the_smsc_accepted_then_the_cap_grows_and_goes():
    """pacing.AdaptivePace on the link: 3 accepted and 7 throttled of a window measure 2.7 a
    second; throttled again after the back-off, the link caps itself there; 5 s at that, then twice
    as much a second; dropped once the backlog is gone and it holds nothing back. Its start, its
    growth and its end are each said once."""
    net = Net()
    net.smsc.auto = False

    def window():
        for _ in range(10):
            net.submit()
        for _ in range(3):
            net.smsc.answer()
        for _ in range(7):
            net.smsc.answer(status=ESME_RTHROTTLED)
        net.flush()

    window()
    assert net.link.describe()["paced_at"] is None and net.link.capacity() == 0  # a back-off only
    net.advance(1.0)
    window()  # throttled again at once: the SMSC limits the link
    assert net.link.describe()["paced_at"] == 2.7 and net.link.capacity() == 0
    net.advance(1.0)  # the back-off is over
    assert net.link.capacity() == 1  # 2.7 a second: a bucket of one token
    net.smsc.auto = True
    before = len(net.smsc.submits)
    for _ in range(40):  # a backlog: the link queues what the cap holds back, its timer sends it
        net.submit()
    for _ in range(100):
        net.advance(0.05)
    assert len(net.smsc.submits) - before == 13  # 1 at once, then one every 1/2.7 s: 5 s hold 13.5
    assert net.link.describe()["paced_at"] == 2.7
    with capture_logs() as logs:
        for _ in range(20):  # small steps: the link is asked (and held back) as it would be
            net.advance(0.05)
    assert net.link.describe()["paced_at"] == 5.4  # growing now: twice as much a second
    assert [e["event"] for e in logs] == ["the link's pace grows back"]  # said once, when the hold ends
    assert 2.7 <= logs[0]["paced_at"] < 5.4  # the cap at the first ask after the hold
    with capture_logs() as logs:
        while len(net.smsc.submits) - before < 40:
            net.advance(0.05)
    assert net.link.describe()["paced_at"] is not None  # it held the last one back
    assert logs == []  # growing is not said again
    with capture_logs() as logs:
        net.advance(1.0)
        assert net.link.capacity() == 10 and net.link.describe()["paced_at"] is None
    assert [e["event"] for e in logs] == ["the link's pace is no longer capped"]  # said once, as its start


def test_parts_queued_during_a_back_off_go_out_when_it_ends():
    net = Net(window=1)
    net.smsc.auto = False
    first = net.submit()
    second = net.submit()  # queued behind the first in the window
    net.smsc.answer(status=ESME_RTHROTTLED)
    net.flush()
    assert error_of(first).kind == SubmitError.THROTTLED
    assert len(net.smsc.submits) == 1  # the queued part waits out the back-off
    net.advance(1.0)
    assert len(net.smsc.submits) == 2
    net.smsc.answer()
    net.flush()
    assert second == [["1"]]


def test_tps_bucket_limits_capacity_and_refills_with_link_ready():
    net = Net(tps=20)  # a bucket of 2 tokens (0.1 s worth), one token every 0.05 s
    assert net.link.capacity() == 2
    assert net.reactor.getDelayedCalls()  # the protocols' timers
    timers = len(net.reactor.getDelayedCalls())
    net.submit()
    assert len(net.reactor.getDelayedCalls()) == timers  # not dry yet: no refill timer
    net.submit()
    assert net.link.capacity() == 0
    assert len(net.reactor.getDelayedCalls()) == timers + 1  # ran dry: one refill timer
    ready = net.listener.ready
    net.advance(0.049)
    assert net.link.capacity() == 0 and net.listener.ready == ready
    net.advance(0.001)
    assert net.listener.ready == ready + 1
    assert net.link.capacity() == 1


def test_tps_holds_back_parts_of_a_multipart_message():
    net = Net(tps=10)  # one token, refilled every 0.1 s
    got = net.submit("q" * 400)  # 3 parts
    assert len(net.smsc.submits) == 1
    net.advance(0.1)
    assert len(net.smsc.submits) == 2
    net.advance(0.1)
    assert len(net.smsc.submits) == 3
    assert got == [["1", "2", "3"]]


def test_tps_shared_across_sessions():
    net = Net(tps=10, binds=3)
    assert net.link.capacity() == 1
    net.submit()
    assert net.link.capacity() == 0


def test_a_bug_in_the_bookkeeping_of_an_answer_is_logged_and_the_connection_goes_on():
    # Answers reach the link without a Deferred (SMPPProtocol.request_to): what its bookkeeping
    # raises must be logged there, not raised into the protocol that read the answer.
    net = Net()
    [proto] = net.smsc.protos

    def broken(operator):
        raise ZeroDivisionError("a listener bug")

    net.listener.link_ready = broken
    with capture_logs() as logs:
        got = net.submit()
    assert got == [["1"]]  # the message was answered before the bug struck
    [entry] = [e for e in logs if e["event"] == "submit bookkeeping failed"]
    assert entry["log_level"] == "error" and entry["message_id"] == "m1"
    assert entry["exc_info"] is True  # the traceback goes with the line
    net.listener.link_ready = lambda operator: None
    assert net.submit() == [["2"]] and net.smsc.protos == [proto]  # the same connection goes on
