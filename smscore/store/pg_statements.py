"""PostgreSQL statements prepared once per connection, and arrays sent as one parameter.

psycopg2 sends every statement as text with its parameters written in, so the server parses,
analyses and plans each one again: under load that was a third of PostgreSQL's CPU (``perf`` on
the backends, 2026-12-06: raw parsing 8 %, analysis 11 %, planning 14 %). A statement the
connection has run before is sent instead as ``EXECUTE name(params)``: the server parses and
analyses it once (``PREPARE``) and from then on binds the values and plans for them (each run
still gets a plan of its own: ``pg_schema.connect`` says why).

Statements whose text depends on the number of rows would each be prepared again for every
count. The set-based ones take their rows as arrays instead, one parameter a column, in
PostgreSQL's array text form (``array_text``, parsed by the server's ``array_in``, far cheaper
than a ``VALUES`` list of literals), so that one text serves every batch size:
``INSERT … SELECT … FROM unnest($1::text[], …)`` and ``UPDATE … FROM unnest(…)``.

A prepared statement lives as long as its connection, whatever becomes of the transaction it was
prepared in; a new connection starts with none (``Prepared`` belongs to one connection). A
statement PostgreSQL cannot prepare (a parameter whose type nothing in the statement tells) is
run as plain text from then on: its first run fails and the writer runs it again.

**Planned once.** Planning each run was a fifth of the server's CPU in a load run (777 of 3,770
ms, ``pg_stat_statements.track_planning``). A plan made once is made on the tables' sizes of its
moment, and a plan made while ``messages`` was empty walked the whole table once it was large. So
the store's writer connections plan once only the statements for which no plan other than the
right one is left, whatever the tables hold: ``Prepared(once=…)`` prepares the texts ``once``
accepts, on a connection set with ``PLANNED_ONCE`` (each plan made once, generic, and neither
sequential scans nor hash or merge joins, so that a table is only read through the index its key
names, row by row of the batch); every other text goes as plain text and is planned at every
run for the tables as they are (``postgres._one_plan`` says which are which, and
``test_statements_planned_once_read_tables_through_their_keys`` checks the plans made on empty
tables). A connection without ``once`` prepares every text and plans each run (``pg_schema.connect``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

#: At most this many statements are prepared on one connection; beyond it, plain text.
LIMIT = 400

#: What a connection whose prepared statements are planned once is set with (see the module doc).
PLANNED_ONCE = ("SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off; "
                "SET enable_hashjoin = off; SET enable_mergejoin = off")

_PLACEHOLDER = re.compile(r"%%|%s")


def numbered(sql: str) -> tuple[str, int]:
    """psycopg2's ``%s`` placeholders as ``$1``, ``$2``… (``%%`` back to ``%``), and how many."""
    count = 0

    def number(match: re.Match) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%"
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(number, sql), count


class Prepared:
    """The statements one connection has prepared (text → name), and how to run one.

    A text is prepared the second time it is run: one run alone (a look-up typed once at the
    CLI) costs no server memory for the rest of the connection's life. With ``once`` (the
    connection set with ``PLANNED_ONCE``), only the texts ``once`` accepts are prepared; the
    others run as plain text, planned at every run."""

    def __init__(self, limit: int = LIMIT, once: Callable[[str], bool] | None = None) -> None:
        self._limit = limit
        self._once = once
        self._names: dict[str, tuple[str, str]] = {}  # text → (name, "EXECUTE name(%s, …)")
        self._plain: bool | None = None  # whether ``written`` may write the values (the connection's settings)
        self._seen: set[str] = set()
        #: texts PostgreSQL refused to prepare, run as plain text (tests look at it)
        self.refused: set[str] = set()
        #: texts ``once`` did not accept: planned at every run, as plain text (tests look at it)
        self.per_run: set[str] = set()

    def execute(self, cur, sql: str, params) -> None:
        return cur.execute(self._chosen(cur, sql), params)

    def text(self, cur, sql: str, params) -> bytes:
        """What ``execute`` would send, as text with the values written in, for a statement sent
        later with others (``pg_session.Cursor.defer``): by ``written`` where it can, else by
        psycopg2's ``mogrify``."""
        chosen = self._chosen(cur, sql)
        if self._plain is None:  # read once: a connection's encoding and quoting do not change
            conn = cur.connection
            self._plain = conn.encoding == "UTF8" and conn.get_parameter_status("standard_conforming_strings") == "on"
        return (self._plain and written(chosen, params)) or cur.mogrify(chosen, params)

    def _chosen(self, cur, sql: str) -> str:
        """The text to send for ``sql``: ``EXECUTE name(…)`` once prepared (at its second run, the
        PREPARE sent now), else ``sql`` itself."""
        known = self._names.get(sql)
        if known is None and sql in self._seen and self._may_prepare(sql):
            self._prepare(cur, sql)
            known = self._names[sql]
        if known is not None:
            return known[1]
        if len(self._seen) < 4 * self._limit:  # texts seen once: bounded too (an admin's look-ups)
            self._seen.add(sql)
        return sql

    def _may_prepare(self, sql: str) -> bool:
        """Whether ``sql``, run before and not prepared yet, is prepared now."""
        if len(self._names) >= self._limit or sql in self.refused or sql in self.per_run:
            return False
        if self._once is None or self._once(sql):
            return True
        if len(self.per_run) < 4 * self._limit:  # bounded as the texts seen are
            self.per_run.add(sql)
        return False

    def _prepare(self, cur, sql: str) -> None:
        from psycopg2 import DataError, ProgrammingError

        text, count = numbered(sql)
        name = f"s{len(self._names) + 1}"
        try:
            cur.execute(f"PREPARE {name} AS {text}")
        except (ProgrammingError, DataError):
            # The text itself: a parameter whose type nothing tells. Not a failed batch, a lock
            # wait that timed out or a lost connection: those prepare it again at its next run.
            self.refused.add(sql)
            raise
        self._names[sql] = (name, f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}")


def written(sql: str, params) -> bytes | None:
    """``sql`` with ``params`` written in as psycopg2's ``mogrify`` writes them on a UTF-8
    connection with standard conforming strings, for the values the store's writes take: strings
    (quotes doubled, a backslash is itself), None, and non-negative integers and finite floats.
    None when a value is anything else (a negative number or -0.0, a flag, a string holding a NUL,
    which PostgreSQL refuses): ``mogrify`` writes those. Why: a write's arrays are one string a
    column (``array_text``), and ``mogrify`` took 18 µs for a statement of twelve 20-row columns,
    this 4.5 µs."""
    values = []
    for value in params:
        kind = type(value)
        if kind is str:
            if "\x00" in value:
                return None
            values.append("'" + value.replace("'", "''") + "'")
        elif value is None:
            values.append("NULL")
        elif (kind is int and value >= 0) or (kind is float and 0 <= value < _INF and _copysign(1, value) > 0):
            values.append(repr(value))  # never "-…": mogrify writes " -1", which no "-" before it comments out
        else:
            return None
    return (sql % tuple(values)).encode()


_INF = float("inf")
_copysign = math.copysign
_NUMBERS = {int, float}  # not bool: its repr is not PostgreSQL's
_NONE = {type(None)}


def _element(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same double ("inf", "nan" too)
    return str(value)  # int, Decimal


def array_text(values: Iterable) -> str:
    """``values`` in PostgreSQL's array text form (``{"a","b",NULL,1.5}``), to be sent as one
    string parameter and cast to the column's array type: every string quoted, so that a comma,
    brace, quote, backslash, space or the word NULL inside one stays text.

    A column of strings alone, the common case, is escaped and joined in a few calls over the
    whole column rather than one per value (a batch's columns are hundreds of values)."""
    values = list(values)
    if not values:
        return "{}"
    try:
        joined = "\x00".join(values)
    except TypeError:  # not strings alone
        kinds = set(map(type, values))
        if kinds <= _NUMBERS:
            return "{" + ",".join(map(repr, values)) + "}"
        if kinds == _NONE:
            return "{" + ",".join(["NULL"] * len(values)) + "}"
        return "{" + ",".join([_element(v) for v in values]) + "}"  # one value at a time
    if joined.count("\x00") != len(values) - 1:  # a NUL of its own: PostgreSQL will refuse it
        return "{" + ",".join([_element(v) for v in values]) + "}"
    return '{"' + joined.replace("\\", "\\\\").replace('"', '\\"').replace("\x00", '","') + '"}'
