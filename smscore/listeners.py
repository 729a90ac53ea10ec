"""The listeners of a gateway process, as ops meet them: which addresses are its own (a push must
never connect to them, SPEC §15), a port in use named by its config key, and a metrics site that
does not log each scrape.

Why a module of its own: ``smscore.app`` wires the parts; what a listener is and says is asked by
the push check, ``smsgw run``'s errors and the metrics alike.
"""

from __future__ import annotations

from twisted.internet.error import CannotListenError
from twisted.web.server import Site


def own_listeners(config, worker, ports, sim_addresses) -> list[tuple[str, int]]:
    """The (host, port) of every listener of this node that this process knows: configured and
    bound (``ports``: port 0 in the config becomes the port the system chose), the worker's
    loopback ones (``worker``, a ``WorkerSpec`` or None; with the simulated operators' ports the
    supervisor opened for the main worker) and the in-process simulated operators' (``sim_addresses``,
    None for one not listening)."""
    out = [tuple(config.http.listen), tuple(config.metrics.listen)]
    if config.smpp_server is not None:
        out += [tuple(a) for a in (config.smpp_server.listen, config.smpp_server.tls_listen) if a is not None]
    for port in ports:
        host = port.getHost()
        out.append((host.host, host.port))
    if worker is not None:  # the node's loopback ones, the simulated operators' too (they run in the main worker)
        out += [("127.0.0.1", p) for p in (worker.internal_port, *worker.worker_metrics_ports, *worker.sim_ports)]
    out += [a for a in sim_addresses if a is not None]
    return out


class QuietSite(Site):
    """The metrics listener's site: Prometheus scrapes it every few seconds, and the workers each
    other; a log line per scrape (Twisted's access line) would bury the gateway's own lines."""

    noisy = False

    def log(self, request) -> None:
        """No access line: see the class."""


def listen_tcp(reactor, address, factory, key: str):
    """``listenTCP`` on ``address``; a port in use fails naming the address and the config ``key``
    that asked for it (the metrics and the API listener otherwise fail alike)."""
    try:
        return reactor.listenTCP(address.port, factory, interface=address.host)
    except CannotListenError as exc:
        reason = getattr(exc.socketError, "strerror", None) or str(exc.socketError)
        raise CannotListenError(address.host, address.port, f"{reason} ({key}): is another gateway running?") from None
