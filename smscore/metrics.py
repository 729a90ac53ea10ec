"""Prometheus metrics (SPEC §9), registered on an injected registry.

One ``Metrics`` object per gateway; tests make their own registry and read samples with
``registry.get_sample_value``. Queue depth and in-flight counts are read at scrape time through a
custom collector, so the hot path does no bookkeeping for them. The counters that move several
times a message (PDUs, status changes, submit attempts) are ``Tally`` objects: plain numbers read
at scrape time, where prometheus_client's Counter takes a lock on every increment (measured: a
tenth of the main worker's reactor time in lists of 100).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# The *_created series (one timestamp per label set) double every scrape and nobody graphs them.
disable_created_metrics()

SUBMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


class _LiveGauges(Collector):
    """Scrape-time gauges: queue depth and in-flight per operator."""

    def __init__(self, sample: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        self._sample = sample

    def collect(self):
        depth = GaugeMetricFamily("smsgw_queue_depth", "Messages waiting to be submitted, per operator",
                                  labels=["operator"])
        inflight = GaugeMetricFamily("smsgw_inflight", "Submits waiting for their response, per operator",
                                     labels=["operator"])
        for operator, queued, in_flight in self._sample():
            depth.add_metric([operator], queued)
            inflight.add_metric([operator], in_flight)
        yield depth
        yield inflight


class _SessionGauges(Collector):
    """Scrape-time ``smsgw_smpp_server_sessions{account,bind}``: customers' bound ESME sessions."""

    def __init__(self, sample: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._sample = sample

    def collect(self):
        family = GaugeMetricFamily("smsgw_smpp_server_sessions", "Bound sessions of customers' ESMEs",
                                   labels=["account", "bind"])
        for (account, bind), count in sorted(self._sample().items()):
            family.add_metric([account, bind], count)
        yield family


class Tally(Collector):
    """A labelled counter kept as plain numbers on the reactor thread and exported at scrape time
    (as ``<name>_total``, like a Counter)."""

    def __init__(self, name: str, documentation: str, labels: list[str], registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.values: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def inc(self, labels: tuple[str, ...], n: float = 1) -> None:
        self.values[labels] = self.values.get(labels, 0) + n

    def collect(self):
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in list(self.values.items()):
            family.add_metric(labels, value)
        yield family

    def describe(self):
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labels)


class Metrics:
    """Every metric the gateway exports, prefixed ``smsgw_``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.bind_up = Gauge("smsgw_bind_up", "1 while the SMPP session is bound", ["operator", "session"],
                             registry=r)
        self.pdus = Tally("smsgw_pdus", "SMPP PDUs sent and received", ["operator", "command", "direction"], r)
        self.messages = Tally("smsgw_messages", "Message status changes", ["status"], r)
        self.submit_seconds = Histogram("smsgw_submit_seconds", "Time from submit_sm to its response",
                                        buckets=SUBMIT_BUCKETS, registry=r)
        self.delivery_seconds = Histogram("smsgw_delivery_seconds", "Time from acceptance to delivered",
                                          buckets=DELIVERY_BUCKETS, registry=r)
        self.operator_attempts = Tally("smsgw_operator_attempts", "Submit attempts per operator and outcome",
                                       ["operator", "outcome"], r)
        self.mo = Counter("smsgw_mo", "MO messages by shortcode, keyword and outcome",
                          ["shortcode", "keyword", "outcome"], registry=r)
        self.submit_unanswered = Counter(
            "smsgw_submit_unanswered", "Submits written that got no response (timeout, connection lost): "
            "sent again, they may reach the phone twice", ["operator"], registry=r)
        self.callbacks = Counter("smsgw_callbacks", "HTTP pushes to customers by kind and outcome",
                                 ["kind", "outcome"], registry=r)
        self._live: _LiveGauges | None = None
        self._children: dict[tuple, object] = {}

    def child(self, metric, *labels):
        """``metric.labels(*labels)``, cached: label lookups are a hot-path cost at thousands/s."""
        key = (metric._name, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def status_changed(self, status: str, n: int = 1) -> None:
        """``smsgw_messages_total{status}`` += n."""
        self.messages.inc((status,), n)

    def watch_smpp_sessions(self, sample: Callable[[], dict[tuple[str, str], int]]) -> None:
        """Register the scrape-time sampler of {(account, bind): bound sessions} (SPEC §13)."""
        self.registry.register(_SessionGauges(sample))

    def watch_queues(self, sample: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        """Register the scrape-time sampler of (operator, queue depth, in flight)."""
        if self._live is None:
            self._live = _LiveGauges(sample)
            self.registry.register(self._live)
