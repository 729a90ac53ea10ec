"""What the processes of one node say to each other (see ``smscore.supervisor``).

- ``Kicks``: one-word UDP datagrams on loopback ("claim", "push", "reload"), coalesced so that a
  burst of stored messages costs one datagram per few milliseconds. A "claim" carries a note, the
  lowest id its messages have, where the main worker's claim starts (``policies.claims``). A lost
  kick costs only time: the main worker also claims every ``claim_interval`` and push workers poll
  every second.
- ``Forwarder``: an API worker hands every request it does not serve itself to the main worker's
  internal API listener and relays the answer as it came; and calls the routes the main worker
  keeps for its API workers there (a customer's ``cancel_sm``, done where the messages are sent).
- ``NodeMetrics``: ``/metrics`` of the main worker, the samples of every process added up, so that
  Prometheus sees one node, whose counters never go down while the main worker runs (a worker's
  restart or silence included: ``WorkerSamples``).
- ``WorkersControl`` / ``ReloadResource``: the main worker reloads the API workers through their
  loopback control listener (the one their metrics are read from) and waits for each, so that an
  admin reload has reached every process when it is answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from io import BytesIO

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import DeferredList
from twisted.internet.protocol import DatagramProtocol
from twisted.python.failure import Failure
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from policies.claims import announced
from smscore.logs import get_logger



#: what a kick's note may be (a message id); anything else is read as no note
_NOTE = re.compile(rb"[0-9A-Za-z_-]{1,64}")


class Kicks(DatagramProtocol):
    """Sends and receives kicks; ``handlers[word](note)`` runs for each one received.

    A kick may carry a note: kicks coalesced into one datagram carry the lowest of their notes, or
    none ("") when one of them had none."""

    noisy = False  # no "Starting protocol <Kicks object at 0x…>" line at every start and stop

    def __init__(self, clock, ports: list[int], handlers: dict[bytes, Callable[[str], object]],
                 delay: float = 0.002) -> None:
        self.clock = clock
        self.ports = ports  # by worker index
        self.handlers = handlers
        self.delay = delay
        self._due: dict[tuple[int, bytes], str] = {}  # (worker, word) → the note it will carry

    def datagramReceived(self, data: bytes, addr) -> None:
        word, _, note = data.partition(b" ")
        handler = self.handlers.get(word)
        if handler is not None:  # anything else (a stray or forged datagram) changes nothing
            handler(note.decode("ascii") if _NOTE.fullmatch(note) else "")

    def kick(self, index: int, word: bytes, note: str = "") -> None:
        """Send ``word`` (with ``note``) to worker ``index`` within ``delay`` (once, however often
        asked meanwhile)."""
        key = (index, word)
        due = self._due.get(key)
        if due is None:
            self.clock.callLater(self.delay, self._send, key)
        self._due[key] = announced(due, note)  # the lowest, or none when one had none

    def _send(self, key) -> None:
        note = self._due.pop(key).encode("ascii", "replace")
        index, word = key
        if self.transport is not None:
            try:
                self.transport.write(word + b" " + note if _NOTE.fullmatch(note) else word,
                                     ("127.0.0.1", self.ports[index]))
            except OSError:  # the worker is being restarted: its poll will find the work
                pass


class Relayed:
    """An answer that came from the main worker: written back as it is."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"host", b"date", b"upgrade",
        b"te", b"trailer", b"proxy-connection"}


#: Seconds the main worker has to answer an API worker, and an API worker to take a reload: a
#: process stopped (SIGSTOP) or stuck otherwise held the customer's request, or the reload, for ever.
ANSWER_WITHIN = 10.0


class Forwarder:
    """Hands requests to the main worker (the rare ones: admin, cancel, readiness); one it does not
    answer within ``timeout`` seconds is 503 (``render.fail``)."""

    def __init__(self, reactor, port: int, timeout: float = ANSWER_WITHIN) -> None:
        pool = HTTPConnectionPool(reactor, persistent=True)
        self._agent = Agent(reactor, pool=pool)
        self._base = b"http://127.0.0.1:%d" % port
        self._reactor = reactor
        self.timeout = timeout

    def forward(self, request):
        headers = Headers({name: [value] for name, value in request.headers.items() if name not in _HOP})
        body = request.content.read()
        d = self._agent.request(request.method, self._base + request.uri, headers,
                                FileBodyProducer(BytesIO(body)) if body or request.method in (b"POST", b"PUT") else None)

        def answered(response):
            kept = [(name, value) for name, values in response.headers.getAllRawHeaders()
                    if name.lower() not in _HOP for value in values]
            return readBody(response).addCallback(lambda data: Relayed(response.code, kept, data))

        return d.addCallback(answered).addTimeout(self.timeout, self._reactor)

    def call(self, path: str, body: dict, headers: dict[bytes, bytes]):
        """POST ``body`` as JSON to the main worker's ``path``: Deferred[(status, JSON answer)]."""
        d = self._agent.request(b"POST", self._base + path.encode("ascii"),
                                Headers({b"content-type": [b"application/json"],
                                         **{name: [value] for name, value in headers.items()}}),
                                FileBodyProducer(BytesIO(json.dumps(body).encode())))
        d.addCallback(lambda response: readBody(response).addCallback(
            lambda data: (response.code, json.loads(data) if data else {})))
        return d.addTimeout(self.timeout, self._reactor)


class NodeMetrics(Resource):
    """``/metrics`` for the node: this process's registry plus every API worker's, added up.

    Why the workers' counts are kept here (``WorkerSamples``): the supervisor restarts a worker that
    dies, and its counters start again from 0. Added up as they were read, the node's counters then
    went down (``smsgw_accepted_total`` 44 → 16), and Prometheus took the drop for a reset and counted
    the 16 as new events; a scrape while a worker was down or did not answer left its share out,
    another drop. So the node's counters and histograms are the sum over every process a worker
    slot ran since this (main) worker started, and a worker that cannot be read counts with its
    last samples. When the main worker itself restarts, everything starts again from 0: one
    reset, which Prometheus reads as such.

    Each worker has ``timeout`` seconds to answer: one that never did (stopped with SIGSTOP, stuck)
    held the node's whole answer until Prometheus gave up on it."""

    isLeaf = True

    #: seconds each worker has to answer: well under Prometheus's scrape timeout (10 s by default),
    #: so that one stopped or stuck worker costs the scrape this long, not the whole node's metrics
    timeout = 2.0

    def __init__(self, reactor, registry, ports: list[int]) -> None:
        super().__init__()
        self.registry = registry
        self.ports = ports
        self._reactor = reactor
        self._agent = Agent(reactor)
        self._workers = [WorkerSamples() for _ in ports]
        self._asked = 0  # scrapes begun: orders the answers of overlapping ones
        self.log = get_logger(component="metrics")

    def fetch(self, port: int):
        """Deferred[bytes]: the exposition of the API worker listening on ``port``."""
        return self._agent.request(b"GET", b"http://127.0.0.1:%d/metrics" % port).addCallback(readBody)

    def render_GET(self, request):
        self._asked += 1
        asked = self._asked
        fetches = [self.fetch(port).addTimeout(self.timeout, self._reactor, onTimeoutCancel=self._no_answer)
                   for port in self.ports]

        gone: list = []  # the scraper hung up meanwhile: nobody to answer
        request.notifyFinish().addErrback(gone.append)

        def merged(results):
            processes = [_parse(generate_latest(self.registry).decode())]
            for index, (port, worker, (ok, value)) in enumerate(zip(self.ports, self._workers, results), start=1):
                if ok:
                    try:
                        worker.read(_parse(value.decode()), asked)
                    except ValueError as exc:  # not an exposition: as if it had not answered
                        ok, value = False, Failure(exc)
                if not ok:
                    worker.missed(asked)
                    # ``worker`` on a line is the process that wrote it (here the main one)
                    self.log.warning("a worker's metrics could not be read: its last counts stand in",
                                     unread_worker=index, port=port, error=value.getErrorMessage())
                processes.append(worker.families())
            if gone:
                return
            request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
            request.write(merge_families(processes).encode())
            request.finish()

        DeferredList(fetches, consumeErrors=True).addCallback(merged)
        return NOT_DONE_YET

    @staticmethod
    def _no_answer(result, timeout):
        """A fetch cancelled for want of an answer fails saying so, whatever the cancelled request
        failed with (a CancelledError, or the Agent's ResponseNeverReceived around one)."""
        if isinstance(result, Failure):
            return Failure(TimeoutError(f"no answer in {timeout:g} s"))
        return result


#: the families that count, and the names of their samples (smscore.metrics exports no summary)
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def _parse(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))


def _kept(family: Metric) -> bool:
    """Whether a family counts up for the node across a worker's restarts: counters and histograms,
    but not ``process_*`` (one series per process, labelled ``worker``: a new process's CPU time
    starts from 0, a reset Prometheus reads as such) nor gauges (a level, not a count)."""
    return family.type in _SUFFIXES and not family.name.startswith("process_")


def _start_time(families: list[Metric]) -> float | None:
    for family in families:
        if family.name == "process_start_time_seconds":
            for sample in family.samples:
                return sample.value
    return None


class WorkerSamples:
    """What the node's ``/metrics`` knows of one API worker slot: the families it last read
    (``last``), and the counts of the slot's earlier processes (``carried``), added to the
    counters and histograms of the one running now so that the node's sums never go down.

    A new process is seen by its ``process_start_time_seconds`` changing, or by a count lower than
    the last one read (a process's counts only grow, and none of its series goes away): then its
    predecessor's last counts are carried. Counts it made after that last read are lost (nobody
    read them), which makes the node's counters undercount, never go back. A worker that cannot
    be read counts with its last counts; its gauges are left out meanwhile (they would claim to be
    current), as are its ``process_*`` series, which go stale in Prometheus as the process does."""

    def __init__(self) -> None:
        self.last: list[Metric] = []
        self.carried: dict[tuple, float] = {}  # (sample name, labels) → count of earlier processes
        self.described: dict[str, Metric] = {}  # family name → an empty family, for carried series
        self.answered = False  # the latest scrape read this worker
        self._start: float | None = None
        self._asked = 0  # the scrape whose answer is in ``last`` (or that missed it)

    def read(self, families: list[Metric], asked: int) -> None:
        """Scrape ``asked`` read ``families``; an answer older than one already taken is dropped."""
        if asked < self._asked:
            return
        self._asked, self.answered = asked, True
        start, counts, before = _start_time(families), _counts(families), _counts(self.last)
        restarted = (start is not None and self._start is not None and start != self._start) or any(
            counts.get(key, 0.0) < value for key, value in before.items())
        if restarted:
            for key, value in before.items():
                self.carried[key] = self.carried.get(key, 0.0) + value
        for family in families:
            if _kept(family) and family.name not in self.described:
                self.described[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
        self.last, self._start = families, start if start is not None else self._start

    def missed(self, asked: int) -> None:
        """Scrape ``asked`` could not read this worker."""
        if asked >= self._asked:
            self._asked, self.answered = asked, False

    def families(self) -> list[Metric]:
        """The worker's share of the node's ``/metrics``."""
        out = []
        seen = set()
        for family in self.last:
            if _kept(family):
                out.append(self._with_carried(family))
                seen.add(family.name)
            elif self.answered:
                out.append(family)
        out += [self._with_carried(family) for name, family in self.described.items() if name not in seen]
        return out

    def _with_carried(self, family: Metric) -> Metric:
        values = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value for sample in family.samples}
        for key, value in self.carried.items():
            if _of_family(key[0], family):
                values[key] = values.get(key, 0.0) + value
        out = Metric(family.name, family.documentation, family.type, family.unit)
        for (name, labels), value in values.items():
            out.add_sample(name, dict(labels), value)
        return out


def _of_family(sample: str, family: Metric) -> bool:
    return any(sample == family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))


def _counts(families: list[Metric]) -> dict[tuple, float]:
    """(sample name, labels) → value of every sample that only grows in one process."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in families if _kept(family) for sample in family.samples if _of_family(sample.name, family)}


def merge_exposition(texts: list[str]) -> str:
    """Prometheus text expositions added up sample by sample (see ``merge_families``)."""
    return merge_families([_parse(text) for text in texts])


def merge_families(processes: list[list[Metric]]) -> str:
    """The families of several processes added up sample by sample (same name and labels;
    smscore.metrics exports no ``_created`` times, which would not add up), written out again by
    prometheus_client: a counter's HELP and TYPE name it ``…_total`` as its samples are, which the
    parser's family name (``…`` alone) is not."""
    families: dict[str, tuple[Metric, dict]] = {}
    for process in processes:
        for family in process:
            _, samples = families.setdefault(family.name, (family, {}))
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = samples.get(key, 0.0) + sample.value
    merged = []
    for name, (first, samples) in families.items():
        metric = Metric(name, first.documentation, first.type, first.unit)
        for (sample, labels), value in samples.items():
            metric.add_sample(sample, dict(labels), value)
        merged.append(metric)
    return generate_latest(_Families(merged)).decode()


class _Families:
    """Metric families already made, as the collector ``generate_latest`` reads."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


class ReloadResource(Resource):
    """``POST /reload`` on an API worker's loopback control listener: apply the config file."""

    isLeaf = True

    def __init__(self, gateway) -> None:
        super().__init__()
        self.gateway = gateway

    def render_POST(self, request):
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(self.gateway.reload()).encode()


class WorkersControl:
    """The main worker's handle on the API workers' control listeners."""

    def __init__(self, reactor, ports: list[int], timeout: float = ANSWER_WITHIN) -> None:
        self.ports = ports
        self._agent = Agent(reactor)
        self._reactor = reactor
        self.timeout = timeout
        self.log = get_logger(component="workers")

    def reload_all(self):
        """Deferred that fires once every API worker answered its reload (or could not be reached,
        or did not answer within ``timeout``: logged, as the others go on)."""
        calls = [self._agent.request(b"POST", b"http://127.0.0.1:%d/reload" % port).addCallback(readBody)
                 .addTimeout(self.timeout, self._reactor) for port in self.ports]

        def done(results):
            for port, (ok, value) in zip(self.ports, results):
                if not ok:
                    self.log.error("a worker could not be told to reload", port=port, error=value.getErrorMessage())

        return DeferredList(calls, consumeErrors=True).addCallback(done)
