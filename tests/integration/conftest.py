"""Fixtures the integration tests share."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from tests import account_rig
from tests.backend import PushBackend


@pytest.fixture
def backend(request):
    """A customer backend on 127.0.0.1 (``tests.backend.PushBackend``), checking signatures with the
    test module's ``SECRET`` when it has one; stopped after the test."""
    b = PushBackend.listening(reactor, secret=getattr(request.module, "SECRET", None))
    yield b
    pytest_twisted.blockon(b.stop())


@pytest.fixture
def rig(tmp_path):
    """The account-rule tests' gateway (``tests.account_rig.Rig``), its push backend ``rig.backend``."""
    r = account_rig.open_rig(tmp_path)
    yield r
    account_rig.close_rig(r)
