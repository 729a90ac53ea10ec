"""A write whose COMMIT lost the connection to PostgreSQL may be stored or not: the customer is
told so, and to send it again with the same Idempotency-Key, never that nothing was accepted
(SPEC §4: a refused request is refused whole; §10: 2xx means stored)."""

from __future__ import annotations

import json

import psycopg2
import pytest
from psycopg2 import errors
from structlog.testing import capture_logs
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from smscore.api.render import fail
from smscore.logs import get_logger
from smscore.store.pg_session import Cursor, Session
from smscore.store.rules import CommitUnknown


class _Raising:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def execute(self, sql, params=None):
        raise self.exc


def _cursor(exc: Exception) -> Cursor:
    cur = Cursor(session=Session("postgresql:///unused"))  # never connected
    cur._cur = _Raising(exc)
    return cur


def test_a_connection_lost_at_commit_leaves_the_outcome_unknown():
    cur = _cursor(psycopg2.OperationalError("server closed the connection unexpectedly"))
    with pytest.raises(CommitUnknown, match="server closed the connection"):
        cur.execute("COMMIT")
    assert cur._session.doubtful  # the next BEGIN goes alone, to find the connection gone
    with pytest.raises(CommitUnknown):
        _cursor(psycopg2.InterfaceError("connection already closed")).execute("COMMIT")


def test_a_rollback_the_server_answered_at_commit_is_known_and_raised_as_it_is():
    with pytest.raises(errors.SerializationFailure):
        _cursor(errors.SerializationFailure("could not serialize access")).execute("COMMIT")


def test_the_customer_is_told_the_message_may_be_stored_and_how_to_be_answered_once():
    request = DummyRequest([b"v1", b"messages"])
    request.path, request._disconnected = b"/v1/messages", False
    with capture_logs():
        fail(Failure(CommitUnknown("server closed the connection unexpectedly")), request, get_logger())
    body = json.loads(b"".join(request.written))
    assert request.responseCode == 503 and body["error"]["code"] == "unavailable"
    assert "may have been stored" in body["error"]["message"] and "Idempotency-Key" in body["error"]["message"]
    assert "nothing was accepted" not in body["error"]["message"]
