"""The gateway against each misbehaving SMSC of ``connectors/sim/scenarios.py`` (the catalogue in
``docs/smsc-scenarios.md``): a real SQLite store, a real ``Pipeline`` and ``OperatorLink``, the
scenario's SMSC on loopback (port 0), the real reactor.

For every scenario the store must end right: every accepted message ``delivered`` with the history
queued → submitted → delivered and no ``failed`` event; the SMSC took each destination once, except
where a submit got no response, and exactly those are counted in ``smsgw_submit_unanswered_total``.
Nothing sleeps: waits poll the store every 20 ms, bounded, and say what they waited for.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from decimal import Decimal

import pytest
import pytest_twisted
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.task import LoopingCall

from connectors.sim.scenarios import (
    BindRefused,
    DropMidWindow,
    DuplicateReceipts,
    ReusedIds,
    GarbagePDUs,
    HexDecMixing,
    NoResponse,
    ReceiptBeforeResponse,
    ReceiptsOnAnotherSession,
    SlowResponses,
    SystemErrors,
    Throttling,
    UnknownCommandId,
    unframeable,
)
from connectors.smpp.client import LinkSettings, OperatorLink
from connectors.smpp.codec import DEFAULT_MAX_LENGTH
from connectors.smpp.defs import (
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARSTREAM,
)
from connectors.smsc_sim import SimSettings
from smscore.config import PrefixTable
from smscore.metrics import Metrics
from smscore.model import Event, Message, Status, new_message_id
from smscore.pipeline import Pipeline
from smscore.routing import Routing
from smscore.store.base import StoreRules
from smscore.store.sqlite import SQLiteStore
from tests.harness.waiting import eventually

OPERATOR = "op"
SIM = SimSettings(system_id="gw", password="secret", receipt_delay=0.0)
FIRST_ID = 0xA00000  # hex ids have a letter, decimal ones 8 digits: no accidental cross-match
WAIT = 10.0
LINK = dict(system_id="gw", password="secret", window=10, response_timeout=0.5,
            reconnect_min=0.1, reconnect_max=0.4)
HISTORY = [Status.QUEUED, Status.SUBMITTED, Status.DELIVERED]


def to(i: int) -> str:
    return f"4670100{i:04d}"


class Gateway:
    """One gateway node (SQLite store, pipeline, one operator link) against ``sim``, as an async
    context manager that tears everything down even when the test fails. Logs are captured."""

    def __init__(self, tmp_path, sim, **link) -> None:
        self.sim = sim
        self.db = tmp_path / "gw.db"
        self.link_settings = {**LINK, **link}
        self.registry = CollectorRegistry()
        self.store = self.pipeline = self.link = None
        self._capture = capture_logs()

    async def __aenter__(self) -> "Gateway":
        self.logs = self._capture.__enter__()
        try:
            port = await self.sim.listen("127.0.0.1", 0)
            routing = Routing({"standard": (OPERATOR,)}, {OPERATOR: PrefixTable.flat(Decimal("0.10"))})
            self.store = SQLiteStore(self.db, reactor, rules=StoreRules(untried=routing.untried))
            await self.store.open()
            metrics = Metrics(self.registry)
            self.pipeline = Pipeline(store=self.store, clock=reactor, node="gw1", lease=30.0,
                                     routing=routing, metrics=metrics)
            self.link = OperatorLink(OPERATOR, LinkSettings("127.0.0.1", port, **self.link_settings),
                                     self.pipeline, reactor, jitter=lambda: 0.0)
            metrics.watch_binds(lambda: [(OPERATOR, s, up) for s, up in self.link.bind_states()])
            self.pipeline.add_link(self.link)
            await self.pipeline.start()
            self.link.start()
        except BaseException:
            await self._teardown()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self._teardown()

    async def _teardown(self) -> None:
        try:
            steps = []
            if self.pipeline is not None:
                steps.append(self.pipeline.stop())
            if self.link is not None:
                steps.append(self.link.stop())
            await DeferredList(steps, consumeErrors=True)
            await DeferredList([self.sim.stop()], consumeErrors=True)
            if self.store is not None:
                await DeferredList([self.store.close()], consumeErrors=True)
        finally:
            self._capture.__exit__(None, None, None)

    # -- driving --
    async def accept(self, n: int) -> list[Message]:
        now = reactor.seconds()
        messages = []
        for i in range(n):
            m = Message(id=new_message_id(now), account="acme", to=to(i), sender="ACME",
                        text=f"scenario message {i}", encoding="gsm7", parts=1, profile="standard",
                        created_at=now, updated_at=now)
            m.events.append(Event(at=now, status=Status.QUEUED))
            messages.append(m)
        await self.pipeline.accept(messages)
        return messages

    async def statuses(self) -> dict:
        return {s.value: n for s, n in (await self.store.count_by_status()).items()}

    async def settled(self, messages, receipts: int | None = None, extra=lambda: True,
                      broken=lambda: "", timeout: float = WAIT) -> None:
        """Wait until every message is delivered and the SMSC had ``receipts`` receipts
        acknowledged (default: one per submit it took) with none left to send, and ``extra()``.
        Fail at once when ``broken()`` says what went wrong."""
        sim = self.sim

        async def check():
            problem = broken()
            if problem:
                pytest.fail(problem)
            want = len(sim.submits) if receipts is None else receipts
            return (await self.statuses() == {"delivered": len(messages)}
                    and sim.receipts_acked >= want and not sim.receipts_pending and extra())

        async def state():
            return (f"statuses {await self.statuses()}, SMSC took {len(sim.submits)} submits, "
                    f"{sim.receipts_acked} receipts acked, {sim.receipts_pending} pending")

        await eventually(check, f"{len(messages)} messages delivered and every receipt acked",
                         timeout, state)

    # -- reading --
    def sample(self, name: str, **labels) -> float:
        return self.registry.get_sample_value(name, labels) or 0

    def attempts(self, outcome: str) -> float:
        return self.sample("smsgw_operator_attempts_total", operator=OPERATOR, outcome=outcome)

    @property
    def unanswered(self) -> float:
        return self.sample("smsgw_submit_unanswered_total", operator=OPERATOR)

    def pdus(self, command: str, direction: str) -> float:
        return self.sample("smsgw_pdus_total", operator=OPERATOR, command=command,
                           direction=direction)

    def orphans(self) -> int:
        """Receipts stored without their message (distinct SMSC ids)."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(DISTINCT raw_id) FROM orphan_receipts").fetchone()[0]
        finally:
            conn.close()

    def submits_per_destination(self) -> Counter:
        return Counter(r.destination_addr for r in self.sim.submits)

    async def check_outcome(self, messages, twice=()) -> None:
        """What every scenario must leave: each message delivered once, with its plain history
        and no failure; the SMSC took each destination once, ``twice`` those it did not answer
        once; the metrics agree; nothing logged at error level."""
        for m in messages:
            stored = await self.store.get(m.id)
            assert stored.status is Status.DELIVERED, (m.to, stored.status)
            assert [e.status for e in stored.events] == HISTORY, (m.to, stored.events)
            last = stored.events[-1]
            assert last.final and last.operator == OPERATOR and stored.tried == (OPERATOR,)
        n = len(messages)
        expected = Counter({m.to: 1 for m in messages})
        expected.update(twice)
        assert self.submits_per_destination() == expected
        assert self.sample("smsgw_messages_total", status="delivered", operator=OPERATOR) == n
        assert self.sample("smsgw_messages_total", status="failed", operator=OPERATOR) == 0
        assert self.attempts("accepted") == n
        assert self.attempts("permanent") == 0
        assert self.unanswered == len(twice)
        assert self.pipeline.held == 0 and not any(self.pipeline.queues.values())
        assert [e for e in self.logs if e["log_level"] in ("error", "critical")] == []


# --- the catalogue ----------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_bind_refused_backs_off_and_binds_and_no_message_fails(tmp_path):
    sim = BindRefused(SIM, reactor, "bindrefused", refusals=3, first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim) as gw:
        messages = await gw.accept(5)  # before any bind: they wait
        assert await gw.statuses() == {"queued": 5} and not gw.link.is_up()
        # not bound yet: 0, not absent (an alert on == 0 must see a link refused from the start)
        assert gw.registry.get_sample_value("smsgw_bind_up", {"operator": OPERATOR, "session": f"{OPERATOR}/1"}) == 0
        await gw.settled(messages)
        await gw.check_outcome(messages)
        assert sim.bind_attempts == 4
        gaps = [b - a for a, b in zip(sim.bind_times, sim.bind_times[1:])]
        assert gaps == sorted(gaps) and gaps[0] >= 0.1, gaps  # 0.1, 0.2, 0.4 s: backing off
        assert gw.attempts("transient") == 0  # nothing was submitted while unbound
        assert gw.sample("smsgw_bind_up", operator=OPERATOR, session=f"{OPERATOR}/1") == 1


@pytest_twisted.ensureDeferred
async def test_slow_responses_are_waited_for_not_resent(tmp_path):
    sim = SlowResponses(SIM, reactor, "slow", delay=0.3, first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim, response_timeout=1.0) as gw:
        messages = await gw.accept(8)
        await gw.settled(messages)
        await gw.check_outcome(messages)
        assert gw.sample("smsgw_submit_seconds_count") == 8
        assert gw.sample("smsgw_submit_seconds_sum") >= 8 * 0.3 - 1e-6
        assert gw.attempts("transient") == 0


@pytest_twisted.ensureDeferred
async def test_no_response_times_out_resends_and_counts_the_possible_duplicate(tmp_path):
    silent = {to(1), to(3)}
    sim = NoResponse(SIM, reactor, "noresp", silent_for=silent, first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim) as gw:
        messages = await gw.accept(5)
        await gw.settled(messages)
        await gw.check_outcome(messages, twice=silent)
        assert {r.destination_addr for r in sim.unanswered} == silent
        assert gw.attempts("transient") == 2
        # The SMSC took the unanswered ones too: their receipts name ids the gateway never
        # learned, and stay stored as orphans without touching any message.
        assert gw.orphans() == 2


@pytest_twisted.ensureDeferred
async def test_throttling_slows_down_and_never_fails(tmp_path):
    sim = Throttling(SIM, reactor, "throttle", tps=5, first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim) as gw:
        messages = await gw.accept(12)
        await gw.settled(messages)
        await gw.check_outcome(messages)
        assert sim.throttled > 0
        assert gw.attempts("throttled") == sim.throttled
        assert gw.attempts("transient") == 0


@pytest_twisted.ensureDeferred
async def test_throttling_settles_near_the_smscs_rate_instead_of_bursting_into_refusals(tmp_path):
    """A backlog of 40 against an SMSC that takes 4 submits a second, window 10. Without the adaptive
    cap (measured at 149360b, before it), each 1 s back-off ended in a whole window again, and the
    one accepted submit of each burst reset the back-off: 52 ESME_RTHROTTLED for the 40, all
    delivered in 9.1 s (with 60 at 2 a second: 220 in 29.1 s). With it (``pacing.AdaptivePace``),
    throttled again after the first back-off, the link paces itself at 0.9 x what the SMSC
    accepted (3.6 a second) and probes upward after 5 s: 13 refused, all delivered in 11.5 s. The
    bound sits between, with a wide margin both ways."""
    sim = Throttling(SIM, reactor, "throttle", tps=4, first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim) as gw:
        paced = []  # what GET /v1/admin/binds says of the cap, every 0.1 s
        sampler = LoopingCall(lambda: paced.append(gw.link.describe().get("paced_at")))
        sampler.clock = reactor
        messages = await gw.accept(40)
        sampler.start(0.1)
        try:
            await gw.settled(messages, timeout=90.0)
        finally:
            sampler.stop()
        await gw.check_outcome(messages)  # every one delivered, none failed, each taken once
        assert gw.attempts("throttled") == sim.throttled
        assert 0 < sim.throttled <= 26, sim.throttled
        assert gw.attempts("transient") == 0
        assert min(p for p in paced if p is not None) == 3.6


@pytest_twisted.ensureDeferred
async def test_a_passing_system_error_backs_off_and_never_fails(tmp_path):
    """ESME_RSYSERR: sent again after a back-off (1 s, then 2 s), not at once in a loop."""
    sim = SystemErrors(SIM, reactor, "syserr", errors=3, first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim, window=1) as gw:  # one submit at a time: each refusal its own
        messages = await gw.accept(2)
        await gw.settled(messages, timeout=20.0)
        await gw.check_outcome(messages)
        assert len(sim.refused_at) == 3 and gw.attempts("transient") == 3
        gaps = [b - a for a, b in zip(sim.refused_at, sim.refused_at[1:])]
        assert gaps[0] >= 0.95 and gaps[1] >= 1.95, gaps  # 1 s, then 2 s


@pytest_twisted.ensureDeferred
async def test_connection_dropped_mid_window_resends_those_first_after_rebind(tmp_path):
    sim = DropMidWindow(SIM, reactor, "drop", hold=3, first_message_id=FIRST_ID)
    # A window of 3: exactly the 3 held submits are outstanding when the SMSC drops.
    async with Gateway(tmp_path, sim, window=3) as gw:
        messages = await gw.accept(8)
        await gw.settled(messages)
        dropped = {r.destination_addr for r in sim.unanswered}
        assert sim.drops == 1 and dropped == {to(0), to(1), to(2)}
        await gw.check_outcome(messages, twice=dropped)
        first, second = sim.submits[:3], sim.submits[3:]
        assert len({r.session for r in first}) == 1
        assert first[0].session not in {r.session for r in second}
        # resent at once: the first submits of the new session are the dropped ones
        assert {r.destination_addr for r in second[:3]} == dropped
        assert gw.attempts("transient") == 3
        assert gw.pdus("bind_transceiver", "out") == 2
        assert gw.orphans() == 3  # their receipts, for ids the gateway never learned


def one_session(sim):
    """For ``settled(broken=...)``: the gateway must not have dropped its only session."""
    def broken() -> str:
        sessions = {r.session for r in sim.submits}
        if len(sessions) > 1:
            return f"the gateway dropped its session: submits came on {sorted(sessions)}"
        return ""
    return broken


@pytest_twisted.ensureDeferred
async def test_garbage_pdus_are_nacked_and_the_session_carries_on(tmp_path):
    sim = GarbagePDUs(SIM, reactor, "garbage", first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim) as gw:
        messages = await gw.accept(5)
        await gw.settled(messages, extra=lambda: len(sim.answers) == 3, broken=one_session(sim))
        await gw.check_outcome(messages)
        assert [(p.command, p.sequence, p.status) for p in sim.answers] == [
            ("generic_nack", GarbagePDUs.SEQUENCES[0], ESME_RINVCMDLEN),
            ("generic_nack", GarbagePDUs.SEQUENCES[1], ESME_RINVMSGLEN),
            ("generic_nack", GarbagePDUs.SEQUENCES[2], ESME_RINVOPTPARSTREAM)]
        assert gw.pdus("bind_transceiver", "out") == 1  # one session all along
        assert len({r.session for r in sim.submits}) == 1


@pytest.mark.parametrize("command_length", [3, DEFAULT_MAX_LENGTH + 1])
@pytest_twisted.ensureDeferred
async def test_unframeable_pdu_closes_the_session_and_rebinds(tmp_path, command_length):
    sim = GarbagePDUs(SIM, reactor, "unframeable", interjections=[unframeable(command_length)],
                      first_message_id=FIRST_ID)
    # A window of 1: the garbage follows the response to the first submit. The second submit goes
    # out only once the first's outcome is stored (a submit counts as in flight until then), and
    # by then the gateway has read the garbage and closed: nothing is cut off, nothing sent twice.
    async with Gateway(tmp_path, sim, window=1) as gw:
        messages = await gw.accept(4)
        await gw.settled(messages)
        await gw.check_outcome(messages, twice=[])
        assert [(p.command, p.sequence, p.status) for p in sim.answers] == [
            ("generic_nack", 0, ESME_RINVCMDLEN)]
        assert gw.pdus("bind_transceiver", "out") == 2
        assert len({r.session for r in sim.submits}) == 2
        assert gw.attempts("transient") == 0


@pytest_twisted.ensureDeferred
async def test_unknown_command_ids_are_nacked_and_the_session_carries_on(tmp_path):
    sim = UnknownCommandId(SIM, reactor, "unknowncmd", first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim) as gw:
        messages = await gw.accept(4)
        await gw.settled(messages, extra=lambda: len(sim.answers) == 2, broken=one_session(sim))
        await gw.check_outcome(messages)
        assert [(p.command, p.sequence, p.status) for p in sim.answers] == [
            ("generic_nack", s, ESME_RINVCMDID) for s in UnknownCommandId.SEQUENCES]
        assert gw.pdus("bind_transceiver", "out") == 1


@pytest_twisted.ensureDeferred
async def test_receipt_before_response_is_held_and_matched(tmp_path):
    sim = ReceiptBeforeResponse(SIM, reactor, "early", first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim, response_timeout=2.0) as gw:
        messages = await gw.accept(5)
        await gw.settled(messages)
        await gw.check_outcome(messages)
        assert sorted(sim.answered_after_receipt) == sorted(r.message_id for r in sim.submits)
        assert gw.orphans() == 0  # every early receipt found its message


@pytest.mark.parametrize("response_base, receipt_base, response_width, receipt_width, tlv", [
    ("hex", "dec", 0, 0, False),
    ("hex", "dec", 10, 12, False),
    ("dec", "hex", 0, 0, False),
    ("dec", "hex", 12, 10, False),
    ("hex", "dec", 8, 0, True),
])
@pytest_twisted.ensureDeferred
async def test_hex_and_decimal_ids_are_matched(tmp_path, response_base, receipt_base,
                                               response_width, receipt_width, tlv):
    sim = HexDecMixing(SIM, reactor, "hexdec", response_base=response_base,
                       receipt_base=receipt_base, response_width=response_width,
                       receipt_width=receipt_width, tlv=tlv, first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim) as gw:  # receipt_id_format "auto", the default
        messages = await gw.accept(5)
        await gw.settled(messages)
        await gw.check_outcome(messages)
        assert all(sim.receipt_id(r.message_id) != r.message_id for r in sim.submits)
        assert gw.orphans() == 0


@pytest_twisted.ensureDeferred
async def test_receipts_on_another_session_are_matched(tmp_path):
    sim = ReceiptsOnAnotherSession(SIM, reactor, "crossed", first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim, binds=2) as gw:
        sessions = [f"{OPERATOR}/1", f"{OPERATOR}/2"]
        await eventually(lambda: all(gw.sample("smsgw_bind_up", operator=OPERATOR, session=s)
                                     for s in sessions), "both sessions bound")
        messages = await gw.accept(10)
        await gw.settled(messages)
        await gw.check_outcome(messages)
        assert len({r.session for r in sim.submits}) == 2
        assert len(sim.crossed) == 10
        assert all(submitted != received for _, submitted, received in sim.crossed)
        assert gw.orphans() == 0


@pytest.mark.parametrize("at_once", [False, True], ids=["after-ack", "at-once"])
@pytest_twisted.ensureDeferred
async def test_duplicate_receipts_make_one_delivered_event(tmp_path, at_once):
    sim = DuplicateReceipts(SIM, reactor, "dupes", copies=2, at_once=at_once,
                            first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim) as gw:
        messages = await gw.accept(5)
        await gw.settled(messages, receipts=10)
        await gw.check_outcome(messages)  # one delivered event each, counted once
        assert sim.receipts_acked == 10 and sim.receipts_dropped == 0
        assert all(n == 2 for n in sim.sent.values()) and len(sim.sent) == 5
        assert gw.pdus("deliver_sm_resp", "out") == 10
        # a copy that found its message ended would be held for the next message the SMSC may give
        # its id (store.rules.held_for_next), but each names its message's number: sent again, not held
        assert gw.orphans() == 0


@pytest_twisted.ensureDeferred
async def test_ids_given_again_while_their_first_messages_wait_go_to_the_numbers_receipts_name(tmp_path):
    """The SMSC gives 3 ids over and over, and the receipts of the first 3 numbers come a second
    after the others: while those wait, their ids name 2 or 3 newer messages too. Each message
    ends delivered with its own receipt, none by another's (before schema 15 the newest message of
    an id took every receipt for it: 3 of the 9 were delivered, 6 waited)."""
    sim = ReusedIds(SIM, reactor, "reused", every=3, late_for={to(0), to(1), to(2)}, late=1.0,
                    first_message_id=FIRST_ID)
    async with Gateway(tmp_path, sim) as gw:
        messages = await gw.accept(9)
        await gw.settled(messages)
        await gw.check_outcome(messages)
        assert sorted(sim.given.values()) == [3, 3, 3]  # every id named three messages
        assert gw.orphans() == 0

