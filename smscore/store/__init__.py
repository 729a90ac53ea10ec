"""The durable status store: one interface, in-memory, SQLite and PostgreSQL implementations.

``smscore.parts.open_store(config, reactor)`` picks the implementation from ``[store] url``:
``sqlite:///…`` → ``sqlite.SQLiteStore`` (one node), ``postgresql://…`` → ``postgres.PostgresStore``
(several nodes on one database, see docs/postgresql.md). Both are ``sql.SqlStore`` with the
account rules (``accounts.AccountRules``); their schemas are versioned in ``sqlite.MIGRATIONS``
and ``pg_schema.MIGRATIONS``, version for version.
"""

from smscore.store.base import Store, StoreError

__all__ = ["Store", "StoreError"]
