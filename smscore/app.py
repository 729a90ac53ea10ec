"""The gateway process: builds every part from the config, starts them in order, stops them cleanly.

Order of start: store (schema) → push workers (they first give back the pushes the node's earlier
processes held, ``policies.leases``) → the first heartbeat (this node's share of the cluster's
binds and tps, ``smscore.cluster``) → simulated SMSCs (in-process operators listen on loopback) →
pipeline (resumes stored work) → operator links (bind) → HTTP API → metrics. Stop runs the other way: stop
taking requests, give back queued work, leave the cluster, unbind every session, close the store.
"""

from __future__ import annotations

import socket

from prometheus_client import CollectorRegistry
from prometheus_client.twisted import MetricsResource
from twisted.internet.defer import Deferred, DeferredList, ensureDeferred, succeed
from twisted.internet.task import LoopingCall
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.resource import Resource

from connectors.http_push import Pusher
from connectors.number_lookup import HttpNumberLookup
from connectors.smpp.client import OperatorLink
from connectors.smpp.server import CustomerSMPPServer
from connectors.smpp.server import listen as smpp_listen
from connectors.smsc_sim import SimulatedSMSC
from connectors.tls import server_options
from policies.callback_urls import address_problem
from policies.leases import process_owner, pushing_owners
from smscore import running_config
from smscore.api import api_factory
from smscore.api.routes import INTERNAL_CANCEL, TOKEN_HEADER
from smscore.api.auth import AccountRateLimit
from smscore.backlog import Backlog
from smscore.supervisor import WorkerSpec, smpp_worker
from smscore.workers import Forwarder, Kicks, NodeMetrics, ReloadResource, WorkersControl
from smscore.callbacks import PushWorker
from smscore.cluster import Cluster
from smscore.config import Config, OperatorConfig
from smscore.customer_smpp import SmppDeliveries, serve_esmes
from smscore.listeners import QuietSite, listen_tcp, own_listeners
from smscore.logs import get_logger
from smscore.metrics import Metrics
from smscore.mo import MoRouter
from smscore.number_lookup import LookupSettings, NumberLookup
from smscore.parts import link_settings, open_store, sim_settings
from smscore.pipeline import Pipeline
from smscore.routing import Routing
from smscore.ratelimit import LocalBuckets, NodeBuckets
from smscore.store.base import StoreRules
from smscore.store.rules import EARLY_RECEIPT_WINDOW, PURGE_CHUNK


class Gateway:
    """One gateway node."""

    def __init__(self, config: Config, reactor, registry: CollectorRegistry | None = None,
                 worker: WorkerSpec | None = None) -> None:
        self.config = config
        #: the settings a reload cannot change, as this process started with them (``reload``)
        self.started_with = config.restart_settings()
        self.reactor = reactor
        self.clock = reactor
        #: None: the node is this one process; else this process's part (smscore.supervisor)
        self.worker = worker
        self.delivers = worker is None or worker.is_main
        self.pushes = worker is None or not worker.is_main
        #: customers' ESMEs (SPEC §13): the first API worker's, so that their submits and receipts
        #: do not share a core with the operator binds (or the only process's)
        self.serves_smpp = worker is None or worker.index == smpp_worker(worker.count)
        node = config.gateway.node
        owner = process_owner(node, None if worker is None else worker.index, self.delivers)
        self.metrics = Metrics(registry or CollectorRegistry())
        self.metrics.describe_process("0" if worker is None else str(worker.index), node=self.delivers)
        routing = Routing.of(config)  # reloaded in place (reload): costs change at once
        self.store = open_store(config, reactor, StoreRules(
            untried=routing.untried, status_callbacks_for=self._status_callbacks, cost_of=routing.cost,
            config_source=lambda: self.config, writer=owner))
        #: smsgw_push_backlog, smsgw_ready, smsgw_backlog: figures of the node or the cluster, so
        #: exported by one process of the node (the main worker's /metrics adds up the others')
        self.push_backlog = None
        if self.delivers:
            self.push_backlog = self.metrics.watch_push_backlog(self.store.count_push_jobs, reactor)
            self.metrics.watch_node(self._node_figures)
            self.metrics.watch_binds(self._bind_states)  # the binds are this process's
        self.kicks: Kicks | None = None
        #: account tps buckets: shared by the node's processes (the supervisor's shared file)
        self.rate_buckets = (NodeBuckets(worker.rates_fd) if worker is not None and worker.rates_fd >= 0
                             else LocalBuckets())
        #: the main worker (or a node of one process) heartbeats and holds the node's binds
        self.cluster = Cluster(store=self.store, clock=reactor, node=config.gateway.node, ttl=config.gateway.lease,
                               operators=self._operator_limits, on_change=self._apply_shares,
                               windows=lambda: {n: op.window for n, op in self.config.operators.items()}
                               ) if self.delivers else None
        if worker is not None:
            self.kicks = Kicks(reactor, worker.kick_ports, {
                b"claim": lambda first_id: self.pipeline.work_stored(first_id),
                b"push": lambda _note: self._push_queued_elsewhere()})
        #: an API worker's way to the main worker: the requests it relays, the calls it makes
        self.forwarder = Forwarder(reactor, worker.internal_port) if worker is not None and not worker.is_main else None
        self.mo_router = MoRouter(config)
        self.backlog = Backlog(store=self.store, clock=reactor, limit=lambda: self.config.gateway.max_backlog)
        #: HLR/MNP look-ups before choosing an operator ([lookup]): the main worker's, which chooses
        self.lookup_client = None
        number_lookup = None
        if self.delivers and config.lookup is not None:
            self.lookup_client = HttpNumberLookup(reactor, config.lookup.url, config.lookup.timeout)
            number_lookup = NumberLookup(self.lookup_client, reactor, lambda: LookupSettings.of(self.config),
                                         self.metrics)
        self.pipeline = Pipeline(store=self.store, clock=reactor, node=owner,
                                 lease=config.gateway.lease, routing=routing, metrics=self.metrics,
                                 receipt_timeout=config.gateway.receipt_timeout, delivers=self.delivers,
                                 on_unclaimed=lambda first_id: self.kicks.kick(0, b"claim", first_id),
                                 claim_interval=2.0 if worker is None else 0.5,
                                 mo_route=lambda mo, spent: self.mo_router.route(mo, spent),
                                 on_push_queued=self._push_queued, held_elsewhere=self._held_elsewhere,
                                 others_alive=self._others_alive, backlog=self.backlog, number_lookup=number_lookup,
                                 hold_limit=self.cluster.hold_limit if self.cluster is not None else lambda: None)
        self.pusher = Pusher(reactor, timeout=config.push.timeout, address_check=self._push_address_problem)
        self.push_worker = PushWorker(store=self.store, pusher=self.pusher, clock=reactor, node=owner,
                                      config_source=lambda: self.config, mo_router_source=lambda: self.mo_router,
                                      pipeline=self.pipeline, metrics=self.metrics, lease=config.gateway.lease,
                                      family=node, siblings=[o for o in pushing_owners(
                                          node, 1 if worker is None else worker.count) if o != owner])
        self.links: dict[str, OperatorLink] = {}
        self.sims: dict[str, SimulatedSMSC] = {}
        #: customers' ESMEs (SPEC §13), when [smpp_server] is configured (see serves_smpp)
        self.smpp_server: CustomerSMPPServer | None = None
        self.smpp_deliveries: SmppDeliveries | None = None
        self.smpp_ports: list = []
        if self.serves_smpp and config.smpp_server is not None:
            self.smpp_server, self.smpp_deliveries = serve_esmes(
                config_source=lambda: self.config, settings=config.smpp_server, reactor=reactor,
                pipeline=self.pipeline, store=self.store, rate_limit=AccountRateLimit(reactor, self.rate_buckets),
                metrics=self.metrics, owner=owner, lease=config.gateway.lease, family=node,
                cancel_at_main=None if self.delivers else self._cancel_at_main)
        self.ports: list = []
        self.http_port = None
        self._purge = None
        self.metrics_port = None
        self.log = get_logger(component="gateway", node=config.gateway.node)

    def start(self):
        return ensureDeferred(self._start())

    async def _start(self) -> None:
        await self.store.open()
        # first, before anything queues pushes: what the node's earlier processes held is given
        # back, to be claimed at once (SPEC §15; a claim before would be given back with it)
        if self.pushes:
            await self.push_worker.start()
        if self.smpp_deliveries is not None:
            await self.smpp_deliveries.start()
        if self.delivers:
            await self._open_accounts()
            await self.cluster.start()
            self.rate_buckets.set_share(self.cluster.shares.account_part)
            for name, op in self.config.operators.items():
                await self._operator(name, op, start=False)
            await self.pipeline.start()
            for link in self.links.values():
                link.start()
            self._purge = LoopingCall(self._purge_old)
            self._purge.clock = self.reactor
            self._purge.start(3600, now=True)
        if self.smpp_server is not None:
            await self._listen_smpp()
        self.backlog.start()
        if self.push_backlog is not None:
            self.push_backlog.start()
        self._listen()
        http, mon = self.config.http.listen, self.config.metrics.listen
        self.log.info("gateway started",
                      http=None if self.http_port is None else f"{http.host}:{self.http_port.getHost().port}",
                      metrics=f"{mon.host}:{mon.port}" if self.delivers else None,
                      operators=list(self.links), store=self.config.store.redacted_url,
                      worker=None if self.worker is None else self.worker.index,
                      reactor=type(self.reactor).__name__)

    async def _listen_smpp(self) -> None:
        """The SMPP listeners for customers' ESMEs: plain, TLS, or both; adopted from the
        supervisor in a node of several processes."""
        s, w, factory = self.config.smpp_server, self.worker, self.smpp_server.factory
        if w is not None:
            for fd, address, tls in ((w.smpp_fd, s.listen, False), (w.smpp_tls_fd, s.tls_listen, True)):
                if fd >= 0:
                    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
                    served = TLSMemoryBIOFactory(server_options(s.tls_cert, s.tls_key), False, factory) if tls else factory
                    self.smpp_ports.append(self.reactor.adoptStreamPort(fd, family, served))
        else:
            if s.listen is not None:
                self.smpp_ports.append(await smpp_listen(self.reactor, factory, s.listen))
            if s.tls_listen is not None:
                self.smpp_ports.append(await smpp_listen(self.reactor, factory, s.tls_listen, s.tls_cert, s.tls_key))
        self.log.info("smpp server listening", addresses=[f"{p.getHost().host}:{p.getHost().port}"
                                                          for p in self.smpp_ports])

    def _listen(self) -> None:
        """The API and metrics listeners: opened here, or adopted from the supervisor."""
        w, r = self.worker, self.reactor
        metrics = Resource()
        if w is None:
            http, mon = self.config.http.listen, self.config.metrics.listen
            self.http_port = listen_tcp(r, http, self._public(api_factory(self, r)), "http.listen")
            metrics.putChild(b"metrics", MetricsResource(registry=self.metrics.registry))
            self.metrics_port = listen_tcp(r, mon, QuietSite(metrics), "metrics.listen")
            return
        family = socket.AF_INET6 if ":" in self.config.http.listen.host else socket.AF_INET
        self.kick_port = r.adoptDatagramPort(w.kick_fd, socket.AF_INET, self.kicks)
        if w.is_main:  # no customer connection: the API workers take them all, and relay it the rest
            self.internal_port = r.adoptStreamPort(w.internal_fd, socket.AF_INET,
                                                   api_factory(self, r, internal_token=w.token))
            metrics.putChild(b"metrics", NodeMetrics(r, self.metrics.registry, w.worker_metrics_ports))
            self.workers_control = WorkersControl(r, w.worker_metrics_ports)
            mon_family = socket.AF_INET6 if ":" in self.config.metrics.listen.host else socket.AF_INET
        else:
            self.http_port = r.adoptStreamPort(w.api_fd, family, self._public(api_factory(self, r, self.forwarder)))
            metrics.putChild(b"metrics", MetricsResource(registry=self.metrics.registry))
            metrics.putChild(b"reload", ReloadResource(self))
            mon_family = socket.AF_INET
        self.metrics_port = r.adoptStreamPort(w.metrics_fd, mon_family, QuietSite(metrics))

    def _public(self, factory):
        """The API's public listener: behind TLS when ``[http]`` names a certificate (SPEC §15). The
        workers' loopback listeners stay plain."""
        http = self.config.http
        if http.tls_cert is None:
            return factory
        return TLSMemoryBIOFactory(server_options(http.tls_cert, http.tls_key, [b"http/1.1"]), False, factory)

    def _push_address_problem(self, address: str, port: int) -> str | None:
        """Why a push may not connect to ``address``:``port`` (SPEC §15), with today's config."""
        return address_problem(address, port, self.config.push.allow_networks, self._own_listeners())

    def _own_listeners(self) -> list[tuple[str, int]]:
        ports = [getattr(self, name, None) for name in ("http_port", "metrics_port", "internal_port")]
        return own_listeners(self.config, self.worker, [p for p in ports if p is not None] + self.smpp_ports,
                             [sim.address for sim in self.sims.values()])

    def _operator_limits(self) -> dict[str, tuple[int, float]]:
        return {name: (op.binds, op.tps) for name, op in self.config.operators.items()}

    def _held_elsewhere(self) -> frozenset[str]:
        return self.cluster.shares.held_elsewhere if self.cluster is not None else frozenset()

    def _others_alive(self) -> bool:
        return self.cluster is not None and len(self.cluster.shares.nodes) > 1

    def _apply_shares(self, shares) -> None:
        """The live nodes changed: take this node's new part of every operator's binds and tps
        (a link whose part changed is bound again with it) and of the accounts' tps."""
        self.rate_buckets.set_share(shares.account_part)
        for name, link in list(self.links.items()):
            share = shares.operators.get(name)
            if share is None or (link.settings.binds, link.settings.tps) == (share.binds, share.tps):
                continue
            self.log.info("cluster share changed", operator=name, binds=share.binds, tps=share.tps,
                          nodes=list(shares.nodes))
            self.links.pop(name).stop()
            self._link(name, self.config.operators[name], link.settings.host, link.settings.port)
            if share.binds == 0:  # what waits here for it is left in the store for its holders
                self.pipeline.bind_changed(name, f"{name}/*", False)

    def _push_queued(self) -> None:
        """A stored change queued push jobs: this process delivers them, or the API workers do
        (receipts for customers' ESMEs too: the process that holds their sessions)."""
        if self.smpp_deliveries is not None:
            self.smpp_deliveries.kick()
        if self.pushes:
            self.push_worker.kick()
        else:  # the API workers deliver them (a loop here: this runs for every message's change)
            for index in range(1, self.worker.count):
                self.kicks.kick(index, b"push")

    def _push_queued_elsewhere(self) -> None:
        """An API worker: the main worker stored changes that queued push jobs."""
        self.push_worker.kick()
        if self.smpp_deliveries is not None:
            self.smpp_deliveries.kick()

    def _cancel_at_main(self, message_id: str, account: str) -> Deferred:
        """An ESME served here cancels: the main worker, which sends the messages, does it
        (``Pipeline.cancel``), so that no cancel succeeds for a message on its way to an operator.
        Deferred[(HTTP status, answer)] as ``DELETE /v1/messages/{id}`` answers."""
        return self.forwarder.call(INTERNAL_CANCEL, {"id": message_id, "account": account},
                                   {TOKEN_HEADER: self.worker.token.encode("ascii")})

    def stop(self):
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        self.log.info("gateway stopping")
        for port in (self.http_port, self.metrics_port, getattr(self, "internal_port", None),
                     getattr(self, "kick_port", None)):
            if port is not None:
                await port.stopListening()
        if self._purge is not None and self._purge.running:
            self._purge.stop()
        self.backlog.stop()
        if self.push_backlog is not None:
            self.push_backlog.stop()
        for port in self.smpp_ports:
            await port.stopListening()
        if self.smpp_server is not None:
            self.smpp_deliveries.stop()
            await self.smpp_server.stop()
        await self.push_worker.stop()
        await self.pusher.close()
        if self.lookup_client is not None:
            await self.lookup_client.close()
        await self.pipeline.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        await DeferredList([link.stop() for link in self.links.values()], consumeErrors=True)
        await DeferredList([sim.stop() for sim in self.sims.values()], consumeErrors=True)
        await self.store.close()
        self.log.info("gateway stopped")

    def _open_accounts(self) -> Deferred:
        """Every account of the config gets its opening balance in the store, once."""
        return self.store.ensure_accounts({name: a.balance for name, a in self.config.accounts.items()})

    def reload_node(self) -> Deferred:
        """Reload in every process of the node (SIGHUP, ``smsgw reload``, the admin API): this one,
        then, from the main worker, each API worker through its control listener. Fires with this
        process's answer once every process has applied the file (or refused it)."""
        result = self.reload()
        if not result.get("reloaded") or not self.delivers:
            return succeed(result)
        # an account the file added gets its opening balance before anyone is told it is there (a
        # top-up or a pause of it then has a stored state to change)
        d = self._open_accounts()
        d.addErrback(lambda f: self.log.error("storing the opening balances of the reloaded accounts failed",
                                              error=f.getErrorMessage()))
        if self.worker is not None and self.worker.is_main:
            d.addCallback(lambda _: self.workers_control.reload_all())
        return d.addCallback(lambda _: result)

    def reload(self) -> dict:
        """Read the config file again and apply it (SIGHUP, ``smsgw reload``, the admin API).

        Accounts, keywords, shortcodes, profiles, prices and costs apply at once. An operator whose
        bind settings changed is reconnected; a new one is bound; a removed one is unbound (what
        waited for it moves to the other operators of its profiles). A file with any error is
        refused whole and the running config stays. Node, store and listen addresses need a restart.
        In a node of several processes the main worker applies it and tells the API workers, which
        apply the text it applied; a worker started again later runs it too (``running_config``).
        """
        from smscore.config import ConfigError

        try:
            new = self._read_config()
        except ConfigError as exc:
            self.log.error("reload refused: the config has errors", errors=exc.errors)
            return {"reloaded": False, "errors": exc.errors, "file": str(self.config.path)}
        old = self.config
        # against what runs, not the last file read: a second reload of a changed file still waits
        # for a restart, and a file put back as it was waits for nothing
        restart = [key for key, value in new.restart_settings().items() if value != self.started_with[key]]
        self.config = new
        self.pipeline.routing.reload(new)
        self.pipeline.receipt_timeouts.set_timeout(new.gateway.receipt_timeout)
        if self.cluster is not None:
            self.cluster.refresh()
        self.mo_router = MoRouter(new)
        changed, added, removed = [], [], []
        for name, op in new.operators.items():
            before = old.operators.get(name)
            if before is None:
                added.append(name)
            elif op.type != before.type or op.bind_settings() != before.bind_settings():
                changed.append(name)
        removed = [name for name in old.operators if name not in new.operators]
        if not self.delivers:  # an API worker: no binds here
            self.log.info("config reloaded", worker=self.worker.index)
            return {"reloaded": True, "reconnected": changed, "added": added, "removed": removed,
                    "needs_restart": restart, "file": str(new.path)}
        for name in changed + removed:
            link = self.links.pop(name)
            link.stop()
            self.pipeline.bind_changed(name, f"{name}/*", False)
            if name in changed and self._keep_simulator(name, new.operators[name]):
                continue
            sim = self.sims.pop(name, None)
            if sim is not None:
                sim.stop()
        for name in changed + added:
            self._start_operator(name, new.operators[name])
        self._apply_shares(self.cluster.shares)  # an operator's binds or tps changed in the file
        if self.worker is not None and self.worker.config_fd >= 0:
            running_config.applied(self.worker.config_fd, new.source)
        self.log.info("config reloaded", reconnected=changed, added=added, removed=removed,
                      needs_restart=restart or None)
        return {"reloaded": True, "reconnected": changed, "added": added, "removed": removed,
                "needs_restart": restart, "file": str(new.path)}

    def _read_config(self) -> Config:
        """What a reload applies: the file, read by the main worker (or the only process); an API
        worker takes the text the main worker applied (the file may have changed since)."""
        from smscore.config import load_config, parse_config

        if self.worker is not None and not self.worker.is_main and self.worker.config_fd >= 0:
            return parse_config(running_config.read(self.worker.config_fd)[1], path=self.config.path)
        return load_config(self.config.path)

    def _start_operator(self, name: str, op: OperatorConfig):
        """Build (and, once the gateway runs, start) one operator's link (and its simulator)."""
        d = ensureDeferred(self._operator(name, op))
        d.addErrback(lambda f: self.log.error("operator failed to start", operator=name, error=f.getErrorMessage()))
        return d

    def _keep_simulator(self, name: str, op: OperatorConfig) -> bool:
        """A simulated operator reloaded with other settings keeps its SMSC (its submits' pending
        receipts go to the new bind, as a real SMSC's would) and takes the new settings in place."""
        sim = self.sims.get(name)
        if sim is None or op.type != "simulated":
            return False
        sim.settings = sim_settings(op)
        return True

    async def _operator(self, name: str, op: OperatorConfig, start: bool = True) -> None:
        if op.type == "simulated" and name in self.sims:  # kept by a reload: bound again, same port
            self._link(name, op, *self.sims[name].address, start)
        elif op.type == "simulated":
            sim = SimulatedSMSC(sim_settings(op), self.reactor, name=name)
            port = await sim.listen("127.0.0.1", 0, self.worker.sim_fds.get(name) if self.worker is not None else None)
            self.sims[name] = sim
            self._link(name, op, "127.0.0.1", port, start)
        else:
            self._link(name, op, op.host, op.port, start)

    def _link(self, name: str, op: OperatorConfig, host: str, port: int, start: bool = True) -> None:
        settings = link_settings(op, host, port, self.cluster.shares.operators.get(name))
        link = OperatorLink(name, settings, self.pipeline, self.reactor)
        self.links[name] = link
        self.pipeline.add_link(link)
        if start:
            link.start()

    def _purge_old(self) -> Deferred:
        """Retention (hourly): finished messages and MO older than retention_days go, a chunk of
        them a transaction (other writes take their turns between), until none is left."""
        return ensureDeferred(self._purge_all())

    async def _purge_all(self) -> None:
        g = self.config.gateway
        removed = 0
        try:
            while True:
                # an orphan receipt older than the window answers no submit any more (store.rules.answers)
                n = await self.store.purge(self.reactor.seconds(), g.retention_days * 86400.0, EARLY_RECEIPT_WINDOW,
                                           limit=PURGE_CHUNK)
                removed += n
                if n < PURGE_CHUNK:
                    break
        except Exception as exc:  # noqa: BLE001 - logged; the next hour tries again
            self.log.error("retention purge failed", error=str(exc), removed=removed)
            return
        if removed:
            self.log.info("retention purge", removed=removed)

    def _status_callbacks(self, message) -> tuple[str, str] | None:
        """Status callbacks go to the message's callback_url, else its account's; they carry the
        events the message's callback_statuses select, else its account's (as configured now)."""
        account = self.config.accounts.get(message.account)
        url = message.callback_url or (account.callback_url if account is not None else None)
        if not url:
            return None
        if message.callback_statuses is not None:
            return url, message.callback_statuses
        return url, account.callback_statuses if account is not None else "all"

    def _bind_states(self):
        """(operator, session, bound) of every session of the links this node holds now, for
        ``smsgw_bind_up``: a link a reload removed is gone, and an operator whose cluster share
        here is 0 binds has no session (docs/monitoring.md)."""
        for name, link in list(self.links.items()):
            for session, up in link.bind_states():
                yield name, session, up

    def _node_figures(self) -> tuple[bool, int, int]:
        """(ready, the cluster's queued messages, max_backlog) for /metrics (``Metrics.watch_node``)."""
        return self.readiness()[0], self.backlog.queued + self.backlog.added, self.config.gateway.max_backlog

    def readiness(self) -> tuple[bool, list[str], dict]:
        """(ready, problems, more): ``more`` names load shedding, which does not make the node unready
        (reads and status updates still work, SPEC §15)."""
        more = {"shedding": "backlog"} if self.backlog.shedding else {}
        problems = []
        if not self.store.is_ready():
            problems.append("store unreachable")
        for name, profile in self.config.profiles.items():
            elsewhere = self._held_elsewhere()
            if not any(self.links[op].is_up() or op in elsewhere for op in profile.operators if op in self.links):
                problems.append(f"profile {name}: no bound operator")
        return not problems, problems, more
