"""What the processes of one node say to each other (see ``smscore.supervisor``).

- ``Kicks``: one-word UDP datagrams on loopback ("claim", "push", "reload"), coalesced so that a
  burst of stored messages costs one datagram per few milliseconds. A lost kick costs only time: the
  main worker also claims every ``claim_interval`` and push workers poll every second.
- ``Forwarder``: an API worker hands every request it does not serve itself to the main worker's
  internal API listener and relays the answer as it came; and calls the routes the main worker
  keeps for its API workers there (a customer's ``cancel_sm``, done where the messages are sent).
- ``NodeMetrics``: ``/metrics`` of the main worker, the samples of every process added up, so that
  Prometheus sees one node.
- ``WorkersControl`` / ``ReloadResource``: the main worker reloads the API workers through their
  loopback control listener (the one their metrics are read from) and waits for each, so that an
  admin reload has reached every process when it is answered.
"""

from __future__ import annotations

import json
from io import BytesIO

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import DeferredList
from twisted.internet.protocol import DatagramProtocol
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from smscore.logs import get_logger



class Kicks(DatagramProtocol):
    """Sends and receives kicks; ``handlers[word]()`` runs for each one received."""

    noisy = False  # no "Starting protocol <Kicks object at 0x…>" line at every start and stop

    def __init__(self, clock, ports: list[int], handlers: dict[bytes, object], delay: float = 0.002) -> None:
        self.clock = clock
        self.ports = ports  # by worker index
        self.handlers = handlers
        self.delay = delay
        self._due: dict[tuple[int, bytes], object] = {}

    def datagramReceived(self, data: bytes, addr) -> None:
        handler = self.handlers.get(data)
        if handler is not None:  # anything else (a stray or forged datagram) changes nothing
            handler()

    def kick(self, index: int, word: bytes) -> None:
        """Send ``word`` to worker ``index`` within ``delay`` (once, however often asked meanwhile)."""
        key = (index, word)
        if key not in self._due:
            self._due[key] = self.clock.callLater(self.delay, self._send, key)

    def _send(self, key) -> None:
        del self._due[key]
        index, word = key
        if self.transport is not None:
            try:
                self.transport.write(word, ("127.0.0.1", self.ports[index]))
            except OSError:  # the worker is being restarted: its poll will find the work
                pass


class Relayed:
    """An answer that came from the main worker: written back as it is."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"host", b"date", b"upgrade",
        b"te", b"trailer", b"proxy-connection"}


class Forwarder:
    """Hands requests to the main worker (the rare ones: admin, cancel, readiness)."""

    def __init__(self, reactor, port: int) -> None:
        pool = HTTPConnectionPool(reactor, persistent=True)
        self._agent = Agent(reactor, pool=pool)
        self._base = b"http://127.0.0.1:%d" % port

    def forward(self, request):
        headers = Headers({name: [value] for name, value in request.headers.items() if name not in _HOP})
        body = request.content.read()
        d = self._agent.request(request.method, self._base + request.uri, headers,
                                FileBodyProducer(BytesIO(body)) if body or request.method in (b"POST", b"PUT") else None)

        def answered(response):
            kept = [(name, value) for name, values in response.headers.getAllRawHeaders()
                    if name.lower() not in _HOP for value in values]
            return readBody(response).addCallback(lambda data: Relayed(response.code, kept, data))

        return d.addCallback(answered)

    def call(self, path: str, body: dict, headers: dict[bytes, bytes]):
        """POST ``body`` as JSON to the main worker's ``path``: Deferred[(status, JSON answer)]."""
        d = self._agent.request(b"POST", self._base + path.encode("ascii"),
                                Headers({b"content-type": [b"application/json"],
                                         **{name: [value] for name, value in headers.items()}}),
                                FileBodyProducer(BytesIO(json.dumps(body).encode())))
        d.addCallback(lambda response: readBody(response).addCallback(
            lambda data: (response.code, json.loads(data) if data else {})))
        return d


class NodeMetrics(Resource):
    """``/metrics`` for the node: this process's registry plus every API worker's, added up."""

    isLeaf = True

    def __init__(self, reactor, registry, ports: list[int]) -> None:
        super().__init__()
        self.registry = registry
        self.ports = ports
        self._agent = Agent(reactor)
        self.log = get_logger(component="metrics")

    def render_GET(self, request):
        fetches = [self._agent.request(b"GET", b"http://127.0.0.1:%d/metrics" % port).addCallback(readBody)
                   for port in self.ports]

        def merged(results):
            texts = [generate_latest(self.registry).decode()]
            for ok, value in results:
                if ok:
                    texts.append(value.decode())
                else:
                    self.log.warning("a worker's metrics could not be read", error=value.getErrorMessage())
            request.setHeader(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")
            request.write(merge_exposition(texts).encode())
            request.finish()

        DeferredList(fetches, consumeErrors=True).addCallback(merged)
        return NOT_DONE_YET


def merge_exposition(texts: list[str]) -> str:
    """Prometheus text expositions added up sample by sample (same name and labels; smscore.metrics
    exports no ``_created`` times, which would not add up), written out again by prometheus_client:
    a counter's HELP and TYPE name it ``…_total`` as its samples are, which the parser's family
    name (``…`` alone) is not."""
    families: dict[str, tuple[Metric, dict]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
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

    def __init__(self, reactor, ports: list[int]) -> None:
        self.ports = ports
        self._agent = Agent(reactor)
        self.log = get_logger(component="workers")

    def reload_all(self):
        """Deferred that fires once every API worker answered its reload (or could not be reached)."""
        calls = [self._agent.request(b"POST", b"http://127.0.0.1:%d/reload" % port).addCallback(readBody)
                 for port in self.ports]

        def done(results):
            for port, (ok, value) in zip(self.ports, results):
                if not ok:
                    self.log.error("a worker could not be told to reload", port=port, error=value.getErrorMessage())

        return DeferredList(calls, consumeErrors=True).addCallback(done)
