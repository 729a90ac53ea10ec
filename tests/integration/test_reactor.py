"""connectors.reactor: the lean epoll reactor dispatches what is ready, keeps going past a handler's
bug (and logs it), writes to a socket without registering it for writing unless the socket is full,
and refuses to be installed over another reactor. Driven poll by poll on real socket pairs and TCP
connections on loopback, beside the test suite's own running reactor."""

from __future__ import annotations

import socket
from select import EPOLLOUT

import pytest
from twisted.internet import main as net_main
from twisted.internet.abstract import FileDescriptor
from twisted.internet.protocol import ClientFactory, Factory, Protocol
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


# -- writing: tried at the next poll, registered with epoll only when the socket is full ----------
class CountingPoller:
    """The reactor's epoll object, counting registrations for write readiness."""

    def __init__(self, poller) -> None:
        self.poller = poller
        self.for_writing = 0

    def register(self, fd, flags):
        self.for_writing += bool(flags & EPOLLOUT)
        return self.poller.register(fd, flags)

    def modify(self, fd, flags):
        self.for_writing += bool(flags & EPOLLOUT)
        return self.poller.modify(fd, flags)

    def __getattr__(self, name):
        return getattr(self.poller, name)


class Served(Protocol):
    """Answers each read with ``answer(data)``; ``then_close``: closes after the first answer."""

    answer = staticmethod(lambda data: data)
    then_close = False

    def connectionMade(self) -> None:
        self.factory.connections.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(self.answer(data))
        if self.then_close:
            self.transport.loseConnection()


@pytest.fixture
def served(lean):
    """A TCP listener on the lean reactor (driven poll by poll) and a blocking client socket."""
    factory = Factory.forProtocol(Served)
    factory.connections = []
    port = lean.listenTCP(0, factory, interface="127.0.0.1")
    lean._poller = CountingPoller(lean._poller)
    client = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=10)
    poll_until(lean, lambda: factory.connections)
    yield factory, client
    client.close()
    port.stopListening()
    for _ in range(3):
        lean.doPoll(0)


def received(lean, client: socket.socket, size: int) -> bytes:
    """Read ``size`` octets (or up to EOF), polling the reactor meanwhile."""
    client.setblocking(False)
    got = b""
    for _ in range(2000):
        lean.runUntilCurrent()
        lean.doPoll(0.01)
        try:
            chunk = client.recv(1 << 20)
        except BlockingIOError:
            continue
        if not chunk:
            break
        got += chunk
        if len(got) >= size:
            break
    return got


def test_an_answer_to_an_idle_socket_goes_out_without_registering_it_for_writing(lean, served):
    factory, client = served
    for i in range(5):
        client.sendall(b"ping %d" % i)
        assert received(lean, client, 6) == b"ping %d" % i
    assert lean._poller.for_writing == 0
    assert lean.getWriters() == []


def test_what_a_full_socket_did_not_take_is_written_when_epoll_says_it_can(lean, served):
    factory, client = served
    big = bytes(range(256)) * (32 * 1024)  # 8 MiB: more than the kernel takes at once
    factory.connections[0].answer = lambda data: big
    client.sendall(b"go")
    for _ in range(5):  # the client reads nothing meanwhile
        lean.doPoll(0.01)
    assert lean._poller.for_writing == 1  # registered once, when the socket was full
    assert factory.connections[0].transport in lean.getWriters()
    assert received(lean, client, len(big)) == big  # every octet, in order
    assert lean.getWriters() == []


def test_a_connection_closed_after_its_answer_delivers_the_answer_then_closes(lean, served):
    factory, client = served
    factory.connections[0].then_close = True
    client.sendall(b"bye")
    assert received(lean, client, 1 << 20) == b"bye"  # then EOF: received stops at it
    poll_until(lean, lambda: not factory.connections[0].transport.connected)
    assert lean._poller.for_writing == 0


class Greeter(Protocol):
    """A client that writes as soon as it is connected (an HTTP request, an SMPP bind)."""

    def connectionMade(self) -> None:
        self.transport.write(b"hello")


class NoWaitOnWanting:
    """The reactor's epoll object, failing a poll that would wait while a write is pending."""

    def __init__(self, reactor, poller) -> None:
        self.reactor, self.poller = reactor, poller

    def poll(self, timeout, maxevents):
        assert not self.reactor._wanting or timeout == 0, "the poll waits while a write is due"
        return self.poller.poll(timeout, maxevents)

    def __getattr__(self, name):
        return getattr(self.poller, name)


def test_a_write_made_as_a_connect_completes_does_not_wait_for_the_next_timer(lean):
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        listener.settimeout(10)
        lean._poller = NoWaitOnWanting(lean, lean._poller)
        lean.connectTCP("127.0.0.1", listener.getsockname()[1], ClientFactory.forProtocol(Greeter), timeout=10)
        lean.runUntilCurrent()  # Twisted starts a connect at the next turn: connect(), EINPROGRESS
        server, _ = listener.accept()  # the kernel completes a loopback connect at once
        server.settimeout(10)
        lean.doPoll(30)  # the connect is done at its start; a poll that then waited would wait 30 s
        lean.doPoll(0)  # writes the greeting at its start
        assert server.recv(16) == b"hello"
        server.close()
    finally:
        listener.close()
