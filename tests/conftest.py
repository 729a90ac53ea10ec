"""Fixtures shared by every depth: a fresh PostgreSQL database for tests that need one.

``SMSGW_TEST_PG_URL`` names a server (scripts/test starts a throwaway one and sets it; or point it
at your own, see docs/postgresql.md). Without it the PostgreSQL tests are skipped, but only on a
developer's machine: under CI, or when scripts/test ran pytest, a missing URL is a failure, and
so is a URL whose server does not answer. When scripts/test finds no PostgreSQL and may not install
it, it sets ``SMSGW_TEST_PG_SKIP`` to the reason, with the command that installs it.
"""

from __future__ import annotations

import os

import pytest

from tests.harness.pg import create_database, drop_database

PG_ENV = "SMSGW_TEST_PG_URL"


def pg_required() -> bool:
    """True when the PostgreSQL tests must run (CI, or scripts/test)."""
    return (os.environ.get("CI", "").lower() in ("1", "true", "yes")
            or os.environ.get("SMSGW_TEST_PG_REQUIRED") == "1")


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        # scripts/test found no PostgreSQL and could not install it: it says why and how.
        why = (os.environ.get("SMSGW_TEST_PG_SKIP")
               or f"{PG_ENV} is not set (scripts/test sets it up; see docs/postgresql.md)")
        if pg_required():
            pytest.fail(f"{why}, and this run must test PostgreSQL (CI or scripts/test)")
        pytest.skip(why)
    return url


@pytest.fixture
def pg_url(pg_server_url):
    """The URL of a new, empty database on the test server; dropped after the test."""
    url = create_database(pg_server_url)
    yield url
    drop_database(pg_server_url, url)
