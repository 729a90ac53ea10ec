"""Prometheus metrics (SPEC §9), registered on an injected registry.

One ``Metrics`` object per gateway; tests make their own registry and read samples with
``registry.get_sample_value``. Queue depth and in-flight counts are read at scrape time through a
custom collector, so the hot path does no bookkeeping for them. The counters that move several
times a message (status changes, submit attempts) are ``Tally`` objects: plain numbers read
at scrape time, where prometheus_client's Counter takes a lock on every increment (measured: a
tenth of the main worker's reactor time in lists of 100); the two histograms observed for every
message (submit and delivery times) are ``Spread`` objects for the same reason. The PDU counter,
four a message in each worker, is ``PduTally``: the SMPP connections add to its counts themselves.

In a node of several processes the main worker's ``/metrics`` adds up every process's samples
(``smscore.workers.merge_exposition``). So a figure of the node or of the cluster rather than of a
process (``smsgw_build_info``, ``smsgw_ready``, the backlogs) is exported by the main worker alone,
and the ``process_*`` metrics carry a ``worker`` label: summed, they would mean nothing.
``smsgw_bind_up`` too is the main worker's alone: it holds the operator binds.
docs/monitoring.md lists every metric.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable

from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from prometheus_client.registry import Collector
from twisted.internet.task import LoopingCall

from smscore.logs import get_logger

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


class _BindGauges(Collector):
    """Scrape-time ``smsgw_bind_up{operator,session}``: 1 or 0 for every session the node's operator
    links keep, read from the links themselves.

    Why not a Gauge set on each bind and loss: a session that never bound had no series at all
    (an operator refused from the start was invisible to the alert on ``== 0``), an operator or a
    session a reload removed kept its last value for good (an alert firing forever), and a late
    "down" from a replaced link could overwrite its successor's "up". Read from the links, the
    series are exactly the sessions held now, each from the moment its link exists."""

    def __init__(self, sample: Callable[[], Iterable[tuple[str, str, bool]]]) -> None:
        self._sample = sample  # () -> (operator, session, bound) for every session held

    def collect(self):
        family = GaugeMetricFamily("smsgw_bind_up", "1 while the SMPP session is bound, 0 while it is not "
                                   "(every session this node holds, from the start)",
                                   labels=["operator", "session"])
        for operator, session, up in self._sample():
            family.add_metric([operator, session], 1 if up else 0)
        yield family

    def describe(self):
        yield GaugeMetricFamily("smsgw_bind_up", "", labels=["operator", "session"])


class _NodeGauges(Collector):
    """Scrape-time figures of the node the main worker answers for: ``smsgw_ready`` (``/readyz``'s
    answer, so that an alert needs no HTTP probe), and the cluster's ``smsgw_backlog`` against
    ``smsgw_backlog_limit`` (``[gateway] max_backlog``: at the limit, requests are refused)."""

    def __init__(self, sample: Callable[[], tuple[bool, int, int]]) -> None:
        self._sample = sample  # () -> (ready, queued messages of the cluster, max_backlog)

    def collect(self):
        ready, queued, limit = self._sample()
        yield GaugeMetricFamily("smsgw_ready", "1 while the node is ready (GET /readyz answers 200)",
                                value=1 if ready else 0)
        yield GaugeMetricFamily("smsgw_backlog", "Queued messages of the whole cluster (read every second)",
                                value=queued)
        yield GaugeMetricFamily("smsgw_backlog_limit", "[gateway] max_backlog: at this backlog new messages "
                                "are refused (503, ESME_RMSGQFUL)", value=limit)


class _SessionGauges(Collector):
    """Scrape-time ``smsgw_smpp_server_sessions{account,bind}``: customers' bound ESME sessions.
    A series appears with the first bind of its kind and stays, 0 once its sessions are gone: a
    series that vanished read as "no data" on a dashboard, and went stale in an alert rule."""

    def __init__(self, sample: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._sample = sample
        self._seen: set[tuple[str, str]] = set()  # a few (account, bind kind) pairs

    def collect(self):
        family = GaugeMetricFamily("smsgw_smpp_server_sessions", "Bound sessions of customers' ESMEs",
                                   labels=["account", "bind"])
        counts = self._sample()
        self._seen.update(counts)
        for account, bind in sorted(self._seen):
            family.add_metric([account, bind], counts.get((account, bind), 0))
        yield family


class _WorkerProcess(Collector):
    """prometheus_client's ``process_*`` (CPU, memory, file descriptors, start time) with a
    ``worker`` label, so that the main worker's sum over the node keeps one series per process."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self._inner = ProcessCollector(registry=None)

    def collect(self):
        for family in self._inner.collect():
            out = Metric(family.name, family.documentation, family.type)
            for sample in family.samples:
                out.add_sample(sample.name, {**sample.labels, "worker": self.worker}, sample.value)
            yield out


class PushBacklog(Collector):
    """``smsgw_push_backlog{kind}``: HTTP push jobs still to deliver (due, or waiting for a retry).

    Why a store count: jobs waiting for a retry sit in the store, not in any push worker's memory,
    and they are the backlog that grows while a customer's backend is down. The count is read every
    ``interval`` seconds (one grouped COUNT), never at scrape time, so a scrape costs nothing and
    a slow store cannot hold one up; until the first read there is no sample."""

    KINDS = ("status", "mo", "balance")

    def __init__(self, count, clock, interval: float = 5.0) -> None:
        self._count = count  # () -> Deferred({kind: jobs})
        self.clock = clock
        self.interval = interval
        self.counts: dict[str, int] | None = None
        self._loop: LoopingCall | None = None
        self.log = get_logger(component="metrics")

    def start(self) -> None:
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def refresh(self):
        def read(counts: dict) -> None:
            self.counts = counts

        def failed(failure) -> None:  # the last figure stays
            self.log.warning("push backlog not read", error=failure.getErrorMessage())

        return self._count().addCallbacks(read, failed)

    def collect(self):
        family = GaugeMetricFamily("smsgw_push_backlog", "HTTP push jobs still to deliver (due or waiting "
                                   "for a retry), of the whole cluster", labels=["kind"])
        if self.counts is not None:
            for kind in sorted({*self.KINDS, *self.counts}):
                family.add_metric([kind], self.counts.get(kind, 0))
        yield family

    def describe(self):
        yield GaugeMetricFamily("smsgw_push_backlog", "", labels=["kind"])


class Tally(Collector):
    """A labelled counter kept as plain numbers on the reactor thread and exported at scrape time
    (as ``<name>_total``, like a Counter)."""

    def __init__(self, name: str, documentation: str, labels: list[str], registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        # a Counter: ``+=`` on a new key starts from 0 without a call to get (three a message);
        # unlabelled: 0 from the start
        self.values: collections.Counter[tuple[str, ...]] = collections.Counter({} if labels else {(): 0})
        registry.register(self)

    def inc(self, labels: tuple[str, ...], n: float = 1) -> None:
        self.values[labels] += n

    def collect(self):
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in list(self.values.items()):
            family.add_metric(labels, value)
        yield family

    def describe(self):
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labels)


class PduTally(Collector):
    """``smsgw_pdus_total{operator,command,direction}`` kept as one plain count per (command,
    direction) and operator, which the SMPP connections add to themselves (``SMPPProtocol.pdus``).

    Why: a call chain per PDU from the connection to a counter (handler, pipeline, metrics) was
    four or five Python calls a PDU, sixteen to twenty a message in each worker; handed its
    operator's ``counts``, a connection does one dict operation. The counts belong to the
    operator, not to the connection, so a closed connection or a link a reload removed leaves
    them as they were: the counter never goes down."""

    name = "smsgw_pdus"
    documentation = "SMPP PDUs sent and received"
    labels = ["operator", "command", "direction"]

    def __init__(self, registry: CollectorRegistry) -> None:
        #: operator → (command, direction) → PDUs
        self.values: dict[str, collections.Counter[tuple[str, str]]] = {}
        registry.register(self)

    def counts(self, operator: str) -> collections.Counter[tuple[str, str]]:
        """The counts of ``operator`` ("client:<account>" for an ESME), for its connections to add to."""
        found = self.values.get(operator)
        if found is None:
            found = self.values[operator] = collections.Counter()
        return found

    def collect(self):
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for operator, counts in list(self.values.items()):
            for (command, direction), value in list(counts.items()):
                family.add_metric([operator, command, direction], value)
        yield family

    def describe(self):
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labels)


class Spread(Collector):
    """A labelled histogram kept as plain numbers on the reactor thread and exported at scrape time
    (as ``<name>_bucket``, ``_sum`` and ``_count``, like a Histogram). ``observe`` is a bisect and
    two additions; prometheus_client's Histogram walks its buckets and takes a lock per increment,
    and the main worker observes two a message."""

    def __init__(self, name: str, documentation: str, labels: list[str], buckets: Iterable[float],
                 registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.bounds = tuple(float(b) for b in buckets)
        self._les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        # labels → [observations per bucket (not cumulative; the last one past every bound), sum]; a
        # defaultdict: a new label's row is made without a get at every observation; unlabelled: a
        # row from the start
        self.values: collections.defaultdict[tuple[str, ...], list] = collections.defaultdict(
            self._row, {} if labels else {(): self._row()})
        registry.register(self)

    def _row(self) -> list:
        return [0] * (len(self.bounds) + 1) + [0.0]

    def observe(self, labels: tuple[str, ...], amount: float) -> None:
        row = self.values[labels]
        row[bisect_left(self.bounds, amount)] += 1  # the first bucket whose bound is >= amount
        row[-1] += amount

    def collect(self):
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, row in list(self.values.items()):
            buckets, total = [], 0
            for le, n in zip(self._les, row):
                total += n
                buckets.append((le, total))
            family.add_metric(list(labels), buckets, row[-1])
        yield family

    def describe(self):
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labels)


class Metrics:
    """Every metric the gateway exports, prefixed ``smsgw_``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.pdus = PduTally(r)
        self.accepted = Tally("smsgw_accepted", "Messages stored (API, SMPP server, replies), whatever "
                              "their first status", [], r)
        self.messages = Tally("smsgw_messages", "Message status changes (operator: the event's; \"\" before "
                              "any operator was tried)", ["status", "operator"], r)
        self.submit_seconds = Spread("smsgw_submit_seconds", "Time from submit_sm to its response", [],
                                     SUBMIT_BUCKETS, r)
        self.delivery_seconds = Spread("smsgw_delivery_seconds", "Time from acceptance to delivered, by "
                                       "the operator that delivered", ["operator"], DELIVERY_BUCKETS, r)
        self.operator_attempts = Tally("smsgw_operator_attempts", "Submit attempts per operator and outcome",
                                       ["operator", "outcome"], r)
        self.mo = Counter("smsgw_mo", "MO messages by shortcode, keyword and outcome",
                          ["shortcode", "keyword", "outcome"], registry=r)
        self.submit_unanswered = Counter(
            "smsgw_submit_unanswered", "Submits written that got no response (timeout, connection lost): "
            "sent again, they may reach the phone twice", ["operator"], registry=r)
        self.callbacks = Tally("smsgw_callbacks", "HTTP pushes to customers by kind and outcome",
                               ["kind", "outcome"], r)
        self.number_lookups = Tally("smsgw_number_lookups", "HLR/MNP look-ups by outcome: answered (a "
                                    "network), unknown (the service does not know the number), failed, "
                                    "cached (answered from the cache, not asked)", ["outcome"], r)
        self._live: _LiveGauges | None = None
        self._children: dict[tuple, object] = {}

    def child(self, metric, *labels):
        """``metric.labels(*labels)``, cached: label lookups are a hot-path cost at thousands/s."""
        key = (metric._name, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def status_changed(self, status: str, operator: str = "", n: int = 1) -> None:
        """``smsgw_messages_total{status,operator}`` += n; operator "" for a change before any operator
        was tried (accepted, refused, scheduled, held for approval)."""
        self.messages.inc((status, operator), n)

    def acted_on(self, messages) -> None:
        """``smsgw_messages_total{status, operator=""}`` for messages a person changed (a cancel, an
        approval or refusal, an account paused or resumed): each counts its new status once."""
        for status, n in collections.Counter(m.status._value_ for m in messages).items():
            self.messages.inc((status, ""), n)

    def describe_process(self, worker: str, node: bool) -> None:
        """``process_*{worker}`` of this process; with ``node`` (the process whose ``/metrics`` is
        the node's), ``smsgw_build_info{version}`` too: once per node, not summed over workers."""
        self.registry.register(_WorkerProcess(worker))
        if node:
            from smscore import version

            Gauge("smsgw_build_info", "1, labelled with the running package's version", ["version"],
                  registry=self.registry).labels(version()).set(1)

    def watch_push_backlog(self, count, clock, interval: float = 5.0) -> PushBacklog:
        """Register ``smsgw_push_backlog``, read through ``count()`` (the caller starts and stops it)."""
        backlog = PushBacklog(count, clock, interval)
        self.registry.register(backlog)
        return backlog

    def watch_node(self, sample: Callable[[], tuple[bool, int, int]]) -> None:
        """Register ``smsgw_ready``, ``smsgw_backlog`` and ``smsgw_backlog_limit``, read at scrape time
        through ``sample() -> (ready, queued, max_backlog)`` (the main worker's only: not summed)."""
        self.registry.register(_NodeGauges(sample))

    def watch_binds(self, sample: Callable[[], Iterable[tuple[str, str, bool]]]) -> None:
        """Register ``smsgw_bind_up``, read at scrape time through ``sample() -> (operator, session,
        bound)`` for every session of the operator links this process holds (the main worker's
        only: the API workers hold none)."""
        self.registry.register(_BindGauges(sample))

    def watch_smpp_sessions(self, sample: Callable[[], dict[tuple[str, str], int]]) -> None:
        """Register the scrape-time sampler of {(account, bind): bound sessions} (SPEC §13)."""
        self.registry.register(_SessionGauges(sample))

    def watch_queues(self, sample: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        """Register the scrape-time sampler of (operator, queue depth, in flight)."""
        if self._live is None:
            self._live = _LiveGauges(sample)
            self.registry.register(self._live)
