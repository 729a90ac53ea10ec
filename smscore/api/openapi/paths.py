"""The operations of the OpenAPI document: every route of ``smscore.api.routes`` (``paths``).

Why a module of its own: each operation with its parameters, request body, examples, links and
every answer it can give, customer, admin, look-up and node routes alike, in one place to read
next to ``routes.py`` (``tests/integration/test_openapi_routes.py`` fails on a route missing here).
"""

from __future__ import annotations

from smscore.api.openapi._common import (
    _ACCOUNT_NAME,
    _DAY_OR_TIME,
    _ID,
    _ID_CURSOR,
    _LIMIT,
    _MESSAGE_ID,
    _MSISDN_PATTERN,
    _NAME_PATTERN,
    _RESPONSES,
    _RETRY_AFTER,
    _SEQ_CURSOR,
    _STATUS,
    ERROR_CODES,
    JSON,
    _answers,
    _array,
    _error,
    _header,
    _json,
    _name_filter,
    _obj,
    _path,
    _query,
    _ref,
    _shared,
    _string,
)

# -- operations -------------------------------------------------------------------------------------

_CUSTOMER = [{"customerKey": []}]
_ADMIN = [{"adminKey": []}]


def _op(op_id: str, summary: str, tag: str, responses: dict, *, security=None, parameters=None,
        body: dict | None = None, examples: dict | None = None, description: str | None = None) -> dict:
    out = {"operationId": op_id, "summary": summary, "tags": [tag]}
    if description:
        out["description"] = description
    out["security"] = security if security is not None else []
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        media = {"schema": body}
        if examples:
            media["examples"] = {name: {"value": value} for name, value in examples.items()}
        out["requestBody"] = {"required": True, "content": {JSON: media}}
    out["responses"] = responses
    return out


def _ok(schema_name: str, description: str, status: int = 200) -> dict:
    return {str(status): _json(_ref(schema_name), description)}


def _linked(ok: dict, **links: tuple[str, str, str]) -> dict:
    """``ok`` with OpenAPI links: name → (operationId, its parameter, where the value is in the body)."""
    [(status, response)] = ok.items()
    response["links"] = {name: {"operationId": op_id, "parameters": {param: "$response.body#" + pointer}}
                         for name, (op_id, param, pointer) in links.items()}
    return ok


def _accepted() -> dict:
    return _linked(_ok("Accepted", "Stored durably, one message per number; `status` is each one's first (queued, "
                                   "scheduled, pending_approval, paused, or stopped by the stop list).", 202),
                   getMessage=("getMessage", "id", "/messages/0/id"),
                   cancelMessage=("cancelMessage", "id", "/messages/0/id"))


_422_NUMBER = {422: _error(("invalid_number",), "A number that is not international digits (`field` names it).")}


def _paths() -> dict:
    p: dict[str, dict] = {}
    p["/v1/messages"] = {
        "post": _op(
            "sendMessages", "Send a message to one or more numbers", "messages",
            _answers(_accepted(),
                     auth="customer", errors={
                         400: _RESPONSES["BadJson"],
                         402: _error(("insufficient_balance",), "A prepaid balance cannot cover the whole request; "
                                                                "nothing was sent."),
                         409: _error(("idempotency_conflict",), "This Idempotency-Key was used with another body."),
                         422: _error(ERROR_CODES[422], "A field's value is refused (`field` names it). When several "
                                                       "apply, the first of to, text, from, profile, send_at wins."),
                         429: _error(("rate_limited",), "Over the account's `tps`.",
                                     {"Retry-After": _header("Seconds to wait.", _RETRY_AFTER)}),
                     }),
            security=_CUSTOMER, body=_ref("SendRequest"), examples={
                "one": {"to": "46701234567", "text": "Hello from smsgw"},
                "many": {"to": ["46701234567", "+46701234568"], "text": "Your code is 1234", "from": "ACME",
                         "reference": "order-17", "callback_statuses": "final"},
                "later": {"to": "46701234567", "text": "Reminder: dentist at 10:00",
                          "send_at": "2031-06-01T08:00:00+02:00"}},
            parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                         "schema": _string(minLength=1, maxLength=255, pattern=r"\S"),
                         "description": "A retried request with the same key (and body) answers the first 202 again "
                                        "and sends nothing twice; kept 24 h, per account."}],
            description="Refused whole or accepted whole: 202 only after every message is stored."),
        "get": _op(
            "listMessages", "Status changes of your messages, in the order they changed", "messages",
            _answers(_linked(_ok("MessagePage", "Each message once, at its last change, without its history."),
                             getMessage=("getMessage", "id", "/messages/0/id")),
                     auth="customer", errors={400: _RESPONSES["BadQuery"], **_422_NUMBER}),
            security=_CUSTOMER, parameters=[
                _query("status", _STATUS, "Only messages in this status."),
                _query("to", _string(pattern=_MSISDN_PATTERN), "Only messages to this number (URL-encode a + as %2B)."),
                _query("updated_since", _string(format="date-time"), "Only messages changed at or after this time."),
                _SEQ_CURSOR, _LIMIT]),
    }
    p["/v1/messages/{id}"] = {
        "get": _op("getMessage", "A message and its full history", "messages",
                   _answers(_ok("Message", "The message, with one event per change, attempts on each operator "
                                           "included."),
                            auth="customer", errors={404: _shared("NotFound")}),
                   security=_CUSTOMER, parameters=[_MESSAGE_ID]),
        "delete": _op("cancelMessage", "Cancel a message not yet submitted", "messages",
                      _answers(_ok("Message", "Cancelled: the message as GET shows it, now `stopped`."),
                               auth="customer", errors={
                                   404: _shared("NotFound"),
                                   409: _error(("conflict",), "The message was already submitted (or is final)."),
                               }),
                      security=_CUSTOMER, parameters=[_MESSAGE_ID],
                      description="Stops a scheduled, queued, paused or pending_approval message."),
    }
    p["/v1/messages/export"] = {
        "get": _op("exportMessages", "Your messages created in [from, to), as CSV", "messages",
                   _answers({"200": {"description": "One line per message: id, created_at, updated_at, to, from, "
                                                    "status, parts, profile, operator, cost, charged, reference, error.",
                                     "content": {"text/csv": {"schema": {"type": "string"}}}}},
                            auth="customer", errors={400: _RESPONSES["BadQuery"]}),
                   security=_CUSTOMER, parameters=[
                       _query("from", _DAY_OR_TIME, "RFC 3339 time or YYYY-MM-DD (midnight UTC); default 24 h ago."),
                       _query("to", _DAY_OR_TIME, "RFC 3339 time or YYYY-MM-DD, excluded; default now.")]),
    }
    p["/v1/inbound"] = {
        "get": _op("listInbound", "MO messages for your keywords, oldest first", "inbound",
                   _answers(_ok("InboundPage", "A page of MO."), auth="customer", errors={400: _RESPONSES["BadQuery"]}),
                   security=_CUSTOMER, parameters=[_SEQ_CURSOR, _LIMIT]),
    }
    # -- the customers' own look-ups (SPEC §14) ---------------------------------------------------------
    own_errors = {400: _RESPONSES["BadQuery"]}
    p["/v1/messages/search"] = {"get": _op(
        "searchMessages", "Your messages, newest first, by status, number and creation time", "own look-ups",
        _answers(_linked(_ok("OwnMessagePage", "A page of your messages, without their history."),
                         getMessage=("getMessage", "id", "/messages/0/id")),
                 auth="customer", errors={**own_errors, **_422_NUMBER}),
        security=_CUSTOMER, parameters=[
            _query("status", _STATUS, "Only messages in this status."),
            _query("to", _string(pattern=_MSISDN_PATTERN), "Only messages to this number (URL-encode a + as %2B)."),
            _query("since", _DAY_OR_TIME, "Created at or after (RFC 3339 time or YYYY-MM-DD)."),
            _query("until", _DAY_OR_TIME, "Created before (RFC 3339 time or YYYY-MM-DD)."),
            _ID_CURSOR, _LIMIT])}
    p["/v1/numbers/{number}"] = {"get": _op(
        "getNumber", "One number: your messages to it, its MO to you, your stop list and consent", "own look-ups",
        _answers(_ok("OwnNumber", "What your account has to do with the number; nothing of other accounts."),
                 auth="customer", errors={**own_errors, 404: _shared("NotFound"),
                                          **{422: _error(("invalid_number",), "Not an international number.")}}),
        security=_CUSTOMER, parameters=[
            _path("number", _string(pattern=_MSISDN_PATTERN), "The number (a + may be given, as + or %2B)."),
            _ID_CURSOR, _query("mo_cursor", _string(pattern="^[0-9a-f]{0,64}$"), "`mo_next_cursor` of the page "
                                                                                "before."), _LIMIT])}
    p["/v1/stoplist"] = {"get": _op(
        "getStopList", "Your stop list and consents, by number", "own look-ups",
        _answers(_ok("OwnStopPage", "Entries of your stop list and, apart, your consents, each by number and "
                                    "paged by its own cursor."),
                 auth="customer", errors={**own_errors, **_422_NUMBER}),
        security=_CUSTOMER, parameters=[
            _query("number", _string(pattern=_MSISDN_PATTERN), "Only this number's entry and consent."),
            _query("cursor", _string(pattern="^([0-9A-Za-z+]{1,64})?$"),
                   "`next_cursor` of the page before (the last number)."),
            _query("consents_cursor", _string(pattern="^([0-9A-Za-z+]{1,64})?$"),
                   "`consents_next_cursor` of the page before (the last consent's number)."),
            _LIMIT])}
    p["/v1/account"] = {
        "get": _op("getAccount", "Your balance, limits and senders", "account",
                   _answers(_ok("Account", "The account."), auth="customer"), security=_CUSTOMER),
    }

    # -- admin ----------------------------------------------------------------------------------------
    for action, what in (("approve", "Release a message held for approval (queued, or scheduled if its send_at "
                                     "is ahead)"),
                         ("refuse", "Refuse a message held for approval (stopped, refunded)")):
        p[f"/v1/admin/messages/{{id}}/{action}"] = {"post": _op(
            f"{action}Message", what, "admin",
            _answers(_ok("Message", "The message after the change."), auth="admin", errors={
                404: _shared("NotFound"),
                409: _error(("conflict",), "The message is not pending approval."),
            }),
            security=_ADMIN, parameters=[_MESSAGE_ID])}
    for action, what in (("pause", "Hold an account's messages (new ones are accepted as paused)"),
                         ("resume", "Queue an account's paused messages again")):
        p[f"/v1/admin/accounts/{{account}}/{action}"] = {"post": _op(
            f"{action}Account", what, "admin",
            _answers(_ok("Paused", "Done."), auth="admin", errors={404: _shared("NotFound")}),
            security=_ADMIN, parameters=[_ACCOUNT_NAME])}
    p["/v1/admin/accounts/{account}/topup"] = {"post": _op(
        "topupAccount", "Add to (or correct) an account's balance", "admin",
        _answers(_ok("Balance", "The new balance."), auth="admin",
                 errors={400: _RESPONSES["BadJson"], 404: _shared("NotFound")}),
        security=_ADMIN, parameters=[_ACCOUNT_NAME], body=_ref("Topup"),
        examples={"add": {"amount": 500}, "correct": {"amount": "-12.50"}},
        description="Balance notices go to the account's callback_url for each threshold crossed.")}
    p["/v1/admin/stoplist"] = {"post": _op(
        "changeStopList", "Add to or remove from a stop list, the do-not-call list, or an account's consents",
        "admin",
        _answers(_ok("StopListChanged", "`changed`: entries added or removed; `numbers`: numbers given."),
                 auth="admin", errors={400: _RESPONSES["BadJson"], 404: _shared("NotFound"), **{
                     422: _error(("invalid_number",), "A number that is not international digits.")}}),
        security=_ADMIN, body=_ref("StopListChange"), examples={
            "stop": {"numbers": ["46701234567"], "account": "acme"},
            "do_not_call": {"numbers": ["46701234567", "46701234568"]},
            "consent": {"numbers": ["46701234567"], "account": "acme", "consent": True},
            "remove": {"numbers": ["46701234567"], "account": "acme", "remove": True}})}
    p["/v1/admin/reload"] = {"post": _op(
        "reload", "Apply the config file again, in every process of the node", "admin",
        _answers(_ok("Reload", "What changed, or the file's errors (then nothing changed)."), auth="admin"),
        security=_ADMIN)}
    p["/v1/admin/binds"] = {"get": _op(
        "listBinds", "Each operator's link: sessions, window, throttling", "admin",
        _answers({"200": _json(_obj({"operators": _array(_ref("Bind"))}), "Every operator of the node.")},
                 auth="admin"),
        security=_ADMIN)}
    p["/v1/admin/operators/{operator}/mo"] = {"post": _op(
        "injectMo", "Make a simulated operator deliver an MO, as a phone would (demos, tests)", "admin",
        _answers({"202": _json(_obj({"operator": {"type": "string"}, "outcome": _string(
            "What the simulated SMSC saw: delivered, no receiver bound, receiver busy, refused: …, failed: …")}),
            "Handed to the simulated operator.")},
            auth="admin", errors={400: _RESPONSES["BadJson"],
                                  404: _error(("not_found",), "No simulated operator of that name.")}),
        security=_ADMIN, body=_ref("InjectMo"),
        examples={"demo": {"from": "46701234567", "to": "72550", "text": "DEMO hello"}},
        parameters=[_path("operator", _string(pattern=_NAME_PATTERN), "A simulated operator of the config.")])}

    # -- admin look-ups (SPEC §14) --------------------------------------------------------------------
    lookup_errors = {400: _RESPONSES["BadQuery"]}
    p["/v1/admin/messages"] = {"get": _op(
        "findMessages", "Messages of every account, newest first", "look-ups",
        _answers(_linked(_ok("AdminMessagePage", "A page of messages."),
                         findMessage=("findMessage", "id", "/messages/0/id")),
                 auth="admin", errors={**lookup_errors, **_422_NUMBER}),
        security=_ADMIN, parameters=[
            _name_filter("account", "Only this account's (also one no longer in the config)."),
            _query("status", _STATUS, "Only messages in this status."),
            _query("to", _string(pattern=_MSISDN_PATTERN), "Only messages to this number."),
            _name_filter("operator", "Only messages whose last attempt was on this operator."),
            _query("since", _DAY_OR_TIME, "Created at or after (RFC 3339 time or YYYY-MM-DD)."),
            _query("until", _DAY_OR_TIME, "Created before (RFC 3339 time or YYYY-MM-DD)."),
            _ID_CURSOR, _LIMIT])}
    p["/v1/admin/messages/{id}"] = {"get": _op(
        "findMessage", "Any account's message with its whole history", "look-ups",
        _answers(_ok("AdminMessageWithHistory", "The message."), auth="admin",
                 errors={**lookup_errors, 404: _shared("NotFound")}),
        security=_ADMIN, parameters=[_MESSAGE_ID])}
    p["/v1/admin/numbers/{number}"] = {"get": _op(
        "findNumber", "One number: its MT and MO, learned operator, stop list, consents", "look-ups",
        _answers(_ok("Number", "What the gateway knows of the number."), auth="admin",
                 errors={**lookup_errors, 404: _shared("NotFound"),
                         **{422: _error(("invalid_number",), "Not an international number.")}}),
        security=_ADMIN, parameters=[
            _path("number", _string(pattern=_MSISDN_PATTERN), "The number (a + may be given, as + or %2B)."),
            _ID_CURSOR, _query("mo_cursor", _string(pattern="^[0-9a-f]{0,64}$"), "`mo_next_cursor` of the page "
                                                                                "before."), _LIMIT])}
    p["/v1/admin/accounts"] = {"get": _op(
        "findAccounts", "Every configured account", "look-ups",
        _answers(_linked(_ok("AdminAccounts", "Every account, by name."),
                         findAccount=("findAccount", "account", "/accounts/0/account"),
                         topupAccount=("topupAccount", "account", "/accounts/0/account")),
                 auth="admin", errors=lookup_errors),
        security=_ADMIN)}
    p["/v1/admin/accounts/{account}"] = {"get": _op(
        "findAccount", "One account", "look-ups",
        _answers(_ok("AdminAccount", "The account."), auth="admin",
                 errors={**lookup_errors, 404: _shared("NotFound")}),
        security=_ADMIN, parameters=[_ACCOUNT_NAME])}
    p["/v1/admin/approvals"] = {"get": _op(
        "listApprovals", "Messages waiting for approval, newest first", "look-ups",
        _answers(_linked(_ok("HeldPage", "Each with why it is held and since when."),
                         approveMessage=("approveMessage", "id", "/messages/0/id"),
                         refuseMessage=("refuseMessage", "id", "/messages/0/id")),
                 auth="admin", errors=lookup_errors),
        security=_ADMIN, parameters=[_name_filter("account", "Only this account's."), _ID_CURSOR, _LIMIT])}
    p["/v1/admin/inbound"] = {"get": _op(
        "findInbound", "MO of every account (and of none), newest first", "look-ups",
        _answers(_ok("AdminInboundPage", "A page of MO."), auth="admin",
                 errors={**lookup_errors, **{422: _error(("invalid_number",), "`from` is not an international "
                                                                              "number.")}}),
        security=_ADMIN, parameters=[
            _name_filter("account", "Only MO routed to this account."),
            _name_filter("keyword", "Only MO of this keyword, as the config spells it."),
            _query("from", _string(pattern=_MSISDN_PATTERN), "Only MO from this number."),
            _ID_CURSOR, _LIMIT])}
    p["/v1/admin/inbound/{id}"] = {"get": _op(
        "findInboundMessage", "Any MO with its history: what became of its push and its reply", "look-ups",
        _answers(_ok("AdminInboundWithHistory", "The MO."), auth="admin",
                 errors={**lookup_errors, 404: _shared("NotFound")}),
        security=_ADMIN, parameters=[_path("id", _ID, "The MO's id.")])}
    p["/v1/admin/stoplist"]["get"] = _op(
        "findStopList", "Stop-list and do-not-call entries, and the accounts' consents", "look-ups",
        _answers(_ok("StopPage", "Entries by account then number, the do-not-call list first; apart, the "
                                 "accounts' consents by account then number; each paged by its own cursor."),
                 auth="admin", errors={**lookup_errors, **_422_NUMBER}),
        security=_ADMIN, parameters=[
            _query("number", _string(pattern=_MSISDN_PATTERN), "Only this number's entries and consents."),
            _query("account", _string(pattern=r"^([A-Za-z0-9_.-]{1,64}|\*)$"),
                   "Only this account's stop list and consents; `*`: only the do-not-call list (no consent)."),
            _query("cursor", _string(pattern="^([A-Za-z0-9_*-]{1,64}:[0-9A-Za-z+]{1,64})?$"),
                   "`next_cursor` of the page before (`account:number`)."),
            _query("consents_cursor", _string(pattern="^([A-Za-z0-9_-]{1,64}:[0-9A-Za-z+]{1,64})?$"),
                   "`consents_next_cursor` of the page before (`account:number`)."),
            _LIMIT])

    # -- the node and this document -------------------------------------------------------------------
    p["/healthz"] = {"get": _op(
        "health", "Alive", "node",
        _answers({"200": _json(_obj({"status": {"const": "ok"}}), "The process answers.")}, auth=None, store=False))}
    p["/readyz"] = {"get": _op(
        "ready", "Ready: the store is reachable and every profile has a bound operator", "node",
        _answers({"200": _json(_ref("Readiness"), "Ready (while shedding load too: reads and status still work)."),
                  "503": _json({"anyOf": [_ref("Readiness"), _ref("Error")]},
                               "Not ready: `problems` says why (or the error shape when the node's main process "
                               "could not be asked).")}, auth=None))}
    p["/v1/openapi.json"] = {"get": _op(
        "openapi", "This document", "node",
        _answers({"200": _json({"type": "object", "required": ["openapi", "paths"]}, "OpenAPI 3.1.")},
                 auth=None, store=False))}
    return dict(sorted(p.items()))
