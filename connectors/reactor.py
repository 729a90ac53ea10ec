"""The event loop smsgw's processes run on: Twisted's epoll reactor without a log context per event.

Twisted's ``EPollReactor.doPoll`` hands every ready descriptor to its handler through
``twisted.python.log.callWithLogger``: it asks the connection for its log prefix, copies the legacy
log context and enters it through the context tracker, a dozen Python calls for each readiness
event, to set the ``system`` key of events logged through ``twisted.python.log`` meanwhile. smsgw's
log bridge (``smscore.logs.twisted_event``) does not write that key, so at load the gateway paid
that price on every read and write for nothing (cProfile of a ``scripts/bench`` run: ~40 of the API
worker's 474 calls a message; docs/benchmarks.md, twelfth session).

``LeanEPollReactor`` dispatches each event straight to ``_doReadOrWrite``, which, as in Twisted,
logs what a connection's ``doRead`` or ``doWrite`` raised and closes that connection. Whatever
escapes it (a ``connectionLost`` that raised) is logged as Twisted logs it, and the loop goes on.
Everything else is Twisted's reactor as it is.
"""

from __future__ import annotations

import errno
import sys

from twisted.internet.epollreactor import EPollReactor
from twisted.logger import Logger

__all__ = ["LeanEPollReactor", "install"]

_log = Logger(namespace="smsgw.reactor")


class LeanEPollReactor(EPollReactor):
    """``EPollReactor`` whose poll dispatches without ``callWithLogger`` (see the module doc)."""

    def doPoll(self, timeout):
        try:
            ready = self._poller.poll(-1 if timeout is None else timeout, len(self._selectables))
        except OSError as exc:
            if exc.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        dispatch = self._doReadOrWrite
        for fd, event in ready:
            selectable = selectables.get(fd)
            if selectable is None:  # removed by an earlier handler of this same poll
                continue
            try:
                dispatch(selectable, fd, event)
            except Exception:  # noqa: BLE001 - a handler's bug must not stop the reactor
                _log.failure("unhandled error from {selectable!r}", selectable=selectable)

    doIteration = doPoll


def install():
    """Install ``LeanEPollReactor`` as the global reactor and return it. Call it before anything
    imports ``twisted.internet.reactor``; a reactor already installed is an error (it would have
    been the default one, silently)."""
    from twisted.internet.main import installReactor

    if "twisted.internet.reactor" in sys.modules:
        installed = sys.modules["twisted.internet.reactor"]
        if isinstance(installed, LeanEPollReactor):
            return installed
        raise RuntimeError(f"a reactor is already installed: {type(installed).__name__}")
    reactor = LeanEPollReactor()
    installReactor(reactor)
    return reactor
