"""An HLR/MNP number look-up over HTTP (issue 14): ask a service which network serves a number now.

Why a connector: the question is I/O with an outside service, and whether it is worth asking, what
the answer means for the choice of operator and how long it is kept are decided elsewhere
(``policies.number_lookup``, ``smscore.number_lookup``). This module only asks, and says plainly
when it got no usable answer.

Theory of operation
-------------------
- The configured URL (``[lookup] url``) is a template with ``{number}`` once, in its path or query.
  It is parsed once (``connectors.http_client.target``); each look-up splices the number into the
  request target, URL-quoted whatever it holds, and sends ``GET`` on a kept-alive connection of the
  shared lean HTTP/1.1 client (``connectors.http_client.Pool``), one exchange per connection at a
  time. A reused idle connection the service had closed before any byte of the answer came is
  replaced once by a fresh one (a GET is safe to send again).
- The answer must be ``200`` with a JSON object body whose ``"network"`` is a string (the network,
  e.g. MCC-MNC ``"24001"``) or ``null`` (the service does not know the number, or it is absent):
  ``look_up`` fires with that string or None.
- Anything else fails the Deferred with ``LookupFailed(reason)``: another status (``"http 404"``),
  a body that is not a JSON object, ``"network"`` missing or of another type, a body over
  ``max_answer_bytes``, and every network failure (``"connection refused"``, ``"timeout"``, ...,
  named as pushes name them: ``connectors.http_exchange``). One timer covers the whole look-up: connecting, waiting,
  reading; when it fires the connection is aborted.
- Cancelling the Deferred aborts the look-up (the usual ``CancelledError``).

No address checks (SPEC §15's are for customers' URLs): operators configure this URL. How
connections are opened is injectable through ``pool`` (a ``Pool`` whose ``endpoint_for`` connects
in memory, for tests without sockets).
"""

from __future__ import annotations

from urllib.parse import quote

import orjson
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure

from connectors.http_client import Answer, Pool, default_endpoint_for, target
from connectors.http_exchange import Exchange
from connectors.http_push import USER_AGENT

__all__ = ["HttpNumberLookup", "LookupFailed", "PLACEHOLDER", "parse_answer"]

#: Where the URL template takes the number.
PLACEHOLDER = "{number}"
#: Stands in for the number while the template is parsed: letters only, so quoting keeps it whole.
_MARK = "SmsgwLookupNumberMark"


class LookupFailed(Exception):
    """No usable answer came: ``reason`` says why ("timeout", "http 500", "answer not JSON", ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HttpNumberLookup:
    """Asks an HTTP look-up service which network serves a number: ``look_up(number)`` →
    Deferred[str | None] (the network, or None when the service does not know the number), or a
    ``LookupFailed`` failure. ``close()`` at shutdown closes the idle connections."""

    def __init__(self, reactor, url_template: str, timeout: float, pool: Pool | None = None, *,
                 max_answer_bytes: int = 64 * 1024) -> None:
        if url_template.count(PLACEHOLDER) != 1:
            raise ValueError(f"the look-up URL must contain {PLACEHOLDER} exactly once")
        parsed = target(url_template.replace(PLACEHOLDER, _MARK))
        parts = parsed.target.split(_MARK.encode("ascii")) if parsed is not None else []
        if len(parts) != 2:
            raise ValueError(f"the look-up URL must be http(s) with {PLACEHOLDER} in its path or query")
        self._reactor = reactor
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self._key = parsed.key
        self._before = b"GET " + parts[0]
        self._after = (parts[1] + b" HTTP/1.1\r\nHost: " + parsed.authority
                       + b"\r\nAccept: application/json\r\nUser-Agent: " + USER_AGENT.encode("ascii")
                       + b"\r\n\r\n")
        self._pool = pool if pool is not None else Pool(default_endpoint_for(reactor, timeout))

    def request(self, number: str) -> bytes:
        """The GET request that asks for ``number`` (quoted: no character of it can change the URL)."""
        return self._before + quote(number, safe="").encode("ascii") + self._after

    def look_up(self, number: str) -> Deferred:
        """Deferred[str | None]: the network serving ``number``; fails with ``LookupFailed``."""
        ask = _Ask(self)
        ask.run(self._key, self.request(number))
        return ask.result

    def close(self) -> Deferred:
        """Close idle connections; fires when they are closed."""
        return self._pool.close()


class _Ask(Exchange):
    """One look-up in flight (``Exchange``), ending with the network or ``LookupFailed``."""

    def __init__(self, client: HttpNumberLookup) -> None:
        super().__init__(client._reactor, client._pool, client.timeout, client.max_answer_bytes)

    def answered(self, answer: Answer) -> None:
        if answer.status != 200:
            self.failed(f"http {answer.status}")
        elif answer.too_large:
            self.failed(f"answer over {self.max_answer_bytes} bytes")
        else:
            try:
                network = parse_answer(b"".join(answer.chunks))
            except LookupFailed as exc:
                self.failed(exc.reason)
            else:
                self.cancel_timer()
                self.result.callback(network)

    def cut(self, status: int, why: str) -> None:
        if why != "lost":
            self.failed(why)
        else:
            self.failed("answer cut short" if status == 200 else f"http {status}")

    def failed(self, reason: str) -> None:
        self.cancel_timer()
        if not self.result.called:
            self.result.errback(Failure(CancelledError() if reason == "cancelled" else LookupFailed(reason)))


def parse_answer(body: bytes) -> str | None:
    """The network of a 200 answer's body: ``{"network": "24001"}`` → "24001", ``{"network": null}``
    → None; anything else raises ``LookupFailed`` saying what was wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise LookupFailed("answer not JSON") from None
    if not isinstance(data, dict):
        raise LookupFailed("answer not a JSON object")
    if "network" not in data:
        raise LookupFailed('answer without "network"')
    network = data["network"]
    if network is not None and not isinstance(network, str):
        raise LookupFailed(f'"network" must be a string or null, got {type(network).__name__}')
    return network
