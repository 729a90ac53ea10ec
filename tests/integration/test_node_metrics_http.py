"""The node's ``/metrics`` over real loopback sockets when an API worker's listener accepts the
connection and never answers (a worker stopped with SIGSTOP: the kernel still accepts for it). The
answer comes after ``NodeMetrics.timeout``, with the other workers' samples; before, it never came."""

from __future__ import annotations

import time

import pytest_twisted
import treq
from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.twisted import MetricsResource
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

from smscore.workers import NodeMetrics
from tests.harness.silent import listen_silent

disable_created_metrics()  # as smscore.metrics does in service: no *_created series



def site(resource) -> Site:
    root = Resource()
    root.putChild(b"metrics", resource)
    return Site(root)


@pytest_twisted.ensureDeferred
async def test_a_silent_worker_does_not_hold_up_the_nodes_metrics():
    worker = CollectorRegistry()
    Counter("smsgw_accepted", "Messages stored", registry=worker).inc(7)
    main = CollectorRegistry()
    Counter("smsgw_accepted", "Messages stored", registry=main).inc(3)
    answering = reactor.listenTCP(0, site(MetricsResource(registry=worker)), interface="127.0.0.1")
    silent = listen_silent(reactor)
    node = NodeMetrics(reactor, main, [answering.getHost().port, silent.getHost().port])
    node.timeout = 0.5
    listening = reactor.listenTCP(0, site(node), interface="127.0.0.1")
    try:
        started = time.monotonic()
        resp = await treq.get(f"http://127.0.0.1:{listening.getHost().port}/metrics", timeout=10)
        text = (await resp.content()).decode()
        assert time.monotonic() - started < 5
        assert resp.code == 200 and "smsgw_accepted_total 10.0" in text.splitlines(), text
    finally:
        for port in (answering, silent, listening):
            await port.stopListening()
