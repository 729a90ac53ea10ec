"""Waiting on a condition, bounded, saying what was awaited when it does not come (never a fixed
sleep): ``wait_until`` polls from a plain thread (processes, sockets, files), ``eventually`` from a
coroutine on the running reactor (tests of objects in this process)."""

from __future__ import annotations

import time

#: seconds between two looks of ``eventually``
POLL = 0.02


def wait_until(predicate, timeout: float = 30.0, step: float = 0.1, what: str = "condition"):
    """Poll ``predicate()`` every ``step`` seconds until it is true and return its value; raise
    ``TimeoutError`` naming ``what`` after ``timeout``. An exception from ``predicate`` (a process
    that exited meanwhile, say) goes to the caller at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


async def eventually(check, what: str, timeout: float = 10.0, state=None) -> None:
    """Poll ``check()`` (maybe async) every POLL seconds on the reactor until it is true; fail the
    test after ``timeout`` saying what was awaited and, with ``state()``, what was seen last."""
    import pytest
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    deadline = reactor.seconds() + timeout
    while True:
        ok = check()
        if hasattr(ok, "__await__"):
            ok = await ok
        if ok:
            return
        if reactor.seconds() > deadline:
            seen = ""
            if state is not None:
                last = state()
                if hasattr(last, "__await__"):
                    last = await last
                seen = f"; last seen: {last}"
            pytest.fail(f"waited {timeout} s for {what}{seen}")
        await deferLater(reactor, POLL, lambda: None)
