"""Waiting on a condition in tests that run on the real reactor: poll it, bounded, and say what
was awaited when it does not come (never a fixed sleep)."""

from __future__ import annotations

import pytest
from twisted.internet import reactor
from twisted.internet.task import deferLater

POLL = 0.02


async def eventually(check, what: str, timeout: float = 10.0, state=None) -> None:
    """Poll ``check()`` (maybe async) every POLL seconds until it is true; fail after ``timeout``
    saying what was awaited and, with ``state()``, what was seen last."""
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
