"""The parts every other part of the OpenAPI document is built from.

Why a module of its own: the schemas, the operations and the webhooks all speak through the same
small builders (``_obj``, ``_string``, ``_json`` …), the same scalar schemas (times, ids, numbers,
statuses, money), the one error shape with ``ERROR_CODES`` and the shared error answers, and the
same query and path parameters; written once here, each of them is one value shared by reference.
"""

from __future__ import annotations

from smscore.api.inputs import DEFAULT_PAGE, MAX_BODY, MAX_PAGE
from smscore.model import STATUS_NAMES

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
    501: ("not_implemented",),
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
    # The answers any request can meet, unless the operation describes its own (``/readyz``'s 503
    # is its Readiness body, not the error shape).
    out.setdefault("413", _shared("TooLarge"))
    out.setdefault("414", _shared("UriTooLong"))
    out.setdefault("431", _shared("HeadersTooLarge"))
    out.setdefault("500", _shared("InternalError"))
    if store:
        out.setdefault("503", _shared("Unavailable"))
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
