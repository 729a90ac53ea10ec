"""tests.harness.net.free_port: one config's listeners never get the same port, even when the kernel
hands out a port again as soon as its socket is closed (a CI run drew one port twice for an HTTP and
a metrics listener)."""

from __future__ import annotations

import pytest

from tests.harness import net


class _Kernel:
    """Stands in for ``socket.socket``: each socket bound to port 0 gets the next of ``ports``."""

    def __init__(self, ports):
        self.ports = iter(ports)

    def __call__(self, *args, **kwargs):
        kernel = self

        class _Socket:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def bind(self, address):
                assert address == ("127.0.0.1", 0)
                self.port = next(kernel.ports)

            def getsockname(self):
                return ("127.0.0.1", self.port)

        return _Socket()


def test_free_port_never_gives_a_port_twice(monkeypatch):
    monkeypatch.setattr(net, "_given", set())
    monkeypatch.setattr(net.socket, "socket", _Kernel([40001, 40001, 40001, 40002, 40001, 40003]))
    assert [net.free_port(), net.free_port(), net.free_port()] == [40001, 40002, 40003]


def test_free_port_says_so_when_the_kernel_only_repeats_itself(monkeypatch):
    monkeypatch.setattr(net, "_given", {40001})
    monkeypatch.setattr(net.socket, "socket", _Kernel([40001] * 1000))
    with pytest.raises(RuntimeError, match="no TCP port"):
        net.free_port()
