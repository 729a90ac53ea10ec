"""Fixtures the integration tests share."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from tests.backend import PushBackend


@pytest.fixture
def backend(request):
    """A customer backend on 127.0.0.1 (``tests.backend.PushBackend``), checking signatures with the
    test module's ``SECRET`` when it has one; stopped after the test."""
    b = PushBackend.listening(reactor, secret=getattr(request.module, "SECRET", None))
    yield b
    pytest_twisted.blockon(b.stop())
