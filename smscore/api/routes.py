"""Which path goes where: the API's one leaf resource, its route table, and ``api_factory``.

One leaf resource with a hand-written table rather than a tree of resources keeps the hot path
short: ``POST /v1/messages`` is one comparison and one function call away from ``render``. The
handlers live in ``customer`` and ``admin``; this module only picks one and writes what it gives
back (through ``render``).
"""

from __future__ import annotations

import hmac
import re

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from connectors.http_server import HTTPServerFactory, Limits
from smscore import console
from smscore.api import admin, customer, customer_lookups, lookups, openapi
from smscore.api.auth import AccountRateLimit, require_admin
from smscore.api.inputs import MAX_BODY
from smscore.api.render import error, error_body, fail, finish, json_body
from smscore.errors import ApiError
from smscore.logs import AccessLog, get_logger

_MESSAGE_PATH = re.compile(r"^/v1/messages/([0-9a-f]{1,64})$")
_SIM_MO_PATH = re.compile(r"^/v1/admin/operators/([A-Za-z0-9_.-]{1,64})/mo$")
_ADMIN_MESSAGE = re.compile(r"^/v1/admin/messages/([0-9a-f]{1,64})/(approve|refuse)$")
_ADMIN_ACCOUNT = re.compile(r"^/v1/admin/accounts/([A-Za-z0-9_-]{1,64})/(pause|resume|topup)$")


def api_factory(gateway, clock, forwarder=None, internal_token: str | None = None) -> HTTPServerFactory:
    """The API on the lean HTTP/1.1 server (connectors.http_server): an access log line per request
    (``ApiResource.render``), JSON errors for the server's own refusals (SPEC §15 limits).
    With a ``forwarder`` (an API worker, smscore.supervisor), requests other than the customers'
    busy ones go to the main worker. With an ``internal_token`` (the main worker's loopback
    listener), the routes the API workers call are there too (``INTERNAL_CANCEL``), for requests
    that bear the token."""
    return HTTPServerFactory(ApiResource(gateway, forwarder, internal_token), clock=clock, error_body=error_body,
                             limits=Limits(max_body=MAX_BODY))


#: the main worker's loopback listener only: a cancel an API worker's ESME asked for (SPEC §13)
INTERNAL_CANCEL = "/internal/v1/cancel"
TOKEN_HEADER = b"x-smsgw-node-token"


#: what an API worker answers itself (the rest is the main worker's: admin, cancel, readiness)
_SERVED_BY_ANY = {("POST", "/v1/messages"), ("GET", "/v1/messages"), ("GET", "/v1/inbound"),
                  ("GET", "/v1/account"), ("GET", "/v1/messages/export"), ("GET", "/healthz"),
                  ("GET", "/v1/openapi.json")}


def _served_by_any(method: str, path: str) -> bool:
    return ((method, path) in _SERVED_BY_ANY or (method == "GET" and _MESSAGE_PATH.match(path) is not None)
            or console.is_console(path))


def _not_allowed(method: str, path: str, *allowed: str) -> ApiError:
    """405 with the ``Allow`` header RFC 9110 asks for."""
    return ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}.",
                    headers={"Allow": ", ".join(allowed)})


class ApiResource(Resource):
    """The whole API as one leaf resource with a route table."""

    isLeaf = True

    def __init__(self, gateway, forwarder=None, internal_token: str | None = None) -> None:
        super().__init__()
        self.gateway = gateway
        self.forwarder = forwarder
        self.internal_token = internal_token
        self.rate_limit = AccountRateLimit(gateway.clock, gateway.rate_buckets)
        self.log = get_logger(component="api")
        self.access = AccessLog(lambda: gateway.config, gateway.clock)

    def render(self, request):
        """Answer, and write the request's access log line once it is answered (``AccessLog``)."""
        started = self.access.start()
        out = self._answer(request, started)
        if out is not NOT_DONE_YET:
            self.access.answered(request, started)
        return out

    def _internal_route(self, request, method: str, path: str):
        """What the main worker does for the API workers; nowhere else, and only with the token."""
        token = request.getHeader(TOKEN_HEADER) or b""
        if (not self.internal_token or path != INTERNAL_CANCEL
                or not hmac.compare_digest(token, self.internal_token.encode("ascii"))):
            raise ApiError(404, "not_found", "No such resource.")
        if method != "POST":
            raise _not_allowed(method, path, "POST")
        return customer.cancel_for_worker(self.gateway, request)

    def _answer(self, request, started):
        try:
            path = request.path.decode("ascii")
        except UnicodeDecodeError:
            return error(request, ApiError(404, "not_found", "No such resource."))
        method = request.method.decode("ascii", "replace")
        if method == "HEAD":  # RFC 9110 9.3.2: a GET whose answer's body the HTTP server leaves out
            method = "GET"
        try:
            result = self._route(request, method, path)
        except ApiError as exc:
            return error(request, exc)
        except Exception:  # noqa: BLE001 - a bug must answer 500 JSON, never hang the client
            self.log.exception("request failed", path=path, method=method)
            return error(request, ApiError(500, "internal_error", "The gateway failed to answer."))
        if isinstance(result, bytes):  # a console file (smscore.console), headers already set
            return result
        if isinstance(result, Deferred):
            result.addCallbacks(finish, fail, callbackArgs=(request,), errbackArgs=(request, self.log))
            if self.forwarder is None or _served_by_any(method, path):  # else the main worker logs it
                result.addBoth(self.access.after, request, started)
            return NOT_DONE_YET
        status, body = result
        return json_body(request, status, body)

    def _route(self, request, method: str, path: str):
        gw = self.gateway
        if path.startswith("/internal/"):
            return self._internal_route(request, method, path)
        if self.forwarder is not None and not _served_by_any(method, path):
            return self.forwarder.forward(request)
        if console.is_console(path):  # the web console's files (SPEC §14)
            return console.answer(request, method, path)
        if path == "/v1/messages":
            if method == "POST":
                return customer.post_messages(gw, self.rate_limit, request)
            if method == "GET":
                return customer.list_messages(gw, request)
            raise _not_allowed(method, path, "GET", "POST")
        if path == "/v1/inbound":
            if method == "GET":
                return customer.inbound(gw, request)
            raise _not_allowed(method, path, "GET")
        if path == "/v1/messages/export":
            if method == "GET":
                return customer.export(gw, request)
            raise _not_allowed(method, path, "GET")
        lookup = customer_lookups.handler_for(path)  # before _MESSAGE_PATH: /v1/messages/search
        if lookup is not None:
            if method == "GET":
                return lookup(gw, request)
            raise _not_allowed(method, path, "GET")
        match = _MESSAGE_PATH.match(path)
        if match:
            if method == "GET":
                return customer.get_message(gw, request, match.group(1))
            if method == "DELETE":
                return customer.cancel(gw, request, match.group(1))
            raise _not_allowed(method, path, "GET", "DELETE")
        if path == "/v1/account":
            if method == "GET":
                return customer.account_info(gw, request)
            raise _not_allowed(method, path, "GET")
        if path.startswith("/v1/admin/"):
            return self._admin_route(request, method, path)
        if path in ("/healthz", "/readyz", "/v1/openapi.json") and method != "GET":  # HEAD is GET here
            raise _not_allowed(method, path, "GET", "HEAD")
        if path == "/healthz":
            return 200, {"status": "ok"}
        if path == "/v1/openapi.json":  # the API's own description (SPEC §14)
            return openapi.answer()
        if path == "/readyz":
            ready, reasons, more = gw.readiness()
            return (200 if ready else 503), {"ready": ready, "problems": reasons, **more}
        raise ApiError(404, "not_found", "No such resource.")

    def _admin_route(self, request, method: str, path: str):
        gw = self.gateway
        match = _SIM_MO_PATH.match(path)
        if match and method == "POST":
            return admin.inject_mo(gw, request, match.group(1))
        require_admin(gw.config, request)
        match = _ADMIN_MESSAGE.match(path)
        if match and method == "POST":
            return admin.act_on_message(gw, request, match.group(1), match.group(2))
        match = _ADMIN_ACCOUNT.match(path)
        if match and method == "POST":
            name, action = match.groups()
            if action == "topup":
                return admin.topup(gw, request, name)
            return admin.set_paused(gw, request, name, action == "pause")
        if path == "/v1/admin/stoplist" and method == "POST":
            return admin.stoplist(gw, request)
        if path == "/v1/admin/binds" and method == "GET":
            return admin.binds(gw, request)
        if path == "/v1/admin/reload" and method == "POST":
            return admin.reload(gw, request)
        if method == "GET":  # admin look-ups (SPEC §14)
            found = lookups.route(gw, request, path)
            if found is not None:
                return found
        raise ApiError(404, "not_found", "No such resource.")
