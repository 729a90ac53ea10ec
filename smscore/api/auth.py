"""Who may call the API: bearer keys for customers and admins, and each account's request rate.

Kept apart from the handlers so every endpoint asks the same two questions the same way: a
customer endpoint starts with ``customer_account``, an admin one with ``require_admin`` (401 for
no or an unknown key, 403 for a customer's key: SPEC §11).
"""

from __future__ import annotations

from smscore.errors import ApiError


def _bearer(request) -> tuple[str, str]:
    header = request.getHeader(b"authorization") or b""
    scheme, _, key = header.decode("latin-1").partition(" ")
    return scheme.lower(), key.strip()


def customer_account(config, request):
    """The account whose key the request bears, else 401."""
    scheme, key = _bearer(request)
    account = config.account_for_key(key) if scheme == "bearer" and key else None
    if account is None:
        raise ApiError(401, "unauthorized", "A valid API key is needed: Authorization: Bearer <key>.",
                       headers={"WWW-Authenticate": 'Bearer realm="smsgw"'})
    return account


def require_admin(config, request) -> None:
    """No key or an unknown key → 401; a customer's key → 403 (SPEC §11)."""
    scheme, key = _bearer(request)
    if scheme == "bearer" and key and config.is_admin_key(key):
        return
    if scheme == "bearer" and key and config.account_for_key(key) is not None:
        raise ApiError(403, "forbidden", "This endpoint needs an admin key.")
    raise ApiError(401, "unauthorized", "A valid admin key is needed: Authorization: Bearer <key>.",
                   headers={"WWW-Authenticate": 'Bearer realm="smsgw-admin"'})


class AccountRateLimit:
    """``tps`` API submissions per second per account, for the whole cluster: this node's share,
    in buckets every process of the node shares (``smscore.ratelimit``)."""

    def __init__(self, clock, buckets) -> None:
        self.clock = clock
        self.buckets = buckets

    def take(self, account) -> None:
        """Spend one of ``account``'s requests now, else 429 with ``Retry-After``."""
        if not account.tps:
            return
        spent = self.buckets.take(account.name, self.clock.seconds(), account.tps * self.buckets.share())
        if not spent.allowed:
            raise ApiError(429, "rate_limited", f"At most {account.tps} requests per second for this account.",
                           headers={"Retry-After": str(spent.retry_after)})
