"""What the API answers: compact JSON, the CSV export, error bodies, and the store's refusals as API errors.

Every answer leaves through here, so the shape of a reply (``{"error": {"code", "message",
"field"?}}`` for errors, ``application/json`` with a content-length for the rest) is decided in
one place. The functions write onto a twisted.web-style request and know nothing of routes.
"""

from __future__ import annotations

import re
from decimal import Decimal

import orjson

from twisted.python.failure import Failure

from connectors.smpp import halves
from policies.admission import account_cost
from smscore.errors import ApiError
from smscore.model import Message, rfc3339
from smscore.store.rules import CommitUnknown
from smscore.workers import Relayed


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(obj) -> bytes:
    """Compact UTF-8 JSON (orjson: the API's answers are on the hot path)."""
    return orjson.dumps(obj, default=_json_default)


def render_message(m: Message, events: bool = True) -> dict:
    """A message as ``GET /v1/messages/{id}`` shows it (``GET /v1/messages`` lists it without
    its events). A part an ESME concatenated may end in half a character, stored as a placeholder
    (``connectors.smpp.halves``): shown as U+FFFD, as any half alone is."""
    out = {
        "id": m.id, "to": m.to, "from": m.sender, "text": halves.whole(m.text) if m.udh else m.text,
        "status": m.status.value,
        "parts": m.parts, "profile": m.profile, "reference": m.reference, "operator": m.operator,
        "cost": m.cost, "error": m.error, "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at), "send_at": rfc3339(m.send_at),
    }
    if events:
        out["events"] = [{"at": rfc3339(e.at), "status": e.status.value, "operator": e.operator,
                          "detail": e.detail, "final": e.final} for e in m.events]
    return out


#: an attempt's operator cost in an event's detail ("ids=… cost=0.1", smscore.transitions.on_submitted)
_OPERATOR_COST = re.compile(r" ?\bcost=\S+")


def render_for_customer(m: Message, account, events: bool = True) -> dict:
    """``render_message`` as the message's own account sees it (SPEC §14: a customer key sees no
    operators' costs): ``cost`` is what the message costs the account (``customer_cost``), and the
    events do not say what an attempt cost the gateway."""
    out = render_message(m, events)
    out["cost"] = customer_cost(m, account)
    if events:
        for e in out["events"]:
            if "cost=" in e["detail"]:
                e["detail"] = _OPERATOR_COST.sub("", e["detail"])
    return out


def customer_cost(m: Message, account) -> Decimal:
    """What ``m`` costs ``account`` (``policies.admission.account_cost``); a reply the gateway
    sent from a shortcode costs it nothing (SPEC §11)."""
    if m.origin != "api" or account is None:
        return Decimal(0)
    return account_cost(prepaid=account.billing == "prepaid", charged=m.charged, price=account.prices.lookup(m.to),
                        parts=m.parts, tried=m.tried, status=m.status.value)


class CsvAnswer:
    """A CSV answer (the route's result when it is not JSON)."""

    COLUMNS = ("id", "created_at", "updated_at", "to", "from", "status", "parts", "profile", "operator", "cost",
               "charged", "reference", "error")

    def __init__(self, messages, account) -> None:
        self.messages = messages
        self.account = account  # whose export: ``cost`` is what each message costs it

    def render(self) -> bytes:
        import csv
        import io

        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(self.COLUMNS)
        for m in self.messages:
            w.writerow([m.id, rfc3339(m.created_at), rfc3339(m.updated_at), m.to, m.sender, m.status.value, m.parts,
                        m.profile, m.operator or "", customer_cost(m, self.account), m.charged,
                        m.reference or "", m.error or ""])
        return out.getvalue().encode("utf-8")


def store_errors(failure):
    """The store's refusals as API errors (anything else stays a failure: 503)."""
    from smscore.backlog import Backlogged
    from smscore.store.accounts import Conflict, InsufficientBalance, NoPrice, NotFound
    from smscore.store.rules import BeingSubmitted

    if failure.check(Backlogged):
        raise ApiError(503, "unavailable", "The gateway's backlog is full (max_backlog); nothing was stored. "
                       "Send again later.", headers={"Retry-After": str(failure.value.retry_after)})
    if failure.check(InsufficientBalance):
        e = failure.value
        raise ApiError(402, "insufficient_balance",
                       f"The balance {e.balance} does not cover this request ({e.needed}); nothing was sent.")
    if failure.check(NoPrice):
        raise ApiError(422, "invalid_number", f"This account has no price for {failure.value.number}.", "to")
    if failure.check(NotFound):
        raise ApiError(404, "not_found", "No such message.")
    if failure.check(BeingSubmitted):
        raise ApiError(409, "conflict", "The message is being submitted to an operator: it can no longer be changed.")
    if failure.check(Conflict):
        status = failure.value.status
        if status is None:
            raise ApiError(409, "idempotency_conflict",
                           "This Idempotency-Key was used with another request body.")
        raise ApiError(409, "conflict", f"The message is {status.value}: it can no longer be changed.")
    return failure


def error_body(status: int, code: str, message: str) -> bytes:
    """The body of the HTTP server's own refusals (connectors.http_server), shaped as the API's."""
    return dumps(ApiError(status, code, message).body())


def json_body(request, status: int, body) -> bytes:
    """Set the status and JSON headers on ``request``; the encoded body to write."""
    data = dumps(body)
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"content-length", b"%d" % len(data))
    return data


def error(request, exc: ApiError) -> bytes:
    """An ``ApiError`` as the answer, with its headers (``WWW-Authenticate``, ``Retry-After``)."""
    for name, value in exc.headers.items():
        request.setHeader(name.encode(), value.encode())
    return json_body(request, exc.status, exc.body())


def finish(result, request) -> None:
    """Write a handler's late result: a relayed answer (API worker), a CSV, or ``(status, body)``."""
    if request._disconnected:
        return
    if isinstance(result, Relayed):
        request.setResponseCode(result.status)
        for name, value in result.headers:
            request.setHeader(name, value)
        request.write(result.body)
        request.finish()
        return
    if isinstance(result, CsvAnswer):
        data = result.render()
        request.setResponseCode(200)
        request.setHeader(b"content-type", b"text/csv; charset=utf-8")
        request.setHeader(b"content-length", b"%d" % len(data))
        request.write(data)
        request.finish()
        return
    status, body = result
    request.write(json_body(request, status, body))
    request.finish()


def fail(failure: Failure, request, log) -> None:
    """Write a handler's late failure: its ``ApiError``, or 503 (logged) for anything else."""
    if request._disconnected:
        return
    if failure.check(ApiError):
        out = error(request, failure.value)
    elif failure.check(CommitUnknown):
        log.error("request failed", error=failure.getErrorMessage(), path=request.path.decode("ascii", "replace"))
        out = error(request, ApiError(503, "unavailable", "The store lost its connection while it committed: the "
                                      "message may have been stored. Send the request again with the same "
                                      "Idempotency-Key to be answered once for both."))
    else:
        log.error("request failed", error=failure.getErrorMessage(), path=request.path.decode("ascii", "replace"))
        out = error(request, ApiError(503, "unavailable", "The message could not be stored; nothing was accepted."))
    request.write(out)
    request.finish()
