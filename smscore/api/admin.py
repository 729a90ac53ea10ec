"""The operators' endpoints (SPEC §11): approve or refuse held messages, pause, resume and top up
accounts, edit the stop list, show binds, reload, and inject MO from a simulated operator.

The router checks the admin key once before calling any of these (so an unknown admin path is
401/403 before it is 404), except ``inject_mo``, which is routed first and checks it itself.
Each handler takes the gateway and the request and returns ``(status, body)`` or a Deferred of one.
"""

from __future__ import annotations

import re

from decimal import Decimal

from connectors.smsc_sim import InvalidMO
from smscore.api.auth import require_admin
from smscore.api.inputs import read_json
from smscore.api.render import render_message, store_errors
from smscore.errors import ApiError


#: The largest top-up (or correction) in one call. A balance notice goes for each multiple of 1000
#: crossed (SPEC §4), in the same transaction: without a bound, one call with 1e185 kept the store's
#: writer computing notices forever.
MAX_TOPUP = Decimal(1_000_000)


def act_on_message(gw, request, message_id: str, action: str):
    """``POST /v1/admin/messages/{id}/approve|refuse``."""
    d = gw.store.act(message_id, action, gw.clock.seconds(), f"{action}d by ops")

    def acted(m):
        gw.metrics.acted_on([m])
        return 200, render_message(m)

    d.addCallbacks(acted, store_errors)
    return d


def _known_account(gw, name: str) -> None:
    if name not in gw.config.accounts:
        raise ApiError(404, "not_found", f"There is no account {name!r}.")


_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def topup(gw, request, name: str):
    """``POST /v1/admin/accounts/{name}/topup`` with ``{"amount": number}`` (or a decimal string,
    ``"0.10"``, which no binary float rounds): the new balance."""
    _known_account(gw, name)
    now = gw.clock.seconds()
    body = read_json(request)
    amount = body.get("amount") if isinstance(body, dict) else None
    if (isinstance(amount, bool) or not isinstance(amount, (int, float, str))
            or (isinstance(amount, str) and not _DECIMAL.fullmatch(amount))):
        # a string is a plain decimal ("12.50", "-3", "+100"), as the OpenAPI document says: not "1_000",
        # " 5 " or "1e3", which Python's Decimal would also read
        raise ApiError(400, "invalid_request", "Field 'amount' must be a number or a decimal string.", "amount")
    try:
        value = Decimal(str(amount))
    except ArithmeticError:
        raise ApiError(400, "invalid_request", "Field 'amount' must be a number or a decimal string.",
                       "amount") from None
    # compared, not abs(): abs() rounds to the context and raises Overflow on "1e999999999"
    if not value.is_finite() or not -MAX_TOPUP <= value <= MAX_TOPUP:
        raise ApiError(400, "invalid_request", f"Field 'amount' must be a number from -{MAX_TOPUP} to {MAX_TOPUP}.",
                       "amount")
    d = gw.store.topup(name, value, now)
    d.addCallback(lambda balance: (200, {"balance": balance}))
    return d


def set_paused(gw, request, name: str, paused: bool):
    """``POST /v1/admin/accounts/{name}/pause|resume``: the pipeline forgets what was paused and
    claims what was resumed."""
    _known_account(gw, name)
    d = gw.store.set_paused(name, paused, gw.clock.seconds())

    def changed(ms):
        gw.metrics.acted_on(ms)
        if paused:
            gw.pipeline.forget([m.id for m in ms])
        else:
            gw.pipeline.work_stored()  # claim what was resumed
        return 200, {"account": name, "paused": paused, "messages": len(ms)}

    d.addCallback(changed)
    return d


def stoplist(gw, request):
    """``{"numbers": [...], "account"?: name (else the do-not-call list), "remove"?: bool,
    "consent"?: bool (the account's consents instead)}``."""
    from policies.numbers import InvalidNumber, normalize_msisdn

    body = read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("numbers"), list) or not body["numbers"]:
        raise ApiError(400, "invalid_request", "Field 'numbers' must be a non-empty list.", "numbers")
    account = body.get("account")
    if account is not None and not isinstance(account, str):
        raise ApiError(400, "invalid_request", "Field 'account' must be an account name.", "account")
    if account is not None and account not in gw.config.accounts:
        raise ApiError(404, "not_found", f"There is no account {account!r}.")
    for flag in ("remove", "consent"):  # a wrong type is a 400 (SPEC §4), never read as false
        if body.get(flag) is not None and not isinstance(body[flag], bool):
            raise ApiError(400, "invalid_request", f"Field {flag!r} must be true or false.", flag)
    consent = body.get("consent") is True
    if consent and account is None:
        raise ApiError(400, "invalid_request", "A consent belongs to an account.", "account")
    numbers = []
    for i, value in enumerate(body["numbers"]):
        if not isinstance(value, str):
            raise ApiError(400, "invalid_request", f"numbers[{i}] must be a string of digits.", "numbers")
        try:
            numbers.append(normalize_msisdn(value))
        except InvalidNumber as exc:
            raise ApiError(422, "invalid_number", f"numbers[{i}]: {exc}", "numbers") from None
    d = gw.store.stoplist_change(numbers, account=account, remove=body.get("remove") is True,
                                 consent=consent, at=gw.clock.seconds())
    d.addCallback(lambda n: (200, {"changed": n, "numbers": len(numbers)}))
    return d


def binds(gw, request):
    """``GET /v1/admin/binds``: each operator link as it describes itself, with the messages this
    node holds for it that no session has taken yet (``queued_messages``: a throttled or paced
    operator's backlog waits there, not in the link's ``queued_parts``)."""
    queues = gw.pipeline.queues
    return 200, {"operators": [{**link.describe(), "queued_messages": len(queues.get(link.name, ()))}
                               for link in gw.links.values()]}


def reload(gw, request):
    """``POST /v1/admin/reload``: what the node's reload changed."""
    return gw.reload_node().addCallback(lambda result: (200, result))


def inject_mo(gw, request, operator: str):
    """Ops/demo: make a simulated operator deliver an MO to the gateway, as a phone would."""
    require_admin(gw.config, request)
    body = read_json(request)
    sim = gw.sims.get(operator)
    if sim is None:
        raise ApiError(404, "not_found", f"There is no simulated operator {operator!r}.")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    for field in ("from", "to", "text"):
        if not isinstance(body.get(field), str):
            raise ApiError(400, "invalid_request", f"Field {field!r} is required and must be a string.", field)
        if not body[field]:
            raise ApiError(400, "invalid_request", f"Field {field!r} must not be empty.", field)
    try:
        d = sim.inject_mo(body["from"], body["to"], body["text"])
    except InvalidMO as exc:
        raise ApiError(400, "invalid_request", str(exc), exc.field) from None
    d.addCallback(lambda outcome: (202, {"operator": operator, "outcome": outcome}))
    return d
