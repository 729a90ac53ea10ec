"""HTTP API v1 (SPEC §4) on twisted.web: JSON in, JSON out, bearer keys per account.

A small router over one leaf resource keeps the hot path short (``POST /v1/messages`` is the
gateway's busiest call). Handlers return a dict, a Deferred of one, or raise ``ApiError``; every
error leaves as ``{"error": {"code", "message", "field"?}}``. ``202`` is written only after the
store has committed the messages (the pipeline's accept Deferred fires after the commit).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from smscore.errors import ApiError
from smscore.logs import get_logger
from smscore.model import Message, rfc3339
from smscore.submission import build_messages

MAX_BODY = 1 << 20  # 1 MiB: a list of 1000 numbers and a long text fit many times over
_MESSAGE_PATH = re.compile(r"^/v1/messages/([0-9a-f]{1,64})$")
_SIM_MO_PATH = re.compile(r"^/v1/admin/operators/([A-Za-z0-9_.-]{1,64})/mo$")


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_json_default).encode("utf-8")


def render_message(m: Message, events: bool = True) -> dict:
    """A message as ``GET /v1/messages/{id}`` shows it (``GET /v1/messages`` lists it without
    its events)."""
    out = {
        "id": m.id, "to": m.to, "from": m.sender, "text": m.text, "status": m.status.value,
        "parts": m.parts, "profile": m.profile, "reference": m.reference, "operator": m.operator,
        "cost": m.cost, "error": m.error, "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at), "send_at": rfc3339(m.send_at),
    }
    if events:
        out["events"] = [{"at": rfc3339(e.at), "status": e.status.value, "operator": e.operator,
                          "detail": e.detail, "final": e.final} for e in m.events]
    return out


DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _query(request) -> dict[str, str]:
    """Query parameters, one value each (a repeated one is refused)."""
    out = {}
    for key, values in request.args.items():
        name = key.decode("utf-8", "replace")
        if len(values) != 1:
            raise ApiError(400, "invalid_request", f"Parameter {name!r} is given more than once.", name)
        out[name] = values[0].decode("utf-8", "replace")
    return out


def _page(params: dict[str, str], allowed: set[str]) -> tuple[int, int]:
    """(cursor position, limit) from the query; unknown parameters are refused."""
    for name in params:
        if name not in allowed:
            raise ApiError(400, "invalid_request", f"Unknown parameter {name!r}.", name)
    cursor = params.get("cursor", "") or "0"
    if not cursor.isdigit() or len(cursor) > 18:
        raise ApiError(400, "invalid_request", "cursor must be a value from next_cursor.", "cursor")
    limit = params.get("limit", str(DEFAULT_PAGE))
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
        raise ApiError(400, "invalid_request", f"limit must be an integer from 1 to {MAX_PAGE}.", "limit")
    return int(cursor), int(limit)


class ApiSite(Site):
    """The API's site: JSON only, so no form parsing (twisted.web parses every POST's
    Content-Type through the email package to look for forms, ~60 µs a request), and no access
    log (structlog lines about each message are the log; an access line per request would cost
    more than the request's own work)."""

    def __init__(self, resource) -> None:
        super().__init__(resource, parsePOSTFormSubmission=False)

    def log(self, request) -> None:
        return None


class ApiResource(Resource):
    """The whole API as one leaf resource with a route table."""

    isLeaf = True

    def __init__(self, gateway) -> None:
        super().__init__()
        self.gateway = gateway
        self.log = get_logger(component="api")

    # -- plumbing ----------------------------------------------------------------------------
    def render(self, request):
        try:
            path = request.path.decode("ascii")
        except UnicodeDecodeError:
            return self._error(request, ApiError(404, "not_found", "No such resource."))
        method = request.method.decode("ascii", "replace")
        try:
            result = self._route(request, method, path)
        except ApiError as exc:
            return self._error(request, exc)
        except Exception:  # noqa: BLE001 - a bug must answer 500 JSON, never hang the client
            self.log.exception("request failed", path=path, method=method)
            return self._error(request, ApiError(500, "internal_error", "The gateway failed to answer."))
        if isinstance(result, Deferred):
            result.addCallbacks(self._finish, self._fail, callbackArgs=(request,), errbackArgs=(request,))
            return NOT_DONE_YET
        status, body = result
        return self._body(request, status, body)

    def _body(self, request, status: int, body) -> bytes:
        data = dumps(body)
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", b"%d" % len(data))
        return data

    def _error(self, request, exc: ApiError) -> bytes:
        for name, value in exc.headers.items():
            request.setHeader(name.encode(), value.encode())
        return self._body(request, exc.status, exc.body())

    def _finish(self, result, request) -> None:
        if request._disconnected:
            return
        status, body = result
        request.write(self._body(request, status, body))
        request.finish()

    def _fail(self, failure: Failure, request) -> None:
        if request._disconnected:
            return
        if failure.check(ApiError):
            out = self._error(request, failure.value)
        else:
            self.log.error("request failed", error=failure.getErrorMessage(), path=request.path.decode("ascii", "replace"))
            out = self._error(request, ApiError(503, "unavailable", "The message could not be stored; nothing was accepted."))
        request.write(out)
        request.finish()

    def _account(self, request):
        header = request.getHeader(b"authorization") or b""
        scheme, _, key = header.decode("latin-1").partition(" ")
        account = self.gateway.config.account_for_key(key.strip()) if scheme.lower() == "bearer" and key else None
        if account is None:
            raise ApiError(401, "unauthorized", "A valid API key is needed: Authorization: Bearer <key>.",
                           headers={"WWW-Authenticate": 'Bearer realm="smsgw"'})
        return account

    def _admin(self, request) -> None:
        """No key or an unknown key → 401; a customer's key → 403 (SPEC §11)."""
        header = request.getHeader(b"authorization") or b""
        scheme, _, key = header.decode("latin-1").partition(" ")
        key = key.strip()
        if scheme.lower() == "bearer" and key and self.gateway.config.is_admin_key(key):
            return
        if scheme.lower() == "bearer" and key and self.gateway.config.account_for_key(key) is not None:
            raise ApiError(403, "forbidden", "This endpoint needs an admin key.")
        raise ApiError(401, "unauthorized", "A valid admin key is needed: Authorization: Bearer <key>.",
                       headers={"WWW-Authenticate": 'Bearer realm="smsgw-admin"'})

    def _json(self, request):
        data = request.content.read(MAX_BODY + 1)
        if len(data) > MAX_BODY:
            raise ApiError(413, "too_large", f"The request body is over {MAX_BODY} bytes.")
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None

    # -- routes ------------------------------------------------------------------------------
    def _route(self, request, method: str, path: str):
        if path == "/v1/messages":
            if method == "POST":
                return self.post_messages(request)
            if method == "GET":
                return self.list_messages(request)
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.")
        if path == "/v1/inbound":
            if method == "GET":
                return self.inbound(request)
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.")
        match = _MESSAGE_PATH.match(path)
        if match:
            if method == "GET":
                return self.get_message(request, match.group(1))
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.")
        match = _SIM_MO_PATH.match(path)
        if match and method == "POST":
            return self.inject_mo(request, match.group(1))
        if path == "/healthz" and method == "GET":
            return 200, {"status": "ok"}
        if path == "/readyz" and method == "GET":
            ready, reasons = self.gateway.readiness()
            return (200 if ready else 503), {"ready": ready, "problems": reasons}
        raise ApiError(404, "not_found", "No such resource.")

    def post_messages(self, request):
        account = self._account(request)
        body = self._json(request)
        gw = self.gateway
        messages = build_messages(body, account, gw.config, gw.clock.seconds())
        d = maybeDeferred(gw.pipeline.accept, messages)
        d.addCallback(lambda ms: (202, {"messages": [
            {"id": m.id, "to": m.to, "status": m.status.value, "parts": m.parts} for m in ms]}))
        return d

    def get_message(self, request, message_id: str):
        account = self._account(request)
        d = self.gateway.store.get(message_id)

        def found(m):
            if m is None or m.account != account.name:
                raise ApiError(404, "not_found", "No such message.")
            return 200, render_message(m)

        d.addCallback(found)
        return d

    def list_messages(self, request):
        """Status changes of this account's messages, in the order they changed (each message
        once, at its last change), from ``cursor`` on."""
        from policies.numbers import InvalidNumber, normalize_msisdn
        from smscore.model import Status
        from smscore.submission import parse_rfc3339

        account = self._account(request)
        params = _query(request)
        after, limit = _page(params, {"cursor", "limit", "status", "to", "updated_since"})
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
        d = self.gateway.store.updates(account.name, after, limit, status=status, to=to, updated_since=since)
        d.addCallback(lambda rows: (200, {
            "messages": [render_message(m, events=False) for _, m in rows],
            "next_cursor": str(rows[-1][0] if rows else after)}))
        return d

    def inbound(self, request):
        """MO for this account's keywords, oldest first, from ``cursor`` on."""
        from smscore.mo import mo_push_body

        account = self._account(request)
        after, limit = _page(_query(request), {"cursor", "limit"})
        d = self.gateway.store.inbox(account.name, after, limit)
        d.addCallback(lambda mos: (200, {"messages": [mo_push_body(m) for m in mos],
                                         "next_cursor": str(mos[-1].seq if mos else after)}))
        return d

    def inject_mo(self, request, operator: str):
        """Ops/demo: make a simulated operator deliver an MO to the gateway, as a phone would."""
        self._admin(request)
        body = self._json(request)
        sim = self.gateway.sims.get(operator)
        if sim is None:
            raise ApiError(404, "not_found", f"There is no simulated operator {operator!r}.")
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
        for field in ("from", "to", "text"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise ApiError(400, "invalid_request", f"Field {field!r} is required and must be a string.", field)
        d = sim.inject_mo(body["from"], body["to"], body["text"])
        d.addCallback(lambda outcome: (202, {"operator": operator, "outcome": outcome}))
        return d
