"""connectors.reactor: the lean epoll reactor dispatches what is ready, keeps going past a handler's
bug (and logs it), and refuses to be installed over another reactor. Driven poll by poll on real
socket pairs, beside the test suite's own running reactor."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import main as net_main
from twisted.internet.abstract import FileDescriptor
from twisted.logger import globalLogPublisher

from connectors.reactor import LeanEPollReactor, install


class Reader(FileDescriptor):
    """Reads one end of a socket pair; ``closing_bug``: its connectionLost raises (a handler's bug)."""

    def __init__(self, reactor, sock: socket.socket, closing_bug: bool = False) -> None:
        super().__init__(reactor)
        self.sock = sock
        self.closing_bug = closing_bug
        self.received = b""
        self.lost = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self):
        data = self.sock.recv(65536)
        if not data:
            return net_main.CONNECTION_DONE
        self.received += data
        return None

    def connectionLost(self, reason) -> None:
        self.lost = reason
        self.reactor.removeReader(self)
        if self.closing_bug:
            raise ZeroDivisionError("a bug in connectionLost")


@pytest.fixture
def lean():
    reactor = LeanEPollReactor()
    opened: list[socket.socket] = []

    def pair():
        a, b = socket.socketpair()
        opened.extend((a, b))
        return a, b

    reactor.pair = pair
    yield reactor
    for s in opened:
        s.close()
    reactor._poller.close()


def poll_until(reactor, done, polls: int = 50) -> None:
    for _ in range(polls):
        if done():
            return
        reactor.doPoll(0.1)
    assert done()


def test_a_ready_descriptor_reaches_its_reader(lean):
    ours, theirs = lean.pair()
    reader = Reader(lean, ours)
    lean.addReader(reader)
    theirs.sendall(b"hello")
    poll_until(lean, lambda: reader.received == b"hello")
    theirs.close()
    poll_until(lean, lambda: reader.lost is not None)
    assert reader not in lean.getReaders()


def test_a_handler_that_raises_is_logged_and_the_others_of_the_same_poll_still_run(lean):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        buggy_ours, buggy_theirs = lean.pair()
        good_ours, good_theirs = lean.pair()
        buggy = Reader(lean, buggy_ours, closing_bug=True)
        good = Reader(lean, good_ours)
        lean.addReader(buggy)
        lean.addReader(good)
        buggy_theirs.close()  # buggy's connectionLost raises out of _doReadOrWrite
        good_theirs.sendall(b"still served")
        poll_until(lean, lambda: buggy.lost is not None and good.received == b"still served")
    finally:
        globalLogPublisher.removeObserver(events.append)
    failures = [e for e in events if e.get("log_namespace") == "smsgw.reactor" and "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["log_failure"].check(ZeroDivisionError)
    assert failures[0]["selectable"] is buggy


def test_install_refuses_to_replace_another_reactor():
    # the test suite runs on Twisted's default reactor, installed before this test
    with pytest.raises(RuntimeError, match="already installed"):
        install()
