"""HTTP API v1 (SPEC §4): JSON in, JSON out, bearer keys per account.

Served by the lean HTTP/1.1 server of ``connectors.http_server`` (``api_factory``); the resource is a
twisted.web leaf resource, so twisted.web can serve it too. A small router over one leaf resource
keeps the hot path short (``POST /v1/messages`` is the
gateway's busiest call). Handlers return a dict, a Deferred of one, or raise ``ApiError``; every
error leaves as ``{"error": {"code", "message", "field"?}}``. ``202`` is written only after the
store has committed the messages (the pipeline's accept Deferred fires after the commit).
"""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal

import orjson

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from connectors.http_server import HTTPServerFactory, Limits
from smscore.errors import ApiError
from smscore.logs import get_logger
from smscore.model import Message, rfc3339
from smscore.submission import build_messages
from smscore.workers import Relayed

MAX_BODY = 1 << 20  # 1 MiB: a list of 1000 numbers and a long text fit many times over
_MESSAGE_PATH = re.compile(r"^/v1/messages/([0-9a-f]{1,64})$")
_SIM_MO_PATH = re.compile(r"^/v1/admin/operators/([A-Za-z0-9_.-]{1,64})/mo$")
_ADMIN_MESSAGE = re.compile(r"^/v1/admin/messages/([0-9a-f]{1,64})/(approve|refuse)$")
_ADMIN_ACCOUNT = re.compile(r"^/v1/admin/accounts/([A-Za-z0-9_-]{1,64})/(pause|resume|topup)$")


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(obj) -> bytes:
    """Compact UTF-8 JSON (orjson: the API's answers are on the hot path)."""
    return orjson.dumps(obj, default=_json_default)


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


def _store_errors(failure):
    """The store's refusals as API errors (anything else stays a failure: 503)."""
    from smscore.store.accounts import Conflict, InsufficientBalance, NoPrice, NotFound

    if failure.check(InsufficientBalance):
        e = failure.value
        raise ApiError(402, "insufficient_balance",
                       f"The balance {e.balance} does not cover this request ({e.needed}); nothing was sent.")
    if failure.check(NoPrice):
        raise ApiError(422, "invalid_number", f"This account has no price for {failure.value.number}.", "to")
    if failure.check(NotFound):
        raise ApiError(404, "not_found", "No such message.")
    if failure.check(Conflict):
        status = failure.value.status
        if status is None:
            raise ApiError(409, "idempotency_conflict",
                           "This Idempotency-Key was used with another request body.")
        raise ApiError(409, "conflict", f"The message is {status.value}: it can no longer be changed.")
    return failure


def _time_param(params: dict[str, str], name: str, default: float) -> float:
    from smscore.submission import parse_rfc3339

    value = params.get(name)
    if value is None:
        return default
    try:
        if len(value) == 10:  # a date: midnight UTC
            value += "T00:00:00Z"
        return parse_rfc3339(value)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name} must be an RFC 3339 date-time or a date.", name) from None


class _CSV:
    """A CSV answer (the route's result when it is not JSON)."""

    COLUMNS = ("id", "created_at", "updated_at", "to", "from", "status", "parts", "profile", "operator", "cost",
               "charged", "reference", "error")

    def __init__(self, messages) -> None:
        self.messages = messages

    def render(self) -> bytes:
        import csv
        import io

        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(self.COLUMNS)
        for m in self.messages:
            w.writerow([m.id, rfc3339(m.created_at), rfc3339(m.updated_at), m.to, m.sender, m.status.value, m.parts,
                        m.profile, m.operator or "", m.cost, m.charged, m.reference or "", m.error or ""])
        return out.getvalue().encode("utf-8")


def _error_body(status: int, code: str, message: str) -> bytes:
    return dumps(ApiError(status, code, message).body())


def api_factory(gateway, clock, forwarder=None) -> HTTPServerFactory:
    """The API on the lean HTTP/1.1 server (connectors.http_server): no access log (structlog lines
    about each message are the log), JSON errors for the server's own refusals (SPEC §15 limits).
    With a ``forwarder`` (an API worker, smscore.supervisor), requests other than the customers'
    busy ones go to the main worker."""
    return HTTPServerFactory(ApiResource(gateway, forwarder), clock=clock, error_body=_error_body,
                             limits=Limits(max_body=MAX_BODY))


#: what an API worker answers itself (the rest is the main worker's: admin, cancel, readiness)
_SERVED_BY_ANY = {("POST", "/v1/messages"), ("GET", "/v1/messages"), ("GET", "/v1/inbound"),
                  ("GET", "/v1/account"), ("GET", "/v1/messages/export"), ("GET", "/healthz")}


def _served_by_any(method: str, path: str) -> bool:
    return (method, path) in _SERVED_BY_ANY or (method == "GET" and _MESSAGE_PATH.match(path) is not None)


class ApiResource(Resource):
    """The whole API as one leaf resource with a route table."""

    isLeaf = True

    def __init__(self, gateway, forwarder=None) -> None:
        super().__init__()
        self.gateway = gateway
        self.forwarder = forwarder
        self._buckets: dict[str, tuple[float, float]] = {}
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
        if isinstance(result, Relayed):
            request.setResponseCode(result.status)
            for name, value in result.headers:
                request.setHeader(name, value)
            request.write(result.body)
            request.finish()
            return
        if isinstance(result, _CSV):
            data = result.render()
            request.setResponseCode(200)
            request.setHeader(b"content-type", b"text/csv; charset=utf-8")
            request.setHeader(b"content-length", b"%d" % len(data))
            request.write(data)
            request.finish()
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
            return orjson.loads(data)  # strict: UTF-8 only, no NaN, nesting at most 1024 deep
        except orjson.JSONDecodeError:
            raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None

    # -- routes ------------------------------------------------------------------------------
    def _route(self, request, method: str, path: str):
        if self.forwarder is not None and not _served_by_any(method, path):
            return self.forwarder.forward(request)
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
        if path == "/v1/messages/export":
            if method == "GET":
                return self.export(request)
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.")
        match = _MESSAGE_PATH.match(path)
        if match:
            if method == "GET":
                return self.get_message(request, match.group(1))
            if method == "DELETE":
                return self.cancel(request, match.group(1))
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.")
        if path == "/v1/account":
            if method == "GET":
                return self.account(request)
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.")
        if path.startswith("/v1/admin/"):
            return self.admin(request, method, path)
        if path == "/healthz" and method == "GET":
            return 200, {"status": "ok"}
        if path == "/readyz" and method == "GET":
            ready, reasons = self.gateway.readiness()
            return (200 if ready else 503), {"ready": ready, "problems": reasons}
        raise ApiError(404, "not_found", "No such resource.")

    def _rate_limit(self, account) -> None:
        """``tps`` API submissions per second per account (a bucket holding one second's worth)."""
        if not account.tps:
            return
        now = self.gateway.clock.seconds()
        tokens, last = self._buckets.get(account.name, (float(account.tps), now))
        tokens = min(float(account.tps), tokens + (now - last) * account.tps)
        if tokens < 1.0:
            self._buckets[account.name] = (tokens, now)
            wait = max(1, int((1.0 - tokens) / account.tps + 0.999))
            raise ApiError(429, "rate_limited", f"At most {account.tps} requests per second for this account.",
                           headers={"Retry-After": str(wait)})
        self._buckets[account.name] = (tokens - 1.0, now)

    def post_messages(self, request):
        account = self._account(request)
        self._rate_limit(account)
        body = self._json(request)
        gw = self.gateway
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
            digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
            once = {"account": account.name, "key": key, "body_hash": digest, "render": render}
        d = maybeDeferred(gw.pipeline.accept, messages, once)
        d.addCallbacks(lambda got: (202, got if isinstance(got, dict) else render(got)), _store_errors)
        return d

    def cancel(self, request, message_id: str):
        account = self._account(request)
        gw = self.gateway
        d = gw.store.act(message_id, "cancel", gw.clock.seconds(), "cancelled by the customer", account=account.name)

        def done(m):
            gw.pipeline.forget([m.id])
            return 200, render_message(m)

        d.addCallbacks(done, _store_errors)
        return d

    def account(self, request):
        account = self._account(request)
        d = self.gateway.store.account_state(account.name)
        d.addCallback(lambda state: (200, {
            "account": account.name, "balance": state[0], "billing": account.billing, "paused": state[1],
            "senders": list(account.senders), "default_sender": account.default_sender,
            "profile": account.profile, "max_parts": min(account.max_parts, self.gateway.config.gateway.max_parts_cap),
            "tps": account.tps or None, "daily_volume_limit": account.daily_volume_limit,
            "approved_domains": list(account.approved_domains), "callback_url": account.callback_url}))
        return d

    def export(self, request):
        """``GET /v1/messages/export?from=&to=``: the account's messages created in [from, to) as CSV."""
        account = self._account(request)
        params = _query(request)
        for name in params:
            if name not in ("from", "to"):
                raise ApiError(400, "invalid_request", f"Unknown parameter {name!r}.", name)
        now = self.gateway.clock.seconds()
        start = _time_param(params, "from", now - 86400.0)
        end = _time_param(params, "to", now + 1.0)
        d = self.gateway.store.export(account.name, start, end)
        d.addCallback(lambda ms: _CSV(ms))
        return d

    # -- admin ---------------------------------------------------------------------------------
    def admin(self, request, method: str, path: str):
        match = _SIM_MO_PATH.match(path)
        if match and method == "POST":
            return self.inject_mo(request, match.group(1))
        self._admin(request)
        gw = self.gateway
        now = gw.clock.seconds()
        match = _ADMIN_MESSAGE.match(path)
        if match and method == "POST":
            action = match.group(2)
            d = gw.store.act(match.group(1), action, now, f"{action}d by ops")
            d.addCallbacks(lambda m: (200, render_message(m)), _store_errors)
            return d
        match = _ADMIN_ACCOUNT.match(path)
        if match and method == "POST":
            name, action = match.groups()
            if name not in gw.config.accounts:
                raise ApiError(404, "not_found", f"There is no account {name!r}.")
            if action == "topup":
                body = self._json(request)
                amount = body.get("amount") if isinstance(body, dict) else None
                if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
                    raise ApiError(400, "invalid_request", "Field 'amount' must be a number.", "amount")
                try:
                    value = Decimal(str(amount))
                except ArithmeticError:
                    raise ApiError(400, "invalid_request", "Field 'amount' must be a number.", "amount") from None
                if not value.is_finite():
                    raise ApiError(400, "invalid_request", "Field 'amount' must be a number.", "amount")
                d = gw.store.topup(name, value, now)
                d.addCallback(lambda balance: (200, {"balance": balance}))
                return d
            d = gw.store.set_paused(name, action == "pause", now)

            def changed(ms):
                if action == "pause":
                    gw.pipeline.forget([m.id for m in ms])
                else:
                    gw.pipeline.link_ready("")  # claim what was resumed
                return 200, {"account": name, "paused": action == "pause", "messages": len(ms)}

            d.addCallback(changed)
            return d
        if path == "/v1/admin/stoplist" and method == "POST":
            return self.stoplist(request)
        if path == "/v1/admin/binds" and method == "GET":
            return 200, {"operators": [link.describe() for link in gw.links.values()]}
        if path == "/v1/admin/reload" and method == "POST":
            return gw.reload_node().addCallback(lambda result: (200, result))
        raise ApiError(404, "not_found", "No such resource.")

    def stoplist(self, request):
        """``{"numbers": [...], "account"?: name (else the do-not-call list), "remove"?: bool,
        "consent"?: bool (the account's consents instead)}``."""
        from policies.numbers import InvalidNumber, normalize_msisdn

        body = self._json(request)
        if not isinstance(body, dict) or not isinstance(body.get("numbers"), list) or not body["numbers"]:
            raise ApiError(400, "invalid_request", "Field 'numbers' must be a non-empty list.", "numbers")
        account = body.get("account")
        if account is not None and account not in self.gateway.config.accounts:
            raise ApiError(404, "not_found", f"There is no account {account!r}.")
        consent = body.get("consent", False) is True
        if consent and account is None:
            raise ApiError(400, "invalid_request", "A consent belongs to an account.", "account")
        numbers = []
        for i, value in enumerate(body["numbers"]):
            try:
                numbers.append(normalize_msisdn(value if isinstance(value, str) else ""))
            except InvalidNumber as exc:
                raise ApiError(422, "invalid_number", f"numbers[{i}]: {exc}", "numbers") from None
        d = self.gateway.store.stoplist_change(numbers, account=account, remove=body.get("remove", False) is True,
                                               consent=consent, at=self.gateway.clock.seconds())
        d.addCallback(lambda n: (200, {"changed": n, "numbers": len(numbers)}))
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
