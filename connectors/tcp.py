"""What every TCP connection of the gateway sets on its socket: TCP_NODELAY.

SMPP and HTTP are request and answer here, a small PDU or message each way. With Nagle's
algorithm on (the kernel's default, and Twisted's) a small write waits while an earlier one is
not yet acknowledged, and the peer acknowledges late (delayed ACK, tens of milliseconds on
Linux): a submit_sm waited for its answer, a 202 or a status callback for its way out, each time
the link was not busy. Measured with ``scripts/bench --scenarios single-cb --phases single -n 2000
--concurrency 4`` (docs/benchmarks.md, thirteenth session): end to end p50 43.6 → 9.3 ms and p99
80.3 → 16.4 ms; a submit_sm's answer 19.6 → 0.9 ms (p50). Under load it changes nothing: the
reactor writes each connection once a poll anyway (connectors/reactor.py).
"""

from __future__ import annotations

from contextlib import suppress


def no_delay(transport) -> None:
    """Send small writes at once on ``transport`` (over TLS, on the TCP connection beneath it,
    which Twisted's TLS wrapper passes the call to). A transport that is not TCP (a UNIX socket,
    a test's in-memory one) is left as it is, as is a socket already closed."""
    set_no_delay = getattr(transport, "setTcpNoDelay", None)
    if set_no_delay is None:
        return
    with suppress(OSError):
        set_no_delay(True)
