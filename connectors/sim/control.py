"""The simulated SMSC's HTTP control API: ``POST /mo`` makes a "handset" send an MO.

Why HTTP: a standalone ``smsgw smsc-sim`` runs in its own process, and ``smsgw mo --sim`` (or curl)
must reach it to play the subscriber. Errors have the gateway API's shape (SPEC §4),
``{"error": {"code", "message", "field"?}}``, so one client reads both.

``POST /mo {"from": "46701234567", "to": "72550", "text": "DEMO hi"}`` → ``202 {"outcome": …}``
once the ESME answered (or at once when nobody is bound: ``"no receiver bound"``); the outcome is
``SimulatedSMSC.inject_mo``'s. Bad JSON → 400 ``invalid_json``; a field missing, not a string or
not sendable → 400 ``invalid_request`` naming the field; an unknown path → 404 ``not_found``.
"""

from __future__ import annotations

import json

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from connectors.sim.mo import InvalidMO

__all__ = ["MAX_BODY", "control_site"]

MAX_BODY = 64 * 1024
_FIELDS = ("from", "to", "text")


def _json(request, code: int, body: dict) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _error(request, code: int, error: str, message: str, field: str | None = None) -> bytes:
    detail = {"code": error, "message": message}
    if field is not None:
        detail["field"] = field
    return _json(request, code, {"error": detail})


class _NotFound(Resource):
    isLeaf = True

    def render(self, request):
        return _error(request, 404, "not_found", "No such resource: the control API has POST /mo.")


class _Root(Resource):
    def getChild(self, path, request):
        return _NotFound()

    def render(self, request):
        return _NotFound().render(request)


class _MO(Resource):
    isLeaf = True

    def __init__(self, sim) -> None:
        super().__init__()
        self.sim = sim

    def render(self, request):
        if request.method != b"POST":
            request.setHeader(b"Allow", b"POST")
            return _error(request, 405, "method_not_allowed", "Use POST /mo.")
        raw = request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return _error(request, 413, "too_large", f"The body is over {MAX_BODY} octets.")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(request, 400, "invalid_json", "The body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(request, 400, "invalid_request", "The body must be a JSON object.")
        for field in _FIELDS:
            if not isinstance(body.get(field), str):
                return _error(request, 400, "invalid_request",
                              f"Field {field!r} is required and must be a string.", field)
        try:
            d = self.sim.inject_mo(body["from"], body["to"], body["text"])
        except InvalidMO as exc:
            return _error(request, 400, "invalid_request", str(exc), exc.field)
        gone = []
        request.notifyFinish().addErrback(gone.append)

        def answer(outcome: str) -> None:
            if not gone:
                request.write(_json(request, 202, {"outcome": outcome}))
                request.finish()

        def failed(failure) -> None:
            if not gone:
                request.write(_error(request, 500, "internal", failure.getErrorMessage()))
                request.finish()

        d.addCallbacks(answer, failed)
        return NOT_DONE_YET


def control_site(sim) -> Site:
    """The control API of ``sim`` as a Site to listen with (``reactor.listenTCP(port, site)``)."""
    root = _Root()
    root.putChild(b"mo", _MO(sim))
    return Site(root)
