"""``smsgw run``: a node, as the supervisor of its workers or as one process (SPEC §10)."""

from __future__ import annotations

import gc
import os
import signal
import sys

from smscore.cli.common import CliError, load, one_line
from smscore.cli.local import upgrade_store


def cmd_run(args) -> int:
    from smscore import logs
    from smscore.supervisor import WORKER_ENV, Supervisor, WorkerSpec, die_with_parent, resolve_processes

    spec = os.environ.get(WORKER_ENV)
    if spec is not None:  # a worker process started by the supervisor below
        die_with_parent()
        worker = WorkerSpec.from_env(spec)
        config = _running(args.config, worker.config_fd) if worker.config_fd >= 0 else load(args.config)
        logs.configure(args.log_level, args.log_format)
        import structlog

        structlog.contextvars.bind_contextvars(worker=worker.index)
        return _run_gateway(config, worker)
    config = load(args.config)
    logs.configure(args.log_level, args.log_format)
    held = _hold_node(config)  # noqa: F841 - the node's lock on its store, for as long as it runs
    count = resolve_processes(config.gateway.processes)
    if count == 1:
        return _run_gateway(config, None)
    log = logs.get_logger(component="supervisor", node=config.gateway.node)
    if config.store.auto_upgrade:
        upgrade_store(config)  # once, before the workers open the store
    supervisor = Supervisor(config, ["run", "-c", args.config, "--log-level", args.log_level,
                                     "--log-format", args.log_format], count, log)
    try:
        supervisor.open_sockets()
    except OSError as exc:
        raise CliError(f"cannot listen: {exc.strerror or exc}") from None
    log.info("starting workers", processes=count)
    return supervisor.run()


def _hold_node(config):
    """One running node a name on its store (``smscore.store.node_guard``): a second one is one
    line and exit status 1, before it binds or claims anything."""
    from smscore.store.node_guard import NodeRunning, StoreUnreachable, hold_node

    try:
        return hold_node(config)
    except NodeRunning as exc:
        raise CliError(str(exc)) from None
    except StoreUnreachable as exc:
        raise CliError(f"cannot start: {one_line(str(exc))}") from None


def _running(path: str, fd: int):
    """The config the node runs (``smscore.running_config``), not the file as it is now: a worker
    started again after an edit that was not reloaded, or a reload that was refused, runs what the
    node's other processes run."""
    from smscore import running_config
    from smscore.config import ConfigError, parse_config

    started, running = running_config.read(fd)
    try:
        return parse_config(running, path=path).keeping_restart_settings(parse_config(started, path=path))
    except ConfigError as exc:  # a secret ("env:", "file:") the running config names is gone
        raise CliError(f"{path}: the running config: {'; '.join(exc.errors)}", 2) from None


def _run_gateway(config, worker) -> int:
    """One process of the gateway: the whole node (``worker`` None) or its part of it."""
    from connectors.reactor import install

    reactor = install()  # before anything imports twisted.internet.reactor
    from smscore import logs
    from smscore.app import Gateway

    log = logs.get_logger(component="cli")
    # The store's writer thread gives up the GIL for every SQL statement and must get it back from
    # the reactor thread; at Python's default 5 ms a busy reactor made each batch, and so each 2xx,
    # wait. 1 ms measured best with ../shared/peers (docs/benchmarks.md: ~10% more messages a second
    # than 5 ms, fewer than 0.5 ms).
    sys.setswitchinterval(0.001)
    gateway = Gateway(config, reactor, worker=worker)
    _tune_gc()
    outcome = {"code": 0}

    def started_failed(failure):
        log.error("gateway failed to start", error=failure.getErrorMessage())
        print(f"smsgw: cannot start: {one_line(failure.getErrorMessage())}", file=sys.stderr)
        outcome["code"] = 1
        if reactor.running:
            reactor.stop()

    def start():
        d = gateway.start()
        # a worker of several starts with SIGHUP blocked (Supervisor.spawn): a reload that came
        # while it started is delivered now, to a gateway that can apply it
        d.addCallback(lambda _: signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP}))
        d.addErrback(started_failed)

    stopping = {"done": False}

    def shutdown(*_):
        if stopping["done"]:
            return
        stopping["done"] = True
        d = gateway.stop()
        d.addErrback(lambda f: log.error("unclean stop", error=f.getErrorMessage()))
        d.addBoth(lambda _: reactor.stop())

    def on_signal(signum, _frame):
        reactor.callFromThread(shutdown)

    def on_hup(signum, _frame):
        reactor.callFromThread(gateway.reload_node)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hup)
    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    return outcome["code"]


def _tune_gc() -> None:
    """Fewer, cheaper cycle collections for a long-running gateway. Every message makes short-lived
    containers (Deferreds, PDUs, rows): at Python's default (a collection every 700 allocations)
    the collector took 4-8 % of a worker's samples (py-spy) in an SMPP-in run. The objects built at
    start (modules, config, tables) are frozen out of every collection, and the youngest generation
    is collected every 10,000 allocations: ~12 % less gateway CPU a message in alternating runs of
    scripts/bench_smpp.py (docs/benchmarks.md). Cycles are still collected; memory stays flat."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)
