"""How the processes of one node talk: kicks coalesce, metrics add up."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock

from smscore.supervisor import FAILED_STARTS, failed_starts
from smscore.workers import Kicks, merge_exposition


class Sent:
    def __init__(self) -> None:
        self.datagrams = []

    def write(self, data, addr) -> None:
        self.datagrams.append((data, addr))


def test_kicks_coalesce_per_worker_and_word_and_run_handlers():
    clock = Clock()
    kicks = Kicks(clock, [7000, 7001], {b"claim": lambda note: ran.append("claim")}, delay=0.002)
    kicks.transport = Sent()
    ran = []
    for _ in range(50):
        kicks.kick(0, b"claim")
    kicks.kick(1, b"push")
    assert kicks.transport.datagrams == []
    clock.advance(0.002)
    assert sorted(kicks.transport.datagrams) == [(b"claim", ("127.0.0.1", 7000)), (b"push", ("127.0.0.1", 7001))]
    kicks.kick(0, b"claim")
    clock.advance(0.002)
    assert len(kicks.transport.datagrams) == 3  # a later burst is one more datagram
    kicks.datagramReceived(b"claim", ("127.0.0.1", 1))
    kicks.datagramReceived(b"nonsense", ("127.0.0.1", 1))
    assert ran == ["claim"]


def test_kicks_coalesced_carry_the_lowest_note_or_none_when_one_had_none():
    clock = Clock()
    notes = []
    kicks = Kicks(clock, [7000], {b"claim": notes.append}, delay=0.002)
    kicks.transport = Sent()
    for note in ("0000b", "0000a", "0000c"):
        kicks.kick(0, b"claim", note)
    clock.advance(0.002)
    kicks.kick(0, b"claim", "0000d")
    kicks.kick(0, b"claim")  # an announcement that does not say where: the datagram says nothing either
    kicks.kick(0, b"claim", "0000e")
    clock.advance(0.002)
    kicks.kick(0, b"claim", "not ascii: \u00e9")  # not a note a worker sends: none
    clock.advance(0.002)
    sent = [data for data, _ in kicks.transport.datagrams]
    assert sent == [b"claim 0000a", b"claim", b"claim"]
    for data in [*sent, b"claim \xff\xfe", b"claim a b", b"claim " + b"9" * 65]:
        kicks.datagramReceived(data, ("127.0.0.1", 1))
    assert notes == ["0000a", "", "", "", "", ""]  # a forged note is read as none


def registry(queued: int, delivered: int, inflight: int, latency: float) -> str:
    r = CollectorRegistry()
    c = Counter("smsgw_messages", "Message status changes", ["status"], registry=r)
    c.labels("queued").inc(queued)
    c.labels("delivered").inc(delivered)
    Gauge("smsgw_inflight", "In flight", ["operator"], registry=r).labels('op "x"').set(inflight)
    h = Histogram("smsgw_delivery_seconds", "Accept to delivered", buckets=(0.1, 1.0), registry=r)
    h.observe(latency)
    return generate_latest(r).decode()


def test_metrics_of_every_process_add_up_sample_by_sample():
    merged = merge_exposition([registry(10, 7, 3, 0.05), registry(5, 1, 0, 0.5)])
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(merged) for s in family.samples}
    assert samples[("smsgw_messages_total", (("status", "queued"),))] == 15
    assert samples[("smsgw_messages_total", (("status", "delivered"),))] == 8
    assert samples[("smsgw_inflight", (("operator", 'op "x"'),))] == 3
    assert samples[("smsgw_delivery_seconds_bucket", (("le", "0.1"),))] == 1
    assert samples[("smsgw_delivery_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("smsgw_delivery_seconds_count", ())] == 2
    assert abs(samples[("smsgw_delivery_seconds_sum", ())] - 0.55) < 1e-9
    assert "# TYPE smsgw_messages_total counter" in merged


def test_the_merged_exposition_describes_each_family_as_one_process_does():
    """HELP and TYPE lines as prometheus_client writes them for one process (a counter's under its
    ``…_total`` name, or Prometheus takes its samples as untyped)."""
    from smscore.metrics import Metrics

    texts = []
    for index in range(2):
        metrics = Metrics(CollectorRegistry())
        metrics.describe_process(str(index), node=index == 0)
        metrics.status_changed("queued")
        metrics.child(metrics.mo, "72550", "DEMO", "routed").inc()
        metrics.delivery_seconds.observe(("sim_a",), 0.2)
        texts.append(generate_latest(metrics.registry).decode())
    merged = merge_exposition(texts)

    def described(text):
        return {line for line in text.splitlines() if line.startswith("# ")}

    assert described(merged) == described(texts[0])
    assert "# TYPE smsgw_messages_total counter" in merged and "# TYPE smsgw_mo_total counter" in merged
    kinds = {f.name: f.type for f in text_string_to_metric_families(merged)}
    assert kinds["smsgw_messages"] == kinds["smsgw_mo"] == "counter"
    assert kinds["smsgw_delivery_seconds"] == "histogram" and kinds["smsgw_build_info"] == "gauge"


def test_figures_of_the_node_are_not_added_up_and_each_process_keeps_its_process_series():
    """The main worker exports build info once; process_* carry the worker's index, so the merged
    /metrics has one series per process, never a sum of two start times."""
    from smscore import version
    from smscore.metrics import Metrics

    texts = []
    for index in range(3):
        metrics = Metrics(CollectorRegistry())
        metrics.describe_process(str(index), node=index == 0)
        metrics.status_changed("queued")
        texts.append(generate_latest(metrics.registry).decode())
    merged = merge_exposition(texts)
    samples = [(s.name, tuple(sorted(s.labels.items())), s.value)
               for family in text_string_to_metric_families(merged) for s in family.samples]
    keys = [(name, labels) for name, labels, _ in samples]
    assert len(keys) == len(set(keys))
    assert [v for name, labels, v in samples if name == "smsgw_build_info"] == [1]
    assert ("smsgw_build_info", (("version", version()),)) in keys
    assert sorted(dict(labels)["worker"] for name, labels, _ in samples if name == "process_start_time_seconds") == [
        "0", "1", "2"]
    assert [v for name, labels, v in samples if name == "smsgw_messages_total"] == [3]


def test_a_worker_that_exits_soon_after_its_start_three_times_in_a_row_cannot_start():
    count = 0
    for _ in range(FAILED_STARTS):
        count = failed_starts(count, lived=0.8, returncode=1)  # the store, a port, the config
    assert count == FAILED_STARTS
    assert failed_starts(2, lived=60.0, returncode=1) == 0  # it had started: the run of failures ends


def test_a_worker_killed_by_a_signal_is_started_again_however_soon():
    count = 0
    for _ in range(10):  # kill -9 (or the OOM killer) 1.5 s after each start
        count = failed_starts(count, lived=1.5, returncode=-9)
    assert count == 0
    assert failed_starts(2, lived=1.5, returncode=-9) == 2  # nor does it end a run of failed starts
