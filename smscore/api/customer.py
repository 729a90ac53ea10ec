"""The customers' endpoints (SPEC §4): send, list, read, cancel and export messages; inbound MO; the account.

Each handler takes the gateway and the request (and what its path named), checks the bearer key
first, and returns ``(status, body)``, a Deferred of one, or a ``CsvAnswer``; refusals are raised as
``ApiError``. ``post_messages`` is the gateway's busiest call: it stays one function deep.
"""

from __future__ import annotations

import hashlib
import json

from twisted.internet.defer import maybeDeferred

from policies.admission import parts_allowed
from smscore.api.auth import customer_account
from smscore.api.inputs import page, query, read_json, time_param
from smscore.api.render import CsvAnswer, render_for_customer, store_errors
from smscore.errors import ApiError
from smscore.submission import build_messages


def post_messages(gw, rate_limit, request):
    """``POST /v1/messages``: 202 once the store has committed the messages."""
    account = customer_account(gw.config, request)
    rate_limit.take(account)
    body = read_json(request)
    messages = build_messages(body, account, gw.config, gw.clock.seconds())

    def render(ms):
        return {"messages": [{"id": m.id, "to": m.to, "status": m.status.value, "parts": m.parts} for m in ms]}

    key = request.getHeader(b"idempotency-key")
    once = None
    if key is not None:
        key = key.decode("utf-8", "replace").strip()
        if not key or len(key) > 255:
            raise ApiError(400, "invalid_request", "Idempotency-Key must be 1 to 255 characters.",
                           "Idempotency-Key")
        # what the request means: key order, spacing and a field given as null (as if left out) aside
        meant = {name: value for name, value in body.items() if value is not None}
        digest = hashlib.sha256(json.dumps(meant, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        once = {"account": account.name, "key": key, "body_hash": digest, "render": render}
    d = maybeDeferred(gw.pipeline.accept, messages, once)
    d.addCallbacks(lambda got: (202, got if isinstance(got, dict) else render(got)), store_errors)
    return d


def cancel(gw, request, message_id: str):
    """``DELETE /v1/messages/{id}``."""
    return _cancel(gw, customer_account(gw.config, request).name, message_id)


def cancel_for_worker(gw, request):
    """``POST /internal/v1/cancel {"id", "account"}`` on the main worker's loopback listener: a
    cancel an API worker's ESME asked for (``cancel_sm``), done here where the messages are sent
    (``Pipeline.cancel``); answered as ``DELETE``."""
    body = read_json(request)
    if not (isinstance(body, dict) and isinstance(body.get("id"), str) and isinstance(body.get("account"), str)):
        raise ApiError(400, "invalid_request", "The body must be {\"id\": ..., \"account\": ...}.")
    return _cancel(gw, body["account"], body["id"])


def _cancel(gw, account: str, message_id: str):
    d = gw.pipeline.cancel(message_id, account)
    d.addCallbacks(lambda m: (200, render_for_customer(m, gw.config.accounts.get(account))), store_errors)
    return d


def account_info(gw, request):
    """``GET /v1/account``."""
    account = customer_account(gw.config, request)
    d = gw.store.account_state(account.name)
    d.addCallback(lambda state: (200, {
        "account": account.name, "balance": state[0], "billing": account.billing, "paused": state[1],
        "senders": list(account.senders), "default_sender": account.default_sender,
        "profile": account.profile, "max_parts": parts_allowed(gw.config.gateway.max_parts_cap, account.max_parts),
        "tps": account.tps or None, "daily_volume_limit": account.daily_volume_limit,
        "approved_domains": list(account.approved_domains), "callback_url": account.callback_url}))
    return d


def export(gw, request):
    """``GET /v1/messages/export?from=&to=``: the account's messages created in [from, to) as CSV."""
    account = customer_account(gw.config, request)
    params = query(request)
    for name in params:
        if name not in ("from", "to"):
            raise ApiError(400, "invalid_request", f"Unknown parameter {name!r}.", name)
    now = gw.clock.seconds()
    start = time_param(params, "from", now - 86400.0)
    end = time_param(params, "to", now + 1.0)
    d = gw.store.export(account.name, start, end)
    d.addCallback(lambda ms: CsvAnswer(ms, account))
    return d


def get_message(gw, request, message_id: str):
    """``GET /v1/messages/{id}``: another account's message is as absent as a missing one."""
    account = customer_account(gw.config, request)
    d = gw.store.get(message_id)

    def found(m):
        if m is None or m.account != account.name:
            raise ApiError(404, "not_found", "No such message.")
        return 200, render_for_customer(m, account)

    d.addCallback(found)
    return d


def list_messages(gw, request):
    """Status changes of this account's messages, in the order they changed (each message
    once, at its last change), from ``cursor`` on."""
    from policies.numbers import InvalidNumber, normalize_msisdn
    from smscore.model import Status
    from smscore.submission import parse_rfc3339

    account = customer_account(gw.config, request)
    params = query(request)
    after, limit = page(params, {"cursor", "limit", "status", "to", "updated_since"})
    status = params.get("status")
    if status is not None and status not in {s.value for s in Status}:
        raise ApiError(400, "invalid_request", f"Unknown status {status!r}.", "status")
    to = params.get("to")
    if to is not None:
        try:
            to = normalize_msisdn(to)
        except InvalidNumber as exc:
            raise ApiError(422, "invalid_number", str(exc), "to") from None
    since = params.get("updated_since")
    if since is not None:
        try:
            since = parse_rfc3339(since)
        except ValueError:
            raise ApiError(400, "invalid_request", "updated_since must be an RFC 3339 date-time.",
                           "updated_since") from None
    d = gw.store.updates(account.name, after, limit, status=status, to=to, updated_since=since)
    d.addCallback(lambda rows: (200, {
        "messages": [render_for_customer(m, account, events=False) for _, m in rows],
        "next_cursor": str(rows[-1][0] if rows else after)}))
    return d


def inbound(gw, request):
    """MO for this account's keywords, oldest first, from ``cursor`` on."""
    from smscore.mo import mo_push_body

    account = customer_account(gw.config, request)
    after, limit = page(query(request), {"cursor", "limit"})
    d = gw.store.inbox(account.name, after, limit)
    d.addCallback(lambda mos: (200, {"messages": [mo_push_body(m) for m in mos],
                                     "next_cursor": str(mos[-1].seq if mos else after)}))
    return d
