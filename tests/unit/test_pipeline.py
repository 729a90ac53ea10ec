"""The pipeline, driven by a Clock with an in-memory store and fake operator links."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs
from twisted.internet.task import Clock

from connectors.api import ReceiptOutcome, SubmitError
from smscore.config import PrefixTable, parse_config
from smscore.metrics import Metrics
from smscore.model import Event, Message, Status, new_message_id
from smscore.pipeline import Pipeline
from smscore.routing import Routing
from smscore.store.base import StoreRules
from smscore.store.memory import MemoryStore
from tests.fakes import FakeLink

COSTS = {"cheap": Decimal("0.10"), "dear": Decimal("0.20")}
TABLES = {op: PrefixTable.flat(cost) for op, cost in COSTS.items()}  # every number at that cost


def make(clock, links=("cheap", "dear"), max_in_memory=1000, window=10, store=None, elsewhere=frozenset(),
         claim_batch=1000, others_alive=False, hold_limit=lambda: None):
    metrics = Metrics(CollectorRegistry())
    routing = Routing({"standard": ("dear", "cheap")}, TABLES)
    store = store or MemoryStore(StoreRules(untried=routing.untried))
    p = Pipeline(store=store, clock=clock, node="gw1", lease=30.0, routing=routing, metrics=metrics,
                 max_in_memory=max_in_memory, claim_batch=claim_batch, held_elsewhere=lambda: elsewhere,
                 others_alive=lambda: others_alive, hold_limit=hold_limit)
    fakes = {}
    for name in links:
        fakes[name] = FakeLink(name, window=window)
        p.add_link(fakes[name])
    return p, store, fakes, metrics


def message(clock, to="46701234567"):
    now = clock.seconds()
    m = Message(id=new_message_id(now), account="acme", to=to, sender="ACME", text="hello", encoding="gsm7",
                parts=1, profile="standard", created_at=now, updated_at=now)
    m.events.append(Event(at=now, status=Status.QUEUED))
    return m


def run(d):
    out = []
    d.addBoth(out.append)
    assert out, "the Deferred did not fire synchronously"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def test_accepted_messages_are_leased_to_this_node_while_it_has_room_else_stored_for_anyone():
    clock = Clock()
    clock.advance(1000)
    p, store, _, _ = make(clock, max_in_memory=1)
    first, second = message(clock), message(clock, to="46701234568")
    run(p.accept([first]))
    assert store.leases[first.id] == ("gw1", 1030.0)
    run(p.accept([second]))  # no room left in memory: unclaimed, no lease
    assert store.leases[second.id] == (None, None)


def test_accepted_message_goes_to_the_cheapest_operator_and_is_delivered():
    clock = Clock()
    clock.advance(1000)
    p, store, links, metrics = make(clock)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    assert [r.message_id for r, _ in links["cheap"].submits] == [m.id]
    assert links["dear"].submits == []
    clock.advance(0.5)
    key = links["cheap"].accept()
    assert store.messages[m.id].status is Status.SUBMITTED
    clock.advance(2)
    with capture_logs() as logs:
        run(p.receipt_received(links["cheap"].receipt(key)))
    assert store.messages[m.id].status is Status.DELIVERED
    assert [(e["event"], e["log_level"], e["operator"]) for e in logs] == [("message delivered", "debug", "cheap")]
    r = metrics.registry
    # operator: the event's; "" while no operator was tried (SPEC §14)
    assert r.get_sample_value("smsgw_messages_total", {"status": "queued", "operator": ""}) == 1
    assert r.get_sample_value("smsgw_messages_total", {"status": "delivered", "operator": "cheap"}) == 1
    assert r.get_sample_value("smsgw_messages_total", {"status": "submitted", "operator": "cheap"}) == 1
    assert r.get_sample_value("smsgw_submit_seconds_count") == 1
    assert r.get_sample_value("smsgw_submit_seconds_sum") == 0.5
    assert r.get_sample_value("smsgw_delivery_seconds_sum", {"operator": "cheap"}) == 2.5
    assert p.held == 0


def test_window_limits_what_is_in_flight_and_a_response_frees_it():
    clock = Clock()
    p, store, links, metrics = make(clock, window=2)
    run(p.start())
    ms = [message(clock) for _ in range(5)]
    run(p.accept(ms))
    assert len(links["cheap"].submits) == 2
    assert metrics.registry.get_sample_value("smsgw_queue_depth", {"operator": "cheap"}) == 3
    assert metrics.registry.get_sample_value("smsgw_inflight", {"operator": "cheap"}) == 2
    links["cheap"].accept()
    p.link_ready("cheap")
    assert len(links["cheap"].submits) == 2


def test_a_link_that_replaces_another_brings_its_own_limit_of_what_is_in_flight():
    clock = Clock()
    p, _, links, _ = make(clock, links=("cheap",), window=1)
    run(p.start())
    wider = FakeLink("cheap", window=3)  # the same operator after a reload, with a wider window
    p.add_link(wider)
    run(p.accept([message(clock) for _ in range(5)]))
    assert links["cheap"].submits == [] and len(wider.submits) == 3


def test_throttled_submit_is_requeued_without_failure():
    clock = Clock()
    p, store, links, metrics = make(clock)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    links["cheap"].refuse(SubmitError.THROTTLED, "ESME_RTHROTTLED")
    assert store.messages[m.id].status is Status.QUEUED
    assert store.messages[m.id].tried == ()
    p.link_ready("cheap")
    assert [r.message_id for r, _ in links["cheap"].submits] == [m.id]
    assert metrics.registry.get_sample_value("smsgw_messages_total", {"status": "failed", "operator": "cheap"}) is None


def test_an_smsc_that_keeps_refusing_a_message_for_now_fails_it_over_after_five_times():
    """ESME_RSYSERR and the like: sent again (the link backs off meanwhile), but a message the
    SMSC refuses five times in a row has failed there and goes to the next operator (SPEC §7);
    refusals an accepted submit interrupts start again, and a lost connection is no refusal."""
    clock = Clock()
    p, store, links, _ = make(clock)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    cheap = links["cheap"]
    for _ in range(4):
        cheap.refuse(SubmitError.TRANSIENT, "ESME_RSYSERR", answered=True)
        p.link_ready("cheap")
    cheap.refuse(SubmitError.TRANSIENT, "connection lost")  # the link's trouble, not the SMSC's answer
    p.link_ready("cheap")
    assert store.messages[m.id].status is Status.QUEUED and links["dear"].submits == []
    cheap.refuse(SubmitError.TRANSIENT, "ESME_RSYSERR", answered=True)  # the fifth
    assert [r.message_id for r, _ in links["dear"].submits] == [m.id]
    stored = store.messages[m.id]
    assert [(e.status, e.operator, e.detail) for e in stored.events][1:3] == [
        (Status.FAILED, "cheap", "ESME_RSYSERR (5 times in a row)"), (Status.QUEUED, None, "next operator after cheap")]
    # on the next operator the count starts again; an accepted submit ends a run of refusals
    n = message(clock)
    run(p.accept([n]))
    for _ in range(4):
        cheap.refuse(SubmitError.TRANSIENT, "ESME_RSYSERR", answered=True)
        waiting = p.queues["cheap"][0]  # the pipeline's own copy, back at the front of the queue
        p.link_ready("cheap")
    assert waiting.id == n.id and waiting.refusals == 4
    cheap.accept()
    assert store.messages[n.id].status is Status.SUBMITTED and waiting.refusals == 0


def test_permanent_submit_error_fails_over_to_the_next_operator():
    clock = Clock()
    p, store, links, _ = make(clock)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    links["cheap"].refuse(SubmitError.PERMANENT, "ESME_RINVDSTADR")
    assert [r.message_id for r, _ in links["dear"].submits] == [m.id]
    key = links["dear"].accept()
    run(p.receipt_received(links["dear"].receipt(key)))
    stored = store.messages[m.id]
    assert stored.status is Status.DELIVERED and stored.operator == "dear"
    assert [(e.status, e.operator, e.final) for e in stored.events] == [
        (Status.QUEUED, None, False), (Status.FAILED, "cheap", False), (Status.QUEUED, None, False),
        (Status.SUBMITTED, "dear", False), (Status.DELIVERED, "dear", True)]


def test_failed_receipt_resends_through_the_next_operator():
    clock = Clock()
    p, store, links, _ = make(clock)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    key = links["cheap"].accept()
    clock.advance(5)
    run(p.receipt_received(links["cheap"].receipt(key, ReceiptOutcome.FAILED, "UNDELIV")))
    assert store.messages[m.id].status is Status.QUEUED
    assert store.leases[m.id] == ("gw1", 35.0)  # this node's again, leased from the receipt on
    assert [r.message_id for r, _ in links["dear"].submits] == [m.id]
    assert p.held == 1


def test_a_failed_receipt_that_came_before_its_submit_was_stored_fails_over_when_it_is():
    clock = Clock()
    p, store, links, _ = make(clock)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    clock.advance(5)
    run(p.receipt_received(links["cheap"].receipt("cheap-1", ReceiptOutcome.FAILED, "UNDELIV")))  # held
    clock.advance(2)
    assert links["cheap"].accept() == "cheap-1"
    assert store.messages[m.id].status is Status.QUEUED
    assert store.leases[m.id] == ("gw1", 37.0)  # leased from the submit's answer on
    assert [r.message_id for r, _ in links["dear"].submits] == [m.id]


def test_a_down_operator_is_skipped_but_messages_wait_when_all_are_down():
    clock = Clock()
    p, store, links, _ = make(clock)
    run(p.start())
    links["cheap"].up = False
    m = message(clock)
    run(p.accept([m]))
    assert [r.message_id for r, _ in links["dear"].submits] == [m.id]
    links["dear"].up = False
    m2 = message(clock)
    run(p.accept([m2]))
    assert [x.id for x in p.queues["cheap"]] == [m2.id]
    links["cheap"].up = True
    p.bind_changed("cheap", "cheap/1", True)
    assert [r.message_id for r, _ in links["cheap"].submits] == [m2.id]


def test_stop_releases_what_is_queued_in_memory():
    clock = Clock()
    p, store, links, _ = make(clock, window=1)
    run(p.start())
    ms = [message(clock) for _ in range(3)]
    run(p.accept(ms))
    run(p.stop())
    # One is in flight (window 1); the two queued are given back, claimable by another node at once.
    got = run(store.claim("gw2", clock.seconds(), clock.seconds() + 30, 10))
    assert [m.id for m in got] == [m.id for m in ms[1:]]


def test_an_unanswered_submit_is_sent_again_and_counted_as_a_possible_duplicate():
    clock = Clock()
    p, store, links, metrics = make(clock)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    request, d = links["cheap"].submits.pop(0)
    links["cheap"].outstanding -= 1
    with capture_logs() as logs:
        d.errback(SubmitError(SubmitError.TRANSIENT, "response timeout", maybe_sent=True))
    assert metrics.registry.get_sample_value("smsgw_submit_unanswered_total", {"operator": "cheap"}) == 1
    [line] = [e for e in logs if e["log_level"] == "warning"]  # one line, for ops looking for a duplicate
    assert (line["message_id"], line["operator"], line["reason"]) == (m.id, "cheap", "response timeout")
    p.link_ready("cheap")
    assert [r.message_id for r, _ in links["cheap"].submits] == [m.id]
    assert store.messages[m.id].status is Status.QUEUED and store.messages[m.id].tried == ()


def submitted_on_one_operator(receipt_timeout: float):
    """A pipeline on a clock at 1000 s with one operator, "cheap", and one message it submitted
    there: (clock, pipeline, store, metrics, message)."""
    clock = Clock()
    clock.advance(1000)
    metrics = Metrics(CollectorRegistry())
    routing = Routing({"standard": ("cheap",)}, TABLES)
    store = MemoryStore(StoreRules(untried=routing.untried))
    p = Pipeline(store=store, clock=clock, node="gw1", lease=30.0, metrics=metrics,
                 receipt_timeout=receipt_timeout, routing=routing)
    link = FakeLink("cheap")
    p.add_link(link)
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    link.accept()
    return clock, p, store, metrics, m


def test_no_receipt_within_receipt_timeout_makes_the_message_unknown():
    clock, _, store, metrics, m = submitted_on_one_operator(600.0)
    clock.advance(599)
    assert store.messages[m.id].status is Status.SUBMITTED
    clock.advance(61)  # the sweep runs every minute (a tenth of the timeout, at most 60 s)
    assert store.messages[m.id].status is Status.UNKNOWN
    assert metrics.registry.get_sample_value("smsgw_messages_total", {"status": "unknown", "operator": "cheap"}) == 1


def test_a_reloaded_receipt_timeout_applies_at_once():
    """docs/configuration.md: receipt_timeout is applied at reload: the next sweep uses it, and the
    sweeps come as often as it needs (72 h swept each minute; 5 s each second)."""
    clock, p, store, _, m = submitted_on_one_operator(72 * 3600.0)
    p.receipt_timeouts.set_timeout(5.0)
    clock.advance(4.5)
    assert store.messages[m.id].status is Status.SUBMITTED
    clock.advance(1.0)
    assert store.messages[m.id].status is Status.UNKNOWN


def test_messages_waiting_for_an_operator_that_goes_down_move_to_one_that_is_up():
    clock = Clock()
    p, store, links, _ = make(clock, window=1)
    run(p.start())
    ms = [message(clock) for _ in range(3)]
    run(p.accept(ms))
    assert len(links["cheap"].submits) == 1 and len(p.queues["cheap"]) == 2
    links["cheap"].up = False
    p.bind_changed("cheap", "cheap/1", False)
    # dear has a window of 1 too: one goes at once, the other waits in dear's queue, in order.
    assert [r.message_id for r, _ in links["dear"].submits] == [ms[1].id]
    assert [m.id for m in p.queues["dear"]] == [ms[2].id] and not p.queues["cheap"]
    # With every operator down, messages wait (with the cheapest): nothing spins, nothing fails.
    links["dear"].up = False
    p.bind_changed("dear", "dear/1", False)
    assert [m.id for m in p.queues["cheap"]] == [ms[2].id] and not p.queues["dear"]
    assert len(links["cheap"].submits) == 1 and len(links["dear"].submits) == 1
    assert store.messages[ms[2].id].status is Status.QUEUED
    links["cheap"].up = True
    links["cheap"].accept()
    p.bind_changed("cheap", "cheap/1", True)
    assert [r.message_id for r, _ in links["cheap"].submits] == [ms[2].id]


def test_mo_parts_are_stored_then_handed_on_whole_and_a_stuck_one_after_the_timeout():
    from connectors.api import MoFacts

    clock = Clock()
    clock.advance(1000)
    store = MemoryStore()
    got = []
    p = Pipeline(store=store, clock=clock, node="gw1", lease=30.0, mo_reassembly_timeout=60.0,
                 routing=Routing({"standard": ("cheap",)}, TABLES), on_mo=got.append)
    run(p.start())
    part = lambda seq, text, ref=1: MoFacts("cheap", "46701234567", "72550", text, (ref, 2, seq))  # noqa: E731
    assert run(p.mo_received(part(2, "world"))) is None
    assert got == [] and len(store.mo_parts) == 1
    run(p.mo_received(part(1, "hello ")))
    assert [m.text for m in got] == ["hello world"]
    run(p.mo_received(MoFacts("cheap", "46701234567", "72550", "STOP")))
    assert [m.text for m in got][-1] == "STOP"
    run(p.mo_received(part(1, "lonely ", ref=9)))
    clock.advance(59)
    assert len(got) == 2
    clock.advance(12)
    assert got[-1].text == "lonely " and "missing part(s) 2" in got[-1].note


def test_routing_policy_prefers_the_learned_operator_and_puts_recent_failures_last():
    from policies.routing import OperatorOption, choose_operator, rank

    opts = [OperatorOption("a", Decimal("0.1")), OperatorOption("b", Decimal("0.2")),
            OperatorOption("c", Decimal("0.3"))]
    assert choose_operator(opts) == "a"
    assert choose_operator(opts, preferred="c") == "c"
    assert [o.name for o in rank(opts, failed_lately=("a",))] == ["b", "c", "a"]
    assert choose_operator(opts, tried=("c",), preferred="c", failed_lately=("a",)) == "b"
    assert choose_operator(opts, tried=("a", "b", "c")) is None
    down = [OperatorOption("a", Decimal("0.1"), available=False), OperatorOption("b", Decimal("0.2"))]
    assert choose_operator(down) == "b"


def test_a_message_for_an_operator_bound_by_another_node_is_left_in_the_store_for_it():
    # "cheap" is held by another node of the cluster (this one has no bind of it, SPEC §10):
    # the message still goes the cheapest way, through that node, not through "dear" from here.
    clock = Clock()
    clock.advance(1000)
    p, store, links, _ = make(clock, elsewhere=frozenset({"cheap"}))
    links["cheap"].up = False
    run(p.start())
    m = message(clock)
    run(p.accept([m]))
    clock.advance(0)
    assert links["cheap"].submits == [] and links["dear"].submits == []
    assert store.leases[m.id] == (None, None) and store.via[m.id] == "cheap"
    assert p.held == 0
    # This node's claims pass it by; the node holding "cheap" takes it.
    clock.advance(2.0)
    assert store.leases[m.id] == (None, None)
    assert [x.id for x in run(store.claim("gw2", clock.seconds(), clock.seconds() + 30, 10))] == [m.id]


BLOCK_CONFIG = """
[operators.cheap]
type = "simulated"
[operators.dear]
type = "simulated"
[profiles.standard]
operators = ["dear", "cheap"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME"]
"""


def test_a_new_number_follows_what_its_block_taught_and_its_own_history_wins_after():
    """SPEC §7 (issue 14): numbers of a block that cheap never reaches teach the block; the next
    new number in it goes to dear first, a number elsewhere still to cheap first, and a number of
    the block that cheap did deliver to keeps cheap."""
    clock = Clock()
    clock.advance(1000)
    routing = Routing({"standard": ("dear", "cheap")}, TABLES)
    config = parse_config(BLOCK_CONFIG, path="/nonexistent/gateway.toml")  # the account rules on, as in a gateway
    store = MemoryStore(StoreRules(untried=routing.untried, config_source=lambda: config))
    p, store, links, _ = make(clock, store=store)
    run(p.start())

    def send(to, reached_by):
        m = message(clock, to)
        run(p.accept([m]))
        tried = []
        while store.messages[m.id].status is Status.QUEUED:
            name = next(n for n, link in links.items() if link.submits and link.submits[-1][0].message_id == m.id
                        and n not in tried)
            tried.append(name)
            key = links[name].accept()
            outcome = ReceiptOutcome.DELIVERED if name == reached_by else ReceiptOutcome.FAILED
            run(p.receipt_received(links[name].receipt(key, outcome, "DELIVRD" if name == reached_by else "UNDELIV")))
            clock.advance(1)
        return tried

    assert send("46761200100", "dear") == ["cheap", "dear"]  # no evidence: cheapest first
    for i in range(1, 12):  # 12 numbers: 24 outcomes under 46761200, over ENOUGH (20) as they age
        send(f"467612001{i:02d}", "dear")
    assert send("46761200999", "dear") == ["dear"]  # the block's order: cheap almost never delivers here
    assert send("44791200999", "cheap") == ["cheap"]  # another plan: no evidence there
    assert send("46761200555", "cheap") == ["dear", "cheap"]  # ported in: found, then ...
    assert send("46761200555", "cheap") == ["cheap"]  # ... its own history wins over its block
