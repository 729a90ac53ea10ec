"""The API's OpenAPI 3.1 document (SPEC §14), served as ``GET /v1/openapi.json``.

Why built here rather than written as a JSON file: the limits and vocabularies a customer codes
against (the statuses, the encodings, 1,000 recipients, 64-character references, pages of 1,000)
are the code's own constants, read from the modules that enforce them, so the document cannot
drift from them; and every error answer is written once (``_error``) and shared by reference.

What it holds: every route of ``smscore.api.routes`` with its parameters, request body, answers
and every error status it can give (in the shape of ``render``: ``{"error": {"code", "message",
"field"?}}``, each status with the codes it can carry); the two bearer keys (a customer's, an
admin's); and, as ``webhooks``, what the gateway POSTs to customers: status callbacks (one event,
or ``{"events": [...]}`` batches, SPEC §12), MO pushes and the reply their answer may carry, and
balance notices, with the signature headers of ``connectors.http_push``.

The tests keep it honest: ``tests/e2e/test_openapi.py`` drives a live gateway from it with
schemathesis and fails on any answer it does not describe; ``tests/integration/test_openapi_routes.py``
fails on a route of ``routes.py`` missing here and on a push that breaks its webhook;
``tests/unit/test_openapi.py`` checks it is valid OpenAPI 3.1 and lists every error code the code
raises. It is built and encoded once per process (``answer``).
"""

from __future__ import annotations

from functools import cache

import orjson

from policies.callbacks import ALL, FINAL
from smscore.api.inputs import DEFAULT_PAGE, MAX_BODY, MAX_PAGE
from smscore.model import STATUS_NAMES
from smscore.submission import ENCODINGS, MAX_RECIPIENTS, MAX_REFERENCE, MAX_SEND_AHEAD

__all__ = ["answer", "document"]

JSON = "application/json"
_REF = "#/components/schemas/"

# -- small builders ---------------------------------------------------------------------------------


def _ref(name: str) -> dict:
    return {"$ref": _REF + name}


def _obj(properties: dict, required=None, closed: bool = True, **extra) -> dict:
    """An object schema; ``required`` defaults to every property (answers always carry them all)."""
    out = {"type": "object", "properties": properties,
           "required": list(properties) if required is None else list(required)}
    if closed:
        out["additionalProperties"] = False
    out.update(extra)
    return out


def _nullable(schema: dict) -> dict:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


def _string(description: str | None = None, **extra) -> dict:
    out = {"type": "string", **extra}
    if description:
        out["description"] = description
    return out


def _json(schema: dict, description: str, **extra) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}, **extra}


def _header(description: str, schema: dict | None = None, required: bool = True) -> dict:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


_TIME = _string("RFC 3339 in UTC with milliseconds, e.g. 2026-11-22T01:02:03.456Z.", format="date-time")
_ID = _string("Lowercase hex (24 characters), sorting by creation time.", pattern="^[0-9a-f]{1,64}$")
_MSISDN_PATTERN = r"^\+?[1-9][0-9]{7,14}$"
_NUMBER = _string("International digits, 8 to 15, no leading 0 (a leading + is accepted and stripped).",
                  pattern=_MSISDN_PATTERN)
_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_ADDRESS = r"^[\u0001-\u007f]{1,20}$"  # an SMPP address: 1 to 20 ASCII characters, no NUL
_MONEY = {"type": "number", "description": "A decimal in the account's currency."}
_STATUS = {"type": "string", "enum": list(STATUS_NAMES), "description": "A message status (SPEC §5)."}

# -- errors -----------------------------------------------------------------------------------------

#: Every error code, by the status it is answered with (SPEC §4 and docs/api.md).
ERROR_CODES = {
    400: ("invalid_json", "invalid_request"),
    401: ("unauthorized",),
    402: ("insufficient_balance",),
    403: ("forbidden",),
    404: ("not_found",),
    405: ("method_not_allowed",),
    409: ("conflict", "idempotency_conflict"),
    413: ("too_large",),
    414: ("uri_too_long",),
    422: ("invalid_sender", "invalid_number", "text_too_long", "send_at_out_of_range", "unknown_profile",
          "invalid_callback_url"),
    429: ("rate_limited",),
    431: ("headers_too_large",),
    500: ("internal_error",),
    503: ("unavailable",),
}

_ERROR = _obj({
    "error": _obj({
        "code": _string("What went wrong, in snake_case: a stable value to branch on.",
                        enum=sorted({c for codes in ERROR_CODES.values() for c in codes})),
        "message": _string("A human sentence; may change between versions."),
        "field": _string("The request field, header or query parameter at fault, when there is one."),
    }, required=["code", "message"]),
}, description="Every error answer (SPEC §4).")

_RETRY_AFTER = {"type": "string", "pattern": "^[0-9]+$"}


def _error(codes, description: str, headers: dict | None = None) -> dict:
    """An error answer whose ``code`` is one of ``codes``."""
    schema = {"allOf": [_ref("Error"), {"type": "object", "properties": {
        "error": {"type": "object", "properties": {"code": {"enum": list(codes)}}}}}]}
    out = _json(schema, description)
    if headers:
        out["headers"] = headers
    return out


def _shared(name: str) -> dict:
    return {"$ref": "#/components/responses/" + name}


_RESPONSES = {
    "BadJson": _error(("invalid_json", "invalid_request"),
                      "The body is not JSON (`invalid_json`), or a field is missing or of the wrong type "
                      "(`invalid_request`, `field` names it)."),
    "BadQuery": _error(("invalid_request",), "A query parameter is unknown, repeated or malformed (`field` names it)."),
    "Unauthorized": _error(("unauthorized",), "No key, or a key the gateway does not know.",
                           {"WWW-Authenticate": _header("`Bearer realm=\"smsgw\"` (customer endpoints) or "
                                                        "`Bearer realm=\"smsgw-admin\"` (admin endpoints).")}),
    "Forbidden": _error(("forbidden",), "A customer's key on an admin endpoint."),
    "NotFound": _error(("not_found",), "No such resource. Another account's message answers exactly like a "
                                       "missing one: existence is not revealed."),
    "TooLarge": _error(("too_large",), f"The request body is over {MAX_BODY} bytes (1 MiB)."),
    "UriTooLong": _error(("uri_too_long",), "The request line is over 8 KiB. The connection is closed."),
    "HeadersTooLarge": _error(("headers_too_large",), "The header section is over 16 KiB or 100 fields. "
                                                      "The connection is closed."),
    "InternalError": _error(("internal_error",), "A bug in the gateway (logged with its traceback). Nothing "
                                                 "of the request was accepted; please report it."),
    "Unavailable": _error(("unavailable",), "The store could not answer, or (`POST /v1/messages`) the "
                                            "cluster's backlog is full; nothing of the request was accepted. "
                                            "Try again later, after `Retry-After` seconds when it is given.",
                          {"Retry-After": _header("Seconds to wait (load shedding).", _RETRY_AFTER, False)}),
}


def _answers(ok: dict, *, auth: str | None, errors: dict | None = None, store: bool = True) -> dict:
    """An operation's answers: ``ok`` (status → response), its own errors, and those every request
    can meet (413/414/431 from the HTTP server, 500 for a bug; 503 when it needs the store or
    another process of the node; 401, and 403 for admin endpoints)."""
    out = dict(ok)
    if auth is not None:
        out["401"] = _shared("Unauthorized")
    if auth == "admin":
        out["403"] = _shared("Forbidden")
    for status, response in (errors or {}).items():
        out[str(status)] = response
    out["413"] = _shared("TooLarge")
    out["414"] = _shared("UriTooLong")
    out["431"] = _shared("HeadersTooLarge")
    out["500"] = _shared("InternalError")
    if store:
        out["503"] = _shared("Unavailable")
    return dict(sorted(out.items()))


# -- parameters -------------------------------------------------------------------------------------


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
                f"Items per page, 1 to {MAX_PAGE}.")
_SEQ_CURSOR = _query("cursor", _string(pattern="^[0-9]{0,18}$"),
                     "`next_cursor` of the page before (absent: from the start).")
_ID_CURSOR = _query("cursor", _string(pattern="^[0-9a-f]{0,64}$"),
                    "`next_cursor` of the page before: the id of its last item (absent: the newest first).")
_DAY_OR_TIME = {"type": "string", "anyOf": [{"format": "date-time"}, {"format": "date"}]}
_MESSAGE_ID = _path("id", _ID, "The message's id.")
_ACCOUNT_NAME = _path("account", _string(pattern="^[A-Za-z0-9_-]{1,64}$"), "The account's name in the config.")


def _name_filter(name: str, description: str) -> dict:
    return _query(name, _string(pattern=_NAME_PATTERN), description)


# -- schemas ----------------------------------------------------------------------------------------

_EVENT = _obj({
    "at": _TIME,
    "status": _STATUS,
    "operator": _nullable(_string("The operator of this attempt; null before any was tried.")),
    "detail": _string("What happened, e.g. the receipt's `stat=DELIVRD err=000 id=…`, a submit's SMSC ids "
                      "and cost, why a message is held."),
    "final": {"type": "boolean", "description": "False for a failed attempt that goes on through another "
                                                "operator (SPEC §5)."},
}, description="One change in a message's history (SPEC §5).")

_SUMMARY_FIELDS = {
    "id": _ID,
    "to": _string("International digits; a reply to an MO goes to the MO's sender as the operator gave it."),
    "from": _string("The sender: alphanumeric, numeric or a shortcode."),
    "text": {"type": "string"},
    "status": _STATUS,
    "parts": {"type": "integer", "minimum": 1},
    "profile": {"type": "string"},
    "reference": _nullable(_string(maxLength=MAX_REFERENCE)),
    "operator": _nullable(_string("The operator of the last attempt.")),
    "cost": {**_MONEY, "description": "The operators' cost of every attempt, summed."},
    "error": _nullable(_string("Why it failed, for failed and final statuses.")),
    "created_at": _TIME,
    "updated_at": _TIME,
    "send_at": _nullable({**_TIME, "description": "When a scheduled message is due."}),
}
_HISTORY = {"events": _array(_ref("Event"), description="The full history, oldest first.")}
_ACCOUNT_FIELD = {"account": _string("The account the message belongs to (\"\" for a reply to an MO routed to "
                                      "no account).")}

_MO_FIELDS = {
    "id": _ID,
    "from": _string("The phone that sent it."),
    "to": _string("The shortcode (or number) it was sent to."),
    "keyword": _string("The keyword it matched, as the config spells it."),
    "text": _string("The whole SMS."),
    "payload": _string("What follows the keyword."),
    "received_at": _TIME,
}

_STOP_ENTRY = _obj({
    "number": {"type": "string"},
    "account": _nullable(_string("The account whose stop list it is; null on the do-not-call list.")),
    "list": {"type": "string", "enum": ["stop", "do_not_call"]},
    "added_at": _nullable(_TIME),
    "source": _string("`ops`, `import`, or the stop word that put it there."),
})

_BIND_SESSION = _obj({
    "session": {"type": "string"}, "bound": {"type": "boolean"}, "transmits": {"type": "boolean"},
    "in_flight": {"type": "integer", "minimum": 0}, "reconnect_failures": {"type": "integer", "minimum": 0},
})

SCHEMAS = {
    "Error": _ERROR,
    "SendRequest": _obj({
        "to": {"oneOf": [_NUMBER, _array(_NUMBER, minItems=1, maxItems=MAX_RECIPIENTS)],
               "description": f"One number, or a list of 1 to {MAX_RECIPIENTS}: one message each."},
        "text": _string("The text; never truncated: over `max_parts` parts is 422 `text_too_long`.", minLength=1),
        "from": _nullable(_string("A sender of the account's `senders`: alphanumeric (1-11 letters and digits) or "
                                  "numeric (1-15 digits, + allowed). Default: the account's default sender.",
                                  pattern=r"^(\+?[0-9]{1,15}|[A-Za-z0-9]{1,11})$")),
        "profile": _string("An operator profile of the config (default: the account's)."),
        "max_parts": _nullable({"type": "integer", "minimum": 1,
                                "description": "At most this many SMS parts (capped by the account's)."}),
        "encoding": {"type": "string", "enum": list(ENCODINGS), "default": "auto",
                     "description": "auto: GSM 03.38 when every character fits, else UCS-2."},
        "send_at": _nullable(_string(f"When to send (an RFC 3339 date-time with an offset); in the past means "
                                     f"now; at most {MAX_SEND_AHEAD // 86400} days (5 years) ahead.",
                                     format="date-time")),
        "callback_url": _nullable(_string("Where this message's status callbacks go (http or https, a host of the "
                                          "account's callback_hosts).", format="uri", maxLength=2048)),
        "callback_statuses": _nullable({
            "description": "Which status events are pushed for these messages (SPEC §12); replaces the "
                           "account's setting.",
            "oneOf": [{"type": "string", "enum": [ALL, FINAL]}, _array(_STATUS)]}),
        "reference": _nullable(_string("Yours, echoed in answers and callbacks.", maxLength=MAX_REFERENCE)),
    }, required=["to", "text"]),
    "Accepted": _obj({"messages": _array(_obj({
        "id": _ID, "to": _NUMBER, "status": _STATUS, "parts": {"type": "integer", "minimum": 1}}))}),
    "Event": _EVENT,
    "MessageSummary": _obj(_SUMMARY_FIELDS, description="A message without its history."),
    "Message": _obj({**_SUMMARY_FIELDS, **_HISTORY}, description="A message with its full history."),
    "MessagePage": _obj({"messages": _array(_ref("MessageSummary")),
                         "next_cursor": _string("Give it back as `cursor`; the cursor you sent when nothing "
                                                "changed since: poll with it forever.", pattern="^[0-9]+$")}),
    "Inbound": _obj(_MO_FIELDS, description="An MO for one of the account's keywords."),
    "InboundPage": _obj({"messages": _array(_ref("Inbound")), "next_cursor": _string(pattern="^[0-9]+$")}),
    "Account": _obj({
        "account": {"type": "string"}, "balance": _MONEY,
        "billing": {"type": "string", "enum": ["prepaid", "postpaid"]}, "paused": {"type": "boolean"},
        "senders": _array({"type": "string"}), "default_sender": _nullable({"type": "string"}),
        "profile": {"type": "string"}, "max_parts": {"type": "integer", "minimum": 1},
        "tps": _nullable({"type": "integer", "description": "API requests per second; null: no limit."}),
        "daily_volume_limit": _nullable({"type": "integer"}),
        "approved_domains": _array({"type": "string"}), "callback_url": _nullable({"type": "string"}),
    }),
    "AdminMessage": _obj({**_SUMMARY_FIELDS, **_ACCOUNT_FIELD}),
    "AdminMessageWithHistory": _obj({**_SUMMARY_FIELDS, **_HISTORY, **_ACCOUNT_FIELD}),
    "AdminMessagePage": _obj({"messages": _array(_ref("AdminMessage")),
                              "next_cursor": _nullable(_string("The last id of a full page; null after the last "
                                                               "page.", pattern="^[0-9a-f]+$"))}),
    "HeldMessage": _obj({**_SUMMARY_FIELDS, **_ACCOUNT_FIELD,
                         "held_at": _nullable(_TIME), "held_because": _nullable({"type": "string"})}),
    "HeldPage": _obj({"messages": _array(_ref("HeldMessage")),
                      "next_cursor": _nullable(_string(pattern="^[0-9a-f]+$"))}),
    "AdminInbound": _obj({**_MO_FIELDS,
                          "account": _nullable(_string("null for MO routed to no account.")),
                          "outcome": _string("What routing did: keyword, stop, unknown_keyword, over_cap, "
                                             "no_shortcode."),
                          "operator": _string("The operator it came through."),
                          "note": _string("What is odd about it, e.g. parts missing.")}),
    "AdminInboundPage": _obj({"messages": _array(_ref("AdminInbound")),
                              "next_cursor": _nullable(_string(pattern="^[0-9a-f]+$"))}),
    "AdminAccount": _obj({
        "account": {"type": "string"}, "balance": _MONEY, "paused": {"type": "boolean"},
        "billing": {"type": "string", "enum": ["prepaid", "postpaid"]}, "profile": {"type": "string"},
        "tps": _nullable({"type": "integer"}), "daily_volume_limit": _nullable({"type": "integer"}),
        "sent_today": _nullable({"type": "integer", "description": "Kept only for accounts with a daily limit."}),
        "senders": _array({"type": "string"}), "default_sender": _nullable({"type": "string"}),
    }),
    "AdminAccounts": _obj({"accounts": _array(_ref("AdminAccount"))}),
    "Number": _obj({
        "number": {"type": "string"},
        "messages": _array(_ref("AdminMessage")), "next_cursor": _nullable({"type": "string"}),
        "mo": _array(_ref("AdminInbound")), "mo_next_cursor": _nullable({"type": "string"}),
        "learned": _nullable(_obj({"operator": _nullable({"type": "string"}), "failures": _array(_obj({
            "operator": {"type": "string"}, "at": _TIME,
            "counts": {"type": "boolean", "description": "False once older than 30 days."}}))})),
        "stop_list": _array(_ref("StopEntry")),
        "do_not_call": _nullable(_ref("StopEntry")),
        "consents": _array(_obj({"account": {"type": "string"}, "added_at": _nullable(_TIME)})),
        "block": _obj({
            "basis": _nullable(_string("The prefix whose evidence orders the operators; null: price decides.")),
            "chances": {"type": "object", "additionalProperties": {"type": "number"},
                        "description": "Each operator's chance to deliver at the basis prefix."},
            "evidence": _array(_obj({"prefix": {"type": "string"}, "operator": {"type": "string"},
                                     "delivered": {"type": "number"}, "failed": {"type": "number"}})),
        }),
    }),
    "StopEntry": _STOP_ENTRY,
    "StopPage": _obj({"entries": _array(_ref("StopEntry")),
                      "next_cursor": _nullable(_string("`account:number` of the last entry of a full page."))}),
    "StopListChange": _obj({
        "numbers": _array(_string(pattern=_MSISDN_PATTERN), minItems=1),
        "account": _nullable(_string("This account's stop list (or consents); absent or null: the do-not-call "
                                     "list of every account.")),
        "remove": {"type": ["boolean", "null"], "default": False, "description": "Remove instead of add."},
        "consent": {"type": ["boolean", "null"], "default": False,
                    "description": "The account's consents (numbers it may send to despite the do-not-call list)."},
    }, required=["numbers"], closed=False),
    "Topup": _obj({"amount": {
        "description": "Added to the balance; negative corrects it; -1,000,000 to 1,000,000 per call. A decimal "
                       "string keeps every digit.",
        "oneOf": [{"type": "number", "minimum": -1_000_000, "maximum": 1_000_000},
                  _string("A decimal, e.g. \"12.50\" (anything else is 400).")]}},
        closed=False),
    "Balance": _obj({"balance": _MONEY}),
    "StopListChanged": _obj({"changed": {"type": "integer", "minimum": 0}, "numbers": {"type": "integer", "minimum": 1}}),
    "Paused": _obj({"account": {"type": "string"}, "paused": {"type": "boolean"},
                    "messages": {"type": "integer", "minimum": 0, "description": "Messages paused or resumed."}}),
    "Bind": _obj({
        "operator": {"type": "string"}, "up": {"type": "boolean"}, "host": {"type": "string"},
        "port": {"type": "integer"}, "tls": {"type": "boolean"}, "bind": {"type": "string"},
        "window": {"type": "integer"}, "tps": _nullable({"type": "number"}),
        "throttled_for": {"type": "number", "description": "Seconds the operator's throttling still slows it."},
        "queued_parts": {"type": "integer", "minimum": 0}, "sessions": _array(_BIND_SESSION),
    }),
    "Reload": {"oneOf": [
        _obj({"reloaded": {"const": True}, "reconnected": _array({"type": "string"}),
              "added": _array({"type": "string"}), "removed": _array({"type": "string"}),
              "needs_restart": _array(_string("A setting that changed and needs a restart."))}),
        _obj({"reloaded": {"const": False},
              "errors": _array(_string("One problem of the file, starting with its key path."))}),
    ]},
    "InjectMo": _obj({"from": _string("The phone's number.", pattern=_ADDRESS),
                      "to": _string("The shortcode (or number).", pattern=_ADDRESS),
                      "text": _string(minLength=1)}, closed=False),
    "Readiness": _obj({
        "ready": {"type": "boolean"},
        "problems": _array(_string("e.g. `store unreachable`, `profile standard: no bound operator`.")),
        "shedding": {"const": "backlog", "description": "Present while new messages are refused (SPEC §15)."},
    }, required=["ready", "problems"]),
    # pushes (webhooks)
    "StatusEvent": _obj({
        "event_id": _string("Unique per event, digits, increasing along a message's history: drop repeats by it.",
                            pattern="^[0-9]+$"),
        "id": _ID, "reference": _nullable({"type": "string"}), "to": {"type": "string"}, "status": _STATUS,
        "operator": _nullable({"type": "string"}), "error": _nullable({"type": "string"}), "at": _TIME,
        "final": {"type": "boolean"},
    }, description="One status change of a message (SPEC §4, §12)."),
    "StatusBatch": _obj({"events": _array(_ref("StatusEvent"), minItems=1)},
                        description="Several status events in one POST (`callback_batch` above 1)."),
    "MoPush": _obj(_MO_FIELDS, description="An MO for a keyword with a `url`."),
    "MoReply": _obj({"reply": _string("The reply SMS to the phone, from the shortcode.")}, closed=False),
    "BalanceNotice": _obj({
        "type": {"const": "balance"}, "account": {"type": "string"}, "balance": _MONEY,
        "threshold": {**_MONEY, "description": "The level crossed: a multiple of 1000, or 500, or 100."},
        "at": _TIME,
    }),
}

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
    p["/v1/admin/stoplist"]["get"] = _op(
        "findStopList", "Stop-list and do-not-call entries", "look-ups",
        _answers(_ok("StopPage", "Entries by account then number, the do-not-call list first."), auth="admin",
                 errors={**lookup_errors, **_422_NUMBER}),
        security=_ADMIN, parameters=[
            _query("number", _string(pattern=_MSISDN_PATTERN), "Only this number's entries."),
            _query("account", _string(pattern=r"^([A-Za-z0-9_.-]{1,64}|\*)$"),
                   "Only this account's stop list; `*`: only the do-not-call list."),
            _query("cursor", _string(pattern="^([A-Za-z0-9_*-]{1,64}:[0-9A-Za-z+]{1,64})?$"),
                   "`next_cursor` of the page before (`account:number`)."),
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


# -- pushes -----------------------------------------------------------------------------------------

_PUSH_HEADERS = [
    {"name": "X-Smsgw-Timestamp", "in": "header", "required": True, "schema": _string(pattern="^[0-9]+$"),
     "description": "Unix seconds when the attempt was made (each retry has its own)."},
    {"name": "X-Smsgw-Signature", "in": "header", "required": False,
     "schema": _string(pattern="^sha256=[0-9a-f]{64}$"),
     "description": "`sha256=` + hex HMAC-SHA256 with the account's `secret` of the timestamp, a `.`, and the "
                    "exact body bytes. Absent when the account has no secret. See docs/api.md for verification."},
    {"name": "User-Agent", "in": "header", "required": True, "schema": _string(pattern="^smsgw/"),
     "description": "`smsgw/<version>`."},
]
_ACK = {"2XX": {"description": "Taken: the push is not sent again (a batch: every event of it)."},
        "default": {"description": "Anything else, a timeout or a refused connection: retried after 5 s, 10 s, "
                                   "20 s … (at most 10 min apart) until `[push] retry_for` has passed. Redirects "
                                   "are not followed."}}


def _webhook(op_id: str, summary: str, schema: str, description: str, responses: dict | None = None) -> dict:
    return {"post": {"operationId": op_id, "summary": summary, "description": description,
                     "parameters": _PUSH_HEADERS,
                     "requestBody": {"required": True, "content": {JSON: {"schema": _ref(schema)}}},
                     "responses": responses or _ACK}}


def _webhooks() -> dict:
    return {
        "statusCallback": _webhook(
            "statusCallback", "A status change of a message (callback_batch = 1)", "StatusEvent",
            "POSTed to the message's `callback_url`, else its account's, once per status change the account's (or "
            "the request's) `callback_statuses` chooses, in order per message, at least once: drop repeats by "
            "`event_id`."),
        "statusCallbackBatch": _webhook(
            "statusCallbackBatch", "Status changes, batched (callback_batch above 1)", "StatusBatch",
            "Up to `callback_batch` events of one account to one URL, sent when full or when the oldest waited "
            "`callback_linger`. Signed over the whole body; retried whole. A message's events keep their order "
            "within and across batches."),
        "moPush": _webhook(
            "moPush", "An MO for a keyword with a url", "MoPush",
            "POSTed to the keyword's `url`. A 2xx answer may carry the reply SMS, sent to the phone from the "
            "shortcode. If the first attempt fails, the phone gets the keyword's `unavailable_reply` once; the MO "
            "stays in `GET /v1/inbound` either way.",
            {"2XX": {"description": "Taken. A body `{\"reply\": \"...\"}` (JSON) or a text/plain body becomes the "
                                    "reply SMS; an empty body or `{}`: no reply. Bodies over 64 KiB are not read.",
                     "content": {JSON: {"schema": _ref("MoReply")},
                                 "text/plain": {"schema": {"type": "string"}}}},
             "default": _ACK["default"]}),
        "balanceNotice": _webhook(
            "balanceNotice", "The balance crossed a threshold", "BalanceNotice",
            "POSTed to the account's `callback_url` when the balance crosses a multiple of 1000 (either way) and when "
            "it falls to or below 500 and 100. Never batched."),
    }


# -- the document -----------------------------------------------------------------------------------

_DESCRIPTION = """\
The smsgw HTTP API (SPEC §4): JSON in, JSON out, one bearer key per account (`Authorization: Bearer
<key>`), and admin keys for `/v1/admin/*`. docs/api.md is the reference with examples.

Every error is `{"error": {"code", "message", "field"?}}`; each operation lists the statuses and codes
it can answer. Besides those, the HTTP server itself answers 400 `invalid_request` to bytes that are
not HTTP/1.1, and any path the API does not have is 404 `not_found`; a known path with another method
is 405 `method_not_allowed`.

The pushes the gateway makes to your backend (status callbacks, MO, balance notices) are the
`webhooks`: JSON POSTs signed with `X-Smsgw-Signature`."""


def document() -> dict:
    """The OpenAPI 3.1 document, as plain JSON values (a copy: the caller may change it)."""
    return orjson.loads(_encoded())


@cache
def _encoded() -> bytes:
    return orjson.dumps(_build())


@cache
def _fragment() -> orjson.Fragment:
    return orjson.Fragment(_encoded())


def answer() -> tuple[int, orjson.Fragment]:
    """``GET /v1/openapi.json``: the document, encoded once per process."""
    return 200, _fragment()


def _build() -> dict:
    from smscore import version

    return {
        "openapi": "3.1.0",
        "info": {"title": "smsgw", "version": version(), "description": _DESCRIPTION,
                 "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"}},
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{"url": "/", "description": "The gateway that serves this document."}],
        "tags": [
            {"name": "messages", "description": "Send MT messages and follow them (customer key)."},
            {"name": "inbound", "description": "MO for your keywords, by pull (customer key)."},
            {"name": "account", "description": "Your account (customer key)."},
            {"name": "admin", "description": "Operations (admin key)."},
            {"name": "look-ups", "description": "Any account's data, for ops (admin key, SPEC §14)."},
            {"name": "node", "description": "Health, readiness and this document (no key)."},
        ],
        "paths": _paths(),
        "webhooks": _webhooks(),
        "components": {
            "schemas": dict(sorted(SCHEMAS.items())),
            "responses": _RESPONSES,
            "securitySchemes": {
                "customerKey": {"type": "http", "scheme": "bearer",
                                "description": "An API key of the account (`[accounts.NAME] api_keys`)."},
                "adminKey": {"type": "http", "scheme": "bearer",
                             "description": "An ops key (`[admin] api_keys`). A customer's key gets 403."},
            },
        },
    }
