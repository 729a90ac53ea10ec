"""Throwaway databases on a PostgreSQL server (``scripts/test``'s, ``scripts/pg``'s, or yours),
for the tests' ``pg_url`` fixture and the scripts' PostgreSQL runs alike."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead (host, port, user, options kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _admin(server_url: str, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server_url, connect_timeout=10)
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


def create_database(server_url: str, name: str | None = None, prefix: str = "smsgw_t") -> str:
    """A new, empty database on the server of ``server_url`` (``name``, else ``prefix`` and a
    random suffix); returns its URL."""
    name = name or f"{prefix}_{uuid.uuid4().hex[:12]}"
    _admin(server_url, f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


def drop_database(server_url: str, database: str) -> None:
    """Drop ``database`` (its name, or a URL naming it) on the server of ``server_url``, its
    sessions ended first; no error when it is gone already."""
    name = urlsplit(database).path.lstrip("/") if "://" in database else database
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_query(url: str, sql: str, params=()) -> list[tuple]:
    """The rows of one query on the database of ``url``."""
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        cur = conn.cursor()
        cur.execute(sql, params or None)  # no parameters: a % in the SQL is a %
        return cur.fetchall()
    finally:
        conn.close()
