"""The durable status store: one interface, in-memory, SQLite and PostgreSQL implementations.

``open_store(config, reactor, transitions)`` picks the implementation from ``[store] url``.
"""

from smscore.store.base import Store, StoreError

__all__ = ["Store", "StoreError"]
