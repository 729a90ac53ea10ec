"""How the PostgreSQL store writes a statement to prepare and an array to send as one parameter
(no server here: tests/integration/test_pg_statements.py reads them back from a real one)."""

from __future__ import annotations

import psycopg2
import psycopg2.errors
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smscore.store.pg_statements import Prepared, _element, array_text, numbered


def test_placeholders_are_numbered_and_a_doubled_percent_is_one_again():
    assert numbered("SELECT a FROM t WHERE b = %s AND c LIKE 'x%%' AND d IN (%s, %s)") == (
        "SELECT a FROM t WHERE b = $1 AND c LIKE 'x%' AND d IN ($2, $3)", 3)
    assert numbered("SELECT 1") == ("SELECT 1", 0)


def test_every_string_is_quoted_and_escaped_and_none_is_null():
    assert array_text(["a", 'say "hi"', "back\\slash", "a,b", "{x}", "NULL", " ", "", None]) == (
        '{"a","say \\"hi\\"","back\\\\slash","a,b","{x}","NULL"," ","",NULL}')


def test_numbers_and_flags_are_written_as_postgresql_reads_them():
    assert array_text([1, -2, 1796544335.0158484, float("inf"), True, False]) == (
        "{1,-2,1796544335.0158484,inf,t,f}")
    assert array_text([]) == "{}"


class _Cursor:
    """Records what was sent; refuses a PREPARE of the texts in ``refuse``, and fails one of those
    in ``fail_once`` once (with ``error``)."""

    def __init__(self, refuse=(), fail_once=(), error=None):
        self.sent = []
        self.refuse = refuse
        self.fail_once = set(fail_once)
        self.error = error

    def execute(self, sql, params=None):
        if sql.startswith("PREPARE") and any(r in sql for r in self.refuse):
            raise psycopg2.ProgrammingError("could not determine data type of parameter $1")
        failing = [f for f in self.fail_once if sql.startswith("PREPARE") and f in sql]
        if failing:
            self.fail_once -= set(failing)
            raise self.error
        self.sent.append((sql, params))


def test_a_statement_is_prepared_the_second_time_and_executed_by_name_after():
    cur, prepared = _Cursor(), Prepared()
    sql = "SELECT a FROM t WHERE b = %s"
    for value in (1, 2, 3):
        prepared.execute(cur, sql, (value,))
    assert cur.sent == [(sql, (1,)), ("PREPARE s1 AS SELECT a FROM t WHERE b = $1", None),
                        ("EXECUTE s1(%s)", (2,)), ("EXECUTE s1(%s)", (3,))]


def test_a_statement_that_cannot_be_prepared_fails_once_then_runs_as_text():
    cur, prepared = _Cursor(refuse=["untyped"]), Prepared()
    sql = "SELECT %s AS untyped"
    prepared.execute(cur, sql, (1,))
    with pytest.raises(psycopg2.ProgrammingError):  # the batch fails and runs again (smscore.store.writer)
        prepared.execute(cur, sql, (2,))
    prepared.execute(cur, sql, (3,))
    assert cur.sent == [(sql, (1,)), (sql, (3,))] and prepared.refused == {sql}


@pytest.mark.parametrize("error", [psycopg2.OperationalError("canceling statement due to lock timeout"),
                                   psycopg2.errors.InFailedSqlTransaction("current transaction is aborted")])
def test_a_prepare_that_failed_for_its_batch_is_tried_again_at_the_next_run(error):
    cur, prepared = _Cursor(fail_once=["busy"], error=error), Prepared()
    sql = "SELECT %s AS busy"
    prepared.execute(cur, sql, (1,))
    with pytest.raises(type(error)):
        prepared.execute(cur, sql, (2,))
    prepared.execute(cur, sql, (3,))
    assert cur.sent == [(sql, (1,)), ("PREPARE s1 AS SELECT $1 AS busy", None), ("EXECUTE s1(%s)", (3,))]
    assert not prepared.refused


def test_with_once_only_the_texts_it_accepts_are_prepared_the_others_run_as_text_every_time():
    cur, prepared = _Cursor(), Prepared(once=lambda sql: "by_key" in sql)
    by_key, ranged = "SELECT a FROM t WHERE by_key = %s", "SELECT a FROM t WHERE b > %s LIMIT 5"
    for value in (1, 2, 3):
        prepared.execute(cur, by_key, (value,))
        prepared.execute(cur, ranged, (value,))
    assert cur.sent == [(by_key, (1,)), (ranged, (1,)),
                        ("PREPARE s1 AS SELECT a FROM t WHERE by_key = $1", None), ("EXECUTE s1(%s)", (2,)),
                        (ranged, (2,)), ("EXECUTE s1(%s)", (3,)), (ranged, (3,))]
    assert prepared.per_run == {ranged} and not prepared.refused


def test_no_more_than_the_limit_is_prepared_on_one_connection():
    cur, prepared = _Cursor(), Prepared(limit=1)
    for sql in ("SELECT %s", "SELECT %s + 1"):
        prepared.execute(cur, sql, (1,))
        prepared.execute(cur, sql, (2,))
    assert [s for s, _ in cur.sent if s.startswith("PREPARE")] == ["PREPARE s1 AS SELECT $1"]
    assert cur.sent[-1] == ("SELECT %s + 1", (2,))


@given(st.lists(st.text()))
def test_a_column_of_strings_is_written_as_one_value_at_a_time_would_be(values):
    assert array_text(values) == "{" + ",".join(_element(v) for v in values) + "}"


def test_a_string_holding_a_nul_stays_one_value_for_postgresql_to_refuse():
    assert array_text(["a\x00b", "c"]) == '{"a\x00b","c"}'


@given(st.lists(st.integers() | st.floats() | st.none()) | st.lists(st.none()))
def test_a_column_of_numbers_or_nulls_is_written_as_one_value_at_a_time_would_be(values):
    assert array_text(values) == "{" + ",".join(_element(v) for v in values) + "}"


def test_the_texts_seen_once_are_bounded_too():
    cur, prepared = _Cursor(), Prepared(limit=1)
    for i in range(10):
        prepared.execute(cur, f"SELECT %s + {i}", (1,))
    prepared.execute(cur, "SELECT %s + 9", (2,))  # the 10th text was not remembered: plain again
    assert not any(sql.startswith("PREPARE") for sql, _ in cur.sent)
    prepared.execute(cur, "SELECT %s + 0", (2,))  # the first was: prepared on its second run
    assert cur.sent[-2][0] == "PREPARE s1 AS SELECT $1 + 0"
