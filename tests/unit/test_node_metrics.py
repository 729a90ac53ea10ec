"""The node's ``/metrics`` (``smscore.workers.NodeMetrics``) across API workers that restart, die or
do not answer: its counters and histograms never go down while the main worker runs (SPEC §10,
"``/metrics`` shows the node as one"; docs/monitoring.md). No sockets: each worker's exposition is
made here and handed to ``NodeMetrics.fetch``'s stand-in."""

from __future__ import annotations

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics,
                               generate_latest)
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs
from twisted.internet.defer import fail, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.web.test.requesthelper import DummyRequest

from smscore.workers import NodeMetrics, WorkerSamples

disable_created_metrics()  # as smscore.metrics does in service: no *_created series


def exposition(accepted: float, start: float, latencies=(), sessions: int = 0, cpu: float = 1.0,
               worker: str = "1") -> bytes:
    """One worker's /metrics: a counter, a histogram, a gauge and its process series."""
    r = CollectorRegistry()
    Counter("smsgw_accepted", "Messages stored", registry=r).inc(accepted)
    h = Histogram("smsgw_submit_seconds", "submit_sm to its response", buckets=(0.1, 1.0), registry=r)
    for latency in latencies:
        h.observe(latency)
    Gauge("smsgw_smpp_server_sessions", "Bound ESME sessions", ["account", "bind"],
          registry=r).labels("acme", "trx").set(sessions)
    Gauge("process_start_time_seconds", "Start time", ["worker"], registry=r).labels(worker).set(start)
    Counter("process_cpu_seconds", "CPU time", ["worker"], registry=r).labels(worker).inc(cpu)
    return generate_latest(r)


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class Node:
    """A NodeMetrics over API workers whose answers the test sets: ``answers[i]`` is bytes, an
    exception (the fetch fails), or a Deferred."""

    def __init__(self, workers: int = 1) -> None:
        self.main = CollectorRegistry()
        Counter("smsgw_accepted", "Messages stored", registry=self.main).inc(5)
        self.clock = MemoryReactorClock()
        self.resource = NodeMetrics(self.clock, self.main, [9000 + i for i in range(workers)])
        self.answers: list = [b""] * workers
        self.resource.fetch = self._fetch

    def _fetch(self, port: int):
        answer = self.answers[port - 9000]
        if isinstance(answer, bytes):
            return succeed(answer)
        if isinstance(answer, Exception):
            return fail(answer)
        return answer

    def scrape(self) -> dict:
        request = DummyRequest([b"metrics"])
        self.resource.render_GET(request)
        assert request.finished
        return samples(b"".join(request.written).decode())


ACCEPTED = ("smsgw_accepted_total", ())


def test_a_restarted_worker_does_not_take_the_nodes_counters_back():
    """The auditor's case: 44 (5 here, 39 there) then the worker restarted with 11 of its own: 60,
    not 16; and on from there."""
    node = Node()
    node.answers[0] = exposition(39, start=100.0, latencies=(0.05, 0.5))
    assert node.scrape()[ACCEPTED] == 44
    node.answers[0] = exposition(11, start=200.0, latencies=(0.05,))
    seen = node.scrape()
    assert seen[ACCEPTED] == 5 + 39 + 11
    assert seen[("smsgw_submit_seconds_bucket", (("le", "0.1"),))] == 2
    assert seen[("smsgw_submit_seconds_bucket", (("le", "+Inf"),))] == 3
    assert seen[("smsgw_submit_seconds_count", ())] == 3
    assert abs(seen[("smsgw_submit_seconds_sum", ())] - 0.6) < 1e-9
    node.answers[0] = exposition(20, start=200.0, latencies=(0.05, 2.0))
    seen = node.scrape()
    assert seen[ACCEPTED] == 5 + 39 + 20 and seen[("smsgw_submit_seconds_count", ())] == 4
    # a second restart carries on from there
    node.answers[0] = exposition(1, start=300.0)
    assert node.scrape()[ACCEPTED] == 5 + 39 + 20 + 1


def test_a_restart_is_seen_by_its_start_time_even_when_the_new_process_counted_more():
    node = Node()
    node.answers[0] = exposition(3, start=100.0)
    node.scrape()
    node.answers[0] = exposition(8, start=200.0)  # died at 3 (or a little later), then counted 8
    assert node.scrape()[ACCEPTED] == 5 + 3 + 8


def test_without_a_start_time_a_count_that_went_down_means_a_new_process():
    samples_of = WorkerSamples()
    parse = lambda text: list(text_string_to_metric_families(text))  # noqa: E731
    r = CollectorRegistry()
    c = Counter("smsgw_accepted", "Messages stored", registry=r)
    c.inc(7)
    samples_of.read(parse(generate_latest(r).decode()), 1)
    r2 = CollectorRegistry()
    Counter("smsgw_accepted", "Messages stored", registry=r2).inc(2)
    samples_of.read(parse(generate_latest(r2).decode()), 2)
    [family] = samples_of.families()
    assert [(s.name, s.value) for s in family.samples] == [("smsgw_accepted_total", 9)]


def test_a_worker_that_cannot_be_read_counts_with_its_last_counts_and_its_gauges_are_left_out():
    node = Node(workers=2)
    node.answers[0] = exposition(10, start=100.0, latencies=(0.5,), sessions=3)
    node.answers[1] = exposition(20, start=100.0, sessions=1, worker="2")
    seen = node.scrape()
    assert seen[ACCEPTED] == 35 and seen[("smsgw_smpp_server_sessions", (("account", "acme"), ("bind", "trx")))] == 4
    node.answers[0] = ConnectionRefusedError("Connection refused")  # down, being restarted
    with capture_logs() as logs:
        seen = node.scrape()
    assert seen[ACCEPTED] == 35  # not 25
    assert seen[("smsgw_submit_seconds_count", ())] == 1
    assert seen[("smsgw_smpp_server_sessions", (("account", "acme"), ("bind", "trx")))] == 1  # worker 2's only
    workers = {dict(labels)["worker"] for name, labels in seen if name == "process_start_time_seconds"}
    assert workers == {"2"}  # worker 1's process series go stale, as the process did
    [line] = [e for e in logs if e["log_level"] == "warning"]
    assert (line["event"], line["unread_worker"], line["port"]) == (
        "a worker's metrics could not be read: its last counts stand in", 1, 9000)
    assert "refused" in line["error"]
    # back, as a new process: its counts on top of the old ones
    node.answers[0] = exposition(2, start=300.0, sessions=0)
    seen = node.scrape()
    assert seen[ACCEPTED] == 5 + 10 + 2 + 20
    assert seen[("smsgw_smpp_server_sessions", (("account", "acme"), ("bind", "trx")))] == 1


def test_an_answer_that_is_no_exposition_counts_as_none():
    node = Node()
    node.answers[0] = exposition(10, start=100.0)
    node.scrape()
    node.answers[0] = b"<html>not metrics {"
    with capture_logs() as logs:
        assert node.scrape()[ACCEPTED] == 15
    assert [e["unread_worker"] for e in logs if e["log_level"] == "warning"] == [1]


def test_overlapping_scrapes_take_no_older_answer_for_a_newer_one():
    """Two scrapes at once whose answers come back out of order: the older answer is not read as a
    drop (which would carry the newer counts twice)."""
    from twisted.internet.defer import Deferred

    node = Node()
    node.answers[0] = exposition(10, start=100.0)
    node.scrape()
    early, late = Deferred(), Deferred()
    requests = []
    for answer in (early, late):
        node.answers[0] = answer
        requests.append(DummyRequest([b"metrics"]))
        node.resource.render_GET(requests[-1])
    late.callback(exposition(14, start=100.0))
    early.callback(exposition(12, start=100.0))
    assert all(r.finished for r in requests)
    assert samples(b"".join(requests[1].written).decode())[ACCEPTED] == 19
    assert samples(b"".join(requests[0].written).decode())[ACCEPTED] == 19  # the newer counts, not 17
    node.answers[0] = exposition(15, start=100.0)
    assert node.scrape()[ACCEPTED] == 20


def test_a_worker_that_never_answers_costs_the_scrape_its_timeout_not_the_answer():
    """A stopped worker (SIGSTOP) or a stuck one accepts the connection and answers nothing: the
    node's /metrics waited for it for good. Now it waits ``timeout`` (2 s), then answers with that
    worker's last counts and the others' fresh ones."""
    from twisted.internet.defer import Deferred

    node = Node(workers=2)
    node.answers[0] = exposition(10, start=100.0)
    node.answers[1] = exposition(20, start=100.0, worker="2")
    node.scrape()
    cancelled = []
    node.answers[0] = Deferred(lambda d: cancelled.append(d))
    node.answers[1] = exposition(25, start=100.0, worker="2")
    request = DummyRequest([b"metrics"])
    with capture_logs() as logs:
        node.resource.render_GET(request)
        node.clock.advance(2 - 0.01)
        assert not request.finished
        node.clock.advance(0.01)
    assert request.finished and cancelled  # the request to the silent worker was given up
    assert samples(b"".join(request.written).decode())[ACCEPTED] == 5 + 10 + 25
    [line] = [e for e in logs if e["log_level"] == "warning"]
    assert (line["unread_worker"], line["error"]) == (1, "no answer in 2 s")


def test_a_scraper_that_hung_up_meanwhile_gets_nothing_written_and_the_counts_are_kept():
    from twisted.internet.defer import Deferred

    node = Node()
    node.answers[0] = late = Deferred()
    request = DummyRequest([b"metrics"])
    node.resource.render_GET(request)
    request.processingFailed(ConnectionError("the scraper gave up"))  # as a lost connection fails it
    late.callback(exposition(10, start=100.0))  # no write, no finish on a lost request
    assert request.written == [] and not request.finished
    node.answers[0] = exposition(12, start=100.0)
    assert node.scrape()[ACCEPTED] == 17
