"""A loopback listener that accepts connections and never answers: what a process stopped with
SIGSTOP looks like to its peers (the kernel still accepts for it), for tests of their timeouts."""

from __future__ import annotations

from twisted.internet.protocol import Factory, Protocol


class Silent(Protocol):
    """Reads whatever comes and answers nothing."""

    def dataReceived(self, data: bytes) -> None:
        del data  # read, and left unanswered


def listen_silent(reactor):
    """A listening port on 127.0.0.1 (any free port) whose connections never get an answer."""
    return reactor.listenTCP(0, Factory.forProtocol(Silent), interface="127.0.0.1")
