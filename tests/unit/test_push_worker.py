"""Status callbacks in batches (SPEC §12): the pure choice (``policies.callbacks``) and the
``PushWorker`` driven by a ``Clock``, an in-memory store and the real ``Pusher``, whose requests
``tests.backend.MemoryNetwork`` carries in memory to ``BackendResource`` (which checks every
signature on its own). No socket, no real time."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from connectors.api import ReceiptOutcome
from connectors.http_push import Pusher
from policies.callbacks import next_batches, parse_selection, selects
from smscore.callbacks import PushWorker
from smscore.config import parse_config
from smscore.metrics import Metrics
from smscore.model import STATUS_NAMES
from smscore.store.memory import MemoryStore
from tests.backend import BackendResource, MemoryNetwork
from tests.store_contract import make_message, receipt

SECRET = "s3cret"
NOW = 1_700_000_000.0
URL = "http://acme.example/status"


# --- the pure choice -----------------------------------------------------------------------------
def test_selections():
    assert parse_selection(["failed", "submitted", "failed"], STATUS_NAMES) == "submitted,failed"
    assert parse_selection([], STATUS_NAMES) == ""
    for value in ("none", ["final"], 1, None):
        with pytest.raises(ValueError):
            parse_selection(value, STATUS_NAMES)
    with pytest.raises(ValueError, match=r"lists null, which"):  # as the customer wrote it, not Python's None
        parse_selection([None], STATUS_NAMES)
    assert selects("all", "queued", False)
    assert selects("final", "failed", True) and not selects("final", "failed", False)
    assert selects("submitted,failed", "failed", False) and not selects("submitted,failed", "delivered", True)
    assert not selects("", "delivered", True)


def _w(*messages, since=0.0):
    return [(m, since) for m in messages]


@pytest.mark.parametrize("waiting, size, busy, limit, expected", [
    # full batches go, the rest waits for the linger (due at 0.2)
    (_w("a", "b", "c", "d", "e"), 2, (), None, ([[0, 1], [2, 3]], 0.2)),
    # a message's later event never goes in a later batch than its earlier one may be retried in
    (_w("a", "b", "a", "c"), 2, (), None, ([[0, 1]], 0.2)),
    # ... but joins its earlier event in the same batch
    (_w("a", "a", "b", "c"), 3, (), None, ([[0, 1, 2]], 0.2)),
    # a message with a POST on the way waits, and so do its later events
    (_w("a", "b", "a", "c"), 2, ("a",), None, ([[1, 3]], None)),
    # one event per POST: every event is a batch at once
    (_w("a", "b", "a"), 1, (), None, ([[0], [1]], None)),
    # no more batches than free POST slots
    (_w("a", "b", "c", "d"), 1, (), 2, ([[0], [1]], None)),
    (_w("a", "b"), 1, ("a", "b"), None, ([], None)),
    ([], 5, (), None, ([], None)),
])
def test_next_batches(waiting, size, busy, limit, expected):
    assert next_batches(waiting, size=size, linger=0.2, now=0.1, busy=busy, limit=limit) == expected


def test_a_batch_still_filling_goes_once_its_oldest_event_waited_the_linger():
    waiting = [("a", 10.0), ("b", 9.5)]
    assert next_batches(waiting, size=3, linger=1.0, now=10.4, busy=()) == ([], 10.5)
    assert next_batches(waiting, size=3, linger=1.0, now=10.5, busy=()) == ([[0, 1]], None)


# --- the worker ----------------------------------------------------------------------------------
CONFIG = """
[push]
timeout = "2s"
retry_for = "{retry_for}"
[operators.sim]
type = "simulated"
[profiles.standard]
operators = ["sim"]
[accounts.acme]
secret = "{secret}"
callback_url = "{url}"
callback_batch = {batch}
callback_linger = "200ms"
"""


class Rig:
    """A worker on an in-memory store, pushing to a backend resource over an in-memory network."""

    def __init__(self, batch: int = 3, store=None, lease: float = 30.0, retry_for: str = "24h") -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.config = parse_config(CONFIG.format(secret=SECRET, url=URL, batch=batch, retry_for=retry_for),
                                   path=Path("/etc/smsgw/gateway.toml"))
        self.store = store or MemoryStore()
        self.store.status_callbacks_for = lambda m: (URL, "all")
        self.backend = BackendResource(self.clock, secret=SECRET)
        self.net = MemoryNetwork(self.backend, self.clock)
        self.pusher = Pusher(self.clock, timeout=2.0, endpoint_for=self.net.endpoint_for)
        self.registry = CollectorRegistry()
        self.worker = PushWorker(store=self.store, pusher=self.pusher, clock=self.clock, node="gw1",
                                 config_source=lambda: self.config, mo_router_source=lambda: None,
                                 pipeline=SimpleNamespace(lease=30.0, owner="gw1", accepted_elsewhere=lambda replies: None),
                                 metrics=Metrics(self.registry), jitter=lambda: 0.0, lease=lease)

    def messages(self, n: int):
        ms = [make_message(at=NOW) for _ in range(n)]
        self.store.accept(ms, "gw1", NOW + 30)
        return ms

    def submitted(self, m, key=None) -> None:
        self.store.record_submit(m.id, "cheap", [key or m.id], self.clock.seconds())

    def delivered(self, m, key=None) -> None:
        self.store.apply_receipt(receipt(key or m.id), self.clock.seconds())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.net.flush()

    def kick(self) -> None:
        self.worker.kick()
        self.net.flush()

    def tick(self) -> None:
        """What the worker's loop does every ``interval``: its periodic claim, from the first job,
        finds jobs that became due below its sweep (a retry whose time came)."""
        self.worker._tick()
        self.net.flush()

    def posts(self) -> list:
        """Every POST so far: a list of (status, message id) per request."""
        out = []
        for r in self.backend.requests:
            assert r.signature_valid is True and r.path == "/status"
            body = r.json()
            events = body["events"] if "events" in body else [body]
            out.append([(e["status"], e["id"]) for e in events])
        return out

    def pending(self):
        return self.store.pending_push_jobs().result


def test_full_batches_go_at_once_and_the_rest_when_the_linger_is_over():
    rig = Rig(batch=3)
    ms = rig.messages(7)
    for m in ms:
        rig.submitted(m)
    rig.kick()
    assert rig.posts() == [[("submitted", m.id) for m in ms[:3]], [("submitted", m.id) for m in ms[3:6]]]
    assert all(set(r.json()) == {"events"} for r in rig.backend.requests)
    event = rig.backend.requests[0].json()["events"][0]
    assert set(event) == {"event_id", "id", "reference", "to", "status", "operator", "error", "at", "final"}
    rig.advance(0.19)
    assert len(rig.posts()) == 2
    rig.advance(0.01)  # the oldest waiting event has waited 200 ms
    assert rig.posts()[2:] == [[("submitted", ms[6].id)]]
    assert rig.pending() == []
    sample = rig.registry.get_sample_value
    assert sample("smsgw_callbacks_total", {"kind": "status", "outcome": "ok"}) == 7


def test_one_event_per_post_is_the_bare_event_object():
    rig = Rig(batch=1)
    [m] = rig.messages(1)
    rig.submitted(m)
    rig.delivered(m)
    rig.kick()
    rig.advance(0)
    bodies = [r.json() for r in rig.backend.requests]
    assert [(b["status"], b["final"]) for b in bodies] == [("submitted", False), ("delivered", True)]
    assert rig.pending() == []


def test_a_messages_events_stay_in_order_within_and_across_batches():
    rig = Rig(batch=2)
    a, b, c = rig.messages(3)
    rig.submitted(a)
    rig.submitted(b)
    rig.delivered(a)  # a's second event: the first batch is full without it
    rig.submitted(c)
    rig.backend.slow(1.0)
    rig.kick()
    first = [("submitted", a.id), ("submitted", b.id)]
    assert rig.posts() == [first]
    # a's delivery waits until a's first batch is answered; c goes without it once it lingered
    rig.advance(0.2)
    assert rig.posts() == [first, [("submitted", c.id)]]
    rig.advance(0.79)
    assert len(rig.posts()) == 2
    rig.advance(0.01)  # the first batch is answered
    rig.advance(0.2)
    assert rig.posts() == [first, [("submitted", c.id)], [("delivered", a.id)]]


def test_what_came_of_a_push_is_stored_again_while_the_store_fails_and_nothing_is_sent_twice():
    """A store blip after the POST (PostgreSQL restarted): the outcome is stored on a later try,
    the message's later events go after it, and the event delivered is not sent again."""
    rig = Rig(batch=1)
    [a] = rig.messages(1)
    rig.submitted(a)
    finish = rig.store.finish_pushes
    rig.store.finish_pushes = lambda *args, **kw: fail(RuntimeError("server closed the connection"))
    with capture_logs() as logs:
        rig.kick()
        rig.delivered(a)
        rig.kick()
        rig.advance(0.5)
    tries = [e["retry_in"] for e in logs if e["event"] == "storing what came of a push failed: trying again"]
    assert tries == [0.5, 1.0] and rig.posts() == [[("submitted", a.id)]]  # delivered waits behind it
    rig.store.finish_pushes = finish  # the store is back
    rig.advance(1.0)
    rig.kick()
    assert rig.posts() == [[("submitted", a.id)], [("delivered", a.id)]]
    rig.advance(60)  # past the jobs' lease: nothing goes twice
    assert len(rig.posts()) == 2 and rig.pending() == []


def test_a_stop_waits_for_no_retry_of_what_came_of_a_push():
    rig = Rig(batch=1)
    [a] = rig.messages(1)
    rig.submitted(a)
    rig.store.finish_pushes = lambda *args, **kw: fail(RuntimeError("down"))
    with capture_logs():
        rig.kick()
        stopped = rig.worker.stop()
    assert stopped.called and rig.worker.in_flight == 0  # the job waits for its lease instead


def test_a_failed_batch_is_retried_whole_and_holds_back_its_messages_later_events():
    rig = Rig(batch=2)
    a, b = rig.messages(2)
    rig.submitted(a)
    rig.submitted(b)
    rig.delivered(a)
    rig.backend.failing(503)
    rig.kick()
    first = [("submitted", a.id), ("submitted", b.id)]
    assert rig.posts() == [first]
    # a's delivery was waiting: it is given back, not sent ahead of its retried elder
    rig.advance(1.0)
    rig.kick()
    rig.advance(3.9)
    rig.kick()
    assert rig.posts() == [first]
    assert [j.attempts for j in rig.pending()] == [1, 1, 0]
    rig.backend.reply_json("thanks")
    rig.advance(0.1)  # 5 s after the failure
    rig.kick()  # a claim from the sweep: the retried jobs lie below it
    assert rig.posts() == [first]
    rig.tick()
    rig.advance(0)
    assert rig.posts() == [first, first, [("delivered", a.id)]]
    # the same events again, whole: the receiver drops repeats by event_id
    assert rig.backend.requests[0].body == rig.backend.requests[1].body
    assert rig.pending() == []
    sample = rig.registry.get_sample_value
    assert sample("smsgw_callbacks_total", {"kind": "status", "outcome": "failed"}) == 2
    assert sample("smsgw_callbacks_total", {"kind": "status", "outcome": "ok"}) == 3


def test_the_last_retry_falls_at_the_end_of_retry_for_not_after_it():
    """SPEC §3 [push] retry_for: backoff 5 s, 10 s ..., tried for this long: the retry 10 s after
    the one at 5 s would come at 15 s, past a 12 s window; it comes at 12 s, and is the last."""
    rig = Rig(batch=1, retry_for="12s")
    [m] = rig.messages(1)
    rig.submitted(m)
    rig.backend.failing(503)
    times = []
    for _ in range(40):  # 20 s in steps of half a second, the worker's periodic claim each
        before = len(rig.backend.requests)
        rig.tick()
        if len(rig.backend.requests) > before:
            times.append(rig.clock.seconds() - NOW)
        rig.advance(0.5)
    assert times == [0.0, 5.0, 12.0]
    assert rig.pending() == []  # abandoned after the attempt at the end of the window


def test_a_reload_changes_the_batch_size_of_the_next_batch():
    rig = Rig(batch=5)
    ms = rig.messages(2)
    for m in ms:
        rig.submitted(m)
    rig.kick()
    assert rig.posts() == []  # filling
    rig.config = parse_config(CONFIG.format(secret=SECRET, url=URL, batch=1, retry_for="24h"),
                              path=Path("/etc/smsgw/gateway.toml"))
    rig.advance(0.2)
    assert [r.json()["status"] for r in rig.backend.requests] == ["submitted", "submitted"]


class HeldClaims:
    """A MemoryStore whose claims answer only when the test says (a slow database)."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.claims: list[tuple[tuple, Deferred]] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __setattr__(self, name, value):
        if name in ("inner", "claims"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    def claim_push_jobs(self, *args, **kwargs):
        d: Deferred = Deferred()
        self.claims.append(((args, kwargs), d))
        return d

    def answer(self) -> None:
        (args, kwargs), d = self.claims.pop(0)
        self.inner.claim_push_jobs(*args, **kwargs).chainDeferred(d)


def test_kicks_while_a_claim_is_on_the_way_fold_into_one_more_claim():
    store = HeldClaims()
    rig = Rig(batch=1, store=store)
    ms = rig.messages(3)
    for _ in range(10):  # e.g. ten status changes stored in a burst
        rig.worker.kick()
    assert len(store.claims) == 1
    for m in ms:
        rig.submitted(m)
    store.answer()
    assert len(store.claims) == 1  # one more, for all the kicks that came meanwhile
    store.answer()
    rig.net.flush()
    assert len(rig.posts()) == 3
    assert rig.worker.claims == 2 + len(store.claims)  # (+ the one each finished POST asks for)


def test_stop_gives_back_what_waits_here_and_another_node_takes_it_at_once():
    rig = Rig(batch=10)
    ms = rig.messages(2)
    for m in ms:
        rig.submitted(m)
    rig.kick()
    assert rig.posts() == []  # lingering here, claimed by gw1
    assert rig.store.claim_push_jobs("gw2", NOW + 0.1, NOW + 60, 10).result == []
    stopped = rig.worker.stop()
    assert stopped.called
    assert len(rig.store.claim_push_jobs("gw2", NOW + 0.1, NOW + 60, 10).result) == 2


def test_a_dead_nodes_jobs_go_to_another_node_after_the_lease_the_push_timeout_and_the_linger():
    """SPEC §10: another node takes over a dead node's work after ``[gateway] lease``; a push job's
    lease adds the POST's ``[push] timeout`` (2 s) and the longest linger (200 ms) to it. It was a
    fixed 120 s, so a node killed with claimed callbacks delayed them two minutes."""
    rig = Rig(batch=10, lease=3.0)
    ms = rig.messages(2)
    for m in ms:
        rig.submitted(m)
    rig.kick()  # gw1 claims both and lingers; it dies before the linger is over (the clock stays)
    assert rig.posts() == [] and rig.worker.claims == 1
    assert rig.store.claim_push_jobs("gw2", NOW + 5.19, NOW + 60, 10).result == []
    taken = rig.store.claim_push_jobs("gw2", NOW + 5.21, NOW + 60, 10).result
    assert sorted(job.subject for job in taken) == sorted(m.id for m in ms)


def test_a_failover_under_final_costs_no_post():
    rig = Rig(batch=1)
    rig.store.untried = lambda m: [op for op in ("cheap", "dear") if op not in m.tried]
    rig.store.status_callbacks_for = lambda m: (URL, "final")
    [m] = rig.messages(1)
    rig.submitted(m, "k1")
    rig.store.apply_receipt(receipt("k1", ReceiptOutcome.FAILED, stat="UNDELIV"), NOW)
    rig.kick()
    assert rig.worker.claims == 1 and rig.backend.requests == [] and rig.pending() == []


# --- an account a reload removed -------------------------------------------------------------------
def _without_acme() -> object:
    """The config after a reload that removed the account acme (and its secret)."""
    text = CONFIG.format(secret=SECRET, url=URL, batch=1, retry_for="12s").split("[accounts.acme]")[0]
    return parse_config(text + '[accounts.other]\nsenders = ["OTHER"]\n', path=Path("/etc/smsgw/gateway.toml"))


def _run(rig: Rig, seconds: float) -> None:
    for _ in range(round(seconds * 8)):  # steps of 1/8 s, exact in binary, the periodic claim each
        rig.tick()
        rig.advance(0.125)


def test_the_pushes_of_an_account_a_reload_removed_are_never_sent_unsigned():
    """SPEC §4: every push is signed. With the account gone there is no secret: its jobs are not
    POSTed (they went out without X-Smsgw-Signature) but fail as an attempt, wait on the retry
    schedule and are dropped at the end of ``retry_for``, each line saying which message and why."""
    rig = Rig(batch=3, retry_for="12s")
    [m] = rig.messages(1)
    rig.submitted(m)
    rig.delivered(m)
    rig.config = _without_acme()
    with capture_logs() as logs:
        _run(rig, 40)
    assert rig.backend.requests == []
    assert rig.pending() == []
    about = [(line["event"], line["error"]) for line in logs if line.get("message_id") == m.id]
    gone = "not sent: account acme is not in the config"
    assert about == [("push failed", gone)] * 2 + [("push abandoned", gone)] + [("push failed", gone)] * 2 + [
        ("push abandoned", gone)]
    assert rig.registry.get_sample_value("smsgw_callbacks_total", {"kind": "status", "outcome": "failed"}) == 6


def test_an_account_back_within_retry_for_gets_its_pushes_signed():
    rig = Rig(batch=1, retry_for="12s")
    [m] = rig.messages(1)
    rig.submitted(m)
    rig.config = _without_acme()
    _run(rig, 1)
    assert rig.backend.requests == [] and [j.attempts for j in rig.pending()] == [1]
    rig.config = parse_config(CONFIG.format(secret=SECRET, url=URL, batch=1, retry_for="12s"),
                              path=Path("/etc/smsgw/gateway.toml"))  # a reload puts it back
    _run(rig, 5)
    assert rig.posts() == [[("submitted", m.id)]]  # posts() checks every signature
    assert rig.pending() == []


# --- the log: one line per push ----------------------------------------------------------------------
def _lines(logs) -> list[dict]:
    return [{k: v for k, v in line.items() if k not in ("component", "node")} for line in logs]


def test_one_line_per_push_names_its_message_the_target_and_what_came_of_it():
    """SPEC §9: "message_id on every line about a message", "one event per line". The pusher wrote
    a line of its own (target, status, elapsed, no message id), then the worker a second one."""
    rig = Rig(batch=1)
    rig.store.status_callbacks_for = lambda m: ("http://user:pw@acme.example/status?token=t0p", "all")
    a, b = rig.messages(2)
    rig.submitted(a)
    rig.backend.slow(0.25)
    with capture_logs() as logs:
        rig.kick()
        rig.advance(0.25)
        rig.backend.failing(503)
        rig.submitted(b)
        rig.kick()
    target = "http://acme.example/status"
    assert _lines(logs) == [
        {"event": "pushed", "log_level": "debug", "kind": "status", "events": 1, "message_id": a.id,
         "target": target, "status": 200, "error": None, "elapsed": 0.25},
        {"event": "push failed", "log_level": "info", "kind": "status", "events": 1, "message_id": b.id,
         "target": target, "status": 503, "error": "http 503", "elapsed": 0.0, "attempts": 1, "retry_in": 5.0}]
    assert all(word not in str(logs) for word in ("t0p", "pw@", SECRET))


def test_a_batch_partly_abandoned_is_one_line_that_says_which_messages_were_dropped():
    rig = Rig(batch=3, retry_for="12s")
    [m] = rig.messages(1)
    rig.submitted(m)
    rig.backend.failing(503)
    _run(rig, 1)  # submitted fails at 0.2; delivered, queued at 1, joins its retry at 5.2
    rig.delivered(m)
    with capture_logs() as logs:
        _run(rig, 30)
    assert [(line["event"], line["log_level"], line["events"], line.get("message_ids"), line.get("message_id"),
             line.get("abandoned")) for line in logs] == [
        ("push failed", "info", 2, [m.id], None, None),
        ("push failed", "warning", 2, [m.id], None, [m.id]),  # submitted's window ended at 12.2
        ("push abandoned", "warning", 1, None, m.id, None)]


def test_an_mo_push_line_names_the_mo():
    from connectors.api import MoFacts
    from smscore.mo import mo_push_body
    from tests.store_contract import mo_routing

    def routing(mo, spent):
        r = mo_routing(mo, spent, url="http://acme.example/mo?key=k3y")
        r.push.body = mo_push_body(mo)
        return r

    rig = Rig(batch=1)
    rig.worker.mo_router_source = lambda: None  # the backend's reply is not turned into an SMS here
    rig.backend.no_content()
    mo = rig.store.store_mo(MoFacts("sim", "46701111111", "72550", "PIZZA large"), NOW, routing, "gw1",
                            NOW + 30).result
    with capture_logs() as logs:
        rig.kick()
    assert _lines(logs) == [{"event": "pushed", "log_level": "info", "kind": "mo", "events": 1, "mo_id": mo.id,
                             "target": "http://acme.example/mo", "status": 204, "error": None, "elapsed": 0.0}]
