"""Every check of the store contract, from all its modules, in one list: the SQLite, memory and
PostgreSQL test modules run this list, so a new contract module is added here once."""

from __future__ import annotations

from tests import (store_contract, store_contract_accounts, store_contract_leases, store_contract_push,
                   store_contract_receipts, store_sql)

CHECKS = (store_contract.CHECKS + store_contract_accounts.CHECKS + store_contract_leases.CHECKS
          + store_contract_push.CHECKS + store_contract_receipts.CHECKS + store_sql.CHECKS)
