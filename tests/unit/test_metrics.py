"""smscore.metrics: ``Spread``, ``Tally`` and ``PduTally``, the plain-number metrics of the hot path,
export what prometheus_client's Histogram and Counter export for the same observations."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from smscore.metrics import PduTally, Spread, Tally

BUCKETS = (0.05, 0.1, 1, 30)
AMOUNTS = [0.0, 0.05, 0.050001, 0.1, 0.7, 1.0, 29.9, 30.0, 31.0, 1e9, -1.0]


def exposition(registry: CollectorRegistry) -> list[str]:
    return sorted(line for line in generate_latest(registry).decode().splitlines() if not line.startswith("#"))


@pytest.mark.parametrize("labels", [[], ["operator"]])
def test_a_spread_exports_what_a_histogram_exports(labels):
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    spread = Spread("smsgw_x_seconds", "x", labels, BUCKETS, ours)
    histogram = Histogram("smsgw_x_seconds", "x", labels, buckets=BUCKETS, registry=theirs)
    for i, amount in enumerate(AMOUNTS):
        values = (("a", "b")[i % 2],) if labels else ()
        spread.observe(values, amount)
        (histogram.labels(*values) if labels else histogram).observe(amount)
    assert exposition(ours) == exposition(theirs)
    if labels:
        assert ours.get_sample_value("smsgw_x_seconds_bucket", {"operator": "a", "le": "1.0"}) == 4
    else:
        assert ours.get_sample_value("smsgw_x_seconds_bucket", {"le": "0.05"}) == 3  # le: at most the bound


def test_an_unlabelled_spread_is_exported_before_any_observation():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    Spread("smsgw_x_seconds", "x", [], BUCKETS, ours)
    Histogram("smsgw_x_seconds", "x", buckets=BUCKETS, registry=theirs)
    assert exposition(ours) == exposition(theirs)


def test_a_tally_exports_what_a_counter_exports():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    tally = Tally("smsgw_y", "y", ["kind", "outcome"], ours)
    counter = Counter("smsgw_y", "y", ["kind", "outcome"], registry=theirs)
    for kind, outcome, n in [("status", "ok", 1), ("status", "ok", 100), ("mo", "failed", 1)]:
        tally.inc((kind, outcome), n)
        counter.labels(kind, outcome).inc(n)
    assert exposition(ours) == exposition(theirs)


def test_an_unlabelled_tally_exports_zero_from_the_start_as_a_counter_does():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    tally = Tally("smsgw_z", "z", [], ours)
    counter = Counter("smsgw_z", "z", registry=theirs)
    assert exposition(ours) == exposition(theirs)
    tally.inc((), 3)
    counter.inc(3)
    assert exposition(ours) == exposition(theirs)


def test_pdu_counts_export_what_a_counter_exports_and_stay_once_handed_out():
    """smsgw_pdus_total: each operator's counts are one object, handed to each of its connections
    in turn (a link replaced by a reload asks again): what they add up is the operator's."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    tally = PduTally(ours)
    counter = Counter("smsgw_pdus", "SMPP PDUs sent and received", ["operator", "command", "direction"],
                      registry=theirs)
    for operator, command, direction in [("telia", "submit_sm", "out"), ("telia", "submit_sm", "out"),
                                         ("client:acme", "submit_sm", "in"), ("telia", "deliver_sm", "in")]:
        tally.counts(operator)[command, direction] += 1  # what a connection does (SMPPProtocol.pdus)
        counter.labels(operator, command, direction).inc()
    assert tally.counts("telia") is tally.counts("telia")
    assert exposition(ours) == exposition(theirs)
    assert ours.get_sample_value("smsgw_pdus_total", {"operator": "telia", "command": "submit_sm",
                                                      "direction": "out"}) == 2


def test_bind_up_is_read_from_the_links_every_session_held_and_no_other():
    from smscore.metrics import Metrics

    held = {("telia", "telia/1"): False, ("telia", "telia/2"): True}
    metrics = Metrics(CollectorRegistry())
    assert "smsgw_bind_up{" not in generate_latest(metrics.registry).decode()  # no links watched: none
    metrics.watch_binds(lambda: [(op, session, up) for (op, session), up in held.items()])
    sample = metrics.registry.get_sample_value
    assert sample("smsgw_bind_up", {"operator": "telia", "session": "telia/1"}) == 0  # never bound: 0
    assert sample("smsgw_bind_up", {"operator": "telia", "session": "telia/2"}) == 1
    assert sample("smsgw_bind_up", {"operator": "gone", "session": "gone/*"}) is None
    del held[("telia", "telia/2")]  # a reload took the session away: its series goes with it
    assert sample("smsgw_bind_up", {"operator": "telia", "session": "telia/2"}) is None
    held.clear()
    assert [line for line in exposition(metrics.registry) if line.startswith("smsgw_bind_up")] == []
