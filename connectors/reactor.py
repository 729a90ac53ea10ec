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
It also writes without asking epoll first. Twisted's reactor registers a connection for write
readiness on every write to an idle socket (``epoll_ctl``), waits for the poll to say what is
always true of an idle socket (it can take more), writes, and unregisters (``epoll_ctl`` again):
two system calls and one more event for every answer, submit_sm or push. Here a connection that
starts writing waits in ``_wanting`` until the start of the next poll, where its ``doWrite`` runs at
once, after everything the current turn wrote to it; only a connection whose socket did not take it
all is registered with epoll, as Twisted would, and is written by the poll from then on. A write
that round itself starts (a client's connect completes there, and its ``connectionMade`` writes)
makes that poll return at once instead of waiting for the next timer: it goes out at the next.

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
    """``EPollReactor`` whose poll dispatches without ``callWithLogger`` and that writes before it
    asks epoll (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self._wanting: dict = {}  # writers to try at the next poll, in order (a dict as an ordered set)
        self._trying = None  # the writer being tried now

    # -- writers: tried first, registered with epoll only when the socket is full ---------------
    def addWriter(self, writer) -> None:
        if writer is self._trying or writer in self._wanting:
            return
        if writer.fileno() in self._writes:  # already waiting for epoll
            return
        self._wanting[writer] = None

    def removeWriter(self, writer) -> None:
        if writer is self._trying:
            self._trying = None
        elif writer in self._wanting:
            del self._wanting[writer]
        else:  # registered with epoll, or not writing at all
            super().removeWriter(writer)

    def getWriters(self):
        return super().getWriters() + [w for w in self._wanting if w is not self._trying]

    def removeAll(self):
        wanting = list(self._wanting)
        self._wanting.clear()
        removed = super().removeAll()
        return removed + [w for w in wanting if w not in removed]

    def _write_wanting(self) -> None:
        wanting, self._wanting = self._wanting, {}
        for writer in wanting:
            self._trying = writer
            try:
                self._doReadOrWrite(writer, writer.fileno(), self._POLL_OUT)
            except Exception:  # noqa: BLE001 - as in the poll below
                _log.failure("unhandled error from {selectable!r}", selectable=writer)
            if self._trying is writer:  # it did not finish (and did not stop): epoll tells when it can
                self._trying = None
                super().addWriter(writer)
        self._trying = None

    def doPoll(self, timeout):
        if self._wanting:
            self._write_wanting()
            if self._wanting:  # that round started writers (a connect done, then its first write):
                timeout = 0    # the poll does not wait on them: the next one writes at its start
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
