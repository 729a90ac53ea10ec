"""What every TCP connection of the gateway sets on its socket: TCP_NODELAY.

SMPP and HTTP are request and answer here, a small PDU or message each way, and the reactor
already writes a connection once a poll (connectors/reactor.py). With Nagle's algorithm on (the
kernel's default, and Twisted's) a small write also waits while an earlier one is not yet
acknowledged, and the peer acknowledges late (delayed ACK): on an idle link a submit_sm waited
~20 ms for its answer. Measured (docs/benchmarks.md, thirteenth session): ``scripts/bench
--scenarios single-cb --phases single -n 2000 --concurrency 4``, end to end p50 43.6 → 9.3 ms, p99
80.3 → 16.4 ms; at saturation in the peers harness p50 ~80 → ~34 ms, for ~6 % less rate and ~5 %
more CPU a message against its simulator (smaller segments, each sent at once; no cost against
ours). The SMPP connections carry both effects; the HTTP ones (keep-alive, one exchange at a time)
showed neither, and set it so that no answer can wait on an ACK.
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
