"""The PostgreSQL store's connection and cursor, as its writers use them (``postgres``).

Why a module of its own: what a writer's cursor does to the statements it is given is the part of
the store that talks to the server, and it has rules of its own, apart from what the statements
are. A lost connection is opened again at the next BEGIN (and the BEGIN sent alone when the last
statement found it in doubt). Writes whose result nobody reads go with the statement after them,
the last ones with the COMMIT (``Cursor.defer``): one round trip where there were several. A
COMMIT that lost its connection has an unknown outcome (``CommitUnknown``); a write refused with the
COMMIT means nothing was committed (``RefusedBeforeCommit``). A session opened with ``once`` plans
once the statements it accepts (``pg_statements``, "Planned once")."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from smscore.store.pg_schema import connect
from smscore.store.pg_statements import PLANNED_ONCE, Prepared
from smscore.store.rules import CommitUnknown
from smscore.store.writer import RefusedBeforeCommit


class Session:
    """The writer's connection, opened by the first batch. When the server went away (restart,
    failover), the next batch connects again instead of failing forever. With ``once``, the
    statements it accepts are planned once, and only they are prepared (``pg_statements``)."""

    def __init__(self, url: str, once: Callable[[str], bool] | None = None) -> None:
        self.url = url
        self.once = once
        self.conn = None
        self.prepared = Prepared(once=once)  # the statements ``conn`` has prepared
        #: a statement found the connection lost (or may have): the next BEGIN is sent alone, to
        #: open a new one if so, instead of going with the batch's first statement
        self.doubtful = False

    def open(self) -> None:
        """A new connection, with nothing prepared on it yet."""
        self.conn = connect(self.url)
        if self.once is not None:
            self.conn.cursor().execute(PLANNED_ONCE)
        self.prepared = Prepared(once=self.once)

    def cursor(self) -> Cursor:
        return Cursor(self)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class Cursor:
    """The writer's cursor: statements prepared (``pg_statements``), a lost connection opened
    again at the next BEGIN, and writes nobody reads the result of sent with the statement after
    them (``defer``)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cur = None
        self._deferred: list[bytes] = []

    def defer(self, sql: str, params=None) -> None:
        """Send this statement, whose result nobody reads, with the next one, in one round trip:
        a batch's inserts and updates go with the read that follows them, the last ones with its
        COMMIT. An error of it is raised by that statement; order is kept."""
        self._deferred.append(sql.encode() if params is None else self._session.prepared.text(self._cur, sql, params))

    def flush(self) -> None:
        """Send the deferred writes now (their errors raised here)."""
        if self._deferred:
            text, self._deferred = b";".join(self._deferred), []
            self._send(self._cur.execute, text)

    def _send(self, run, *args):
        """``run(*args)``; a lost connection marks the session, so that the next BEGIN goes alone
        and opens a new connection when it finds this one gone."""
        import psycopg2

        try:
            return run(*args)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            self._session.doubtful = True
            raise

    def execute(self, sql, params=None):
        if sql == "COMMIT":
            return self._commit()
        if isinstance(sql, str) and sql.startswith("ROLLBACK"):
            self._deferred = []  # writes of what is rolled back: never sent
            return self._send(self._cur.execute, sql)
        if sql != "BEGIN":
            if self._deferred:  # one round trip for the writes waiting and this statement
                text = (self._session.prepared.text(self._cur, sql, params) if params is not None
                        else sql.encode() if isinstance(sql, str) else sql)
                self._deferred.append(text)
                return self.flush()
            if params is None:
                return self._send(self._cur.execute, sql)
            return self._send(self._session.prepared.execute, self._cur, sql, params)
        self._deferred = []
        session = self._session
        if session.conn is not None and not session.conn.closed and not session.doubtful:
            self._deferred = [b"BEGIN"]  # sent with the batch's first statement
            return None
        # Nothing of the batch has run yet: a missing or lost connection is (re)opened here.
        import psycopg2

        try:
            if session.conn is None or session.conn.closed:
                raise psycopg2.InterfaceError("not connected")
            self._cur.execute(sql)
            session.doubtful = False
            return None
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            if session.conn is not None:
                with contextlib.suppress(psycopg2.Error):  # a connection already broken may refuse to close
                    session.conn.close()
                session.conn = None
            session.open()
            self._cur = session.conn.cursor()
            self._cur.execute(sql)
            session.doubtful = False
            return None

    def _commit(self):
        """COMMIT, with the writes still deferred (one round trip); a connection lost meanwhile
        leaves the outcome unknown (``CommitUnknown``). A refusal the server answered (a
        serialization failure) is a known rollback, raised as is; a deferred write refused stopped
        the text before its COMMIT: nothing is committed (``RefusedBeforeCommit``)."""
        from psycopg2 import Error, InterfaceError, OperationalError, errors

        writes, self._deferred = self._deferred, []
        if writes == [b"BEGIN"]:
            return None  # nothing was sent: nothing to commit
        if writes and writes[0] == b"BEGIN":
            # Nothing of the batch has reached the server: its BEGIN goes first, alone, so that a
            # connection found gone (a server restart) means nothing was sent, and the batch runs
            # again on a new one, instead of a COMMIT whose outcome is unknown.
            try:
                self._send(self._cur.execute, "BEGIN")
            except (OperationalError, InterfaceError) as exc:
                raise RefusedBeforeCommit(str(exc).strip()) from exc
            writes = writes[1:]
        try:
            return self._cur.execute(b";".join([*writes, b"COMMIT"]) if writes else "COMMIT")
        except errors.TransactionRollbackError:
            raise
        except (OperationalError, InterfaceError) as exc:
            self._session.doubtful = True
            raise CommitUnknown(str(exc).strip()) from exc
        except Error as exc:
            if writes:
                raise RefusedBeforeCommit(str(exc).strip()) from exc
            raise

    def __getattr__(self, name):
        return getattr(self._cur, name)
