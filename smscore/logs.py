"""Structured logs: structlog, one JSON object per line (SPEC §9).

Configured once by the CLI. Every line about a message carries ``message_id``; secrets (passwords,
API keys, HMAC secrets) are never logged: ``redact`` drops any key that looks like one, as a last
line of defence behind not passing them in the first place.

Two more sources join the same stream (docs/monitoring.md):

- Twisted's own log events (an unhandled error in a Deferred, a failed connection, ports and
  factories starting) through ``twisted_event``, an observer of Twisted's global log publisher, so
  that nothing the process says goes to stderr as text beside the JSON lines.
- ``AccessLog``: one line per API request, answered.
"""

from __future__ import annotations

import logging
import re
import sys

import orjson
import structlog
from twisted.logger import LogLevel, formatEvent

_SECRET_KEYS = ("password", "secret", "api_key", "authorization", "token")

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

#: the level ``configure`` set: what ``enabled`` compares with (NOTSET before: structlog's default,
#: which lets everything through, as in tests)
_level = logging.NOTSET

#: key name -> whether it names a secret (the same few names come again on every line)
_is_secret: dict[str, bool] = {}


def redact(_logger, _name, event_dict):
    for key in event_dict:
        secret = _is_secret.get(key)
        if secret is None:
            secret = _is_secret[key] = any(s in key.lower() for s in _SECRET_KEYS)
        if secret:
            event_dict[key] = "[redacted]"
    return event_dict


def _json_line(event_dict, **_kw) -> bytes:
    """One JSON object (orjson; values it cannot encode are written as their str())."""
    return orjson.dumps(event_dict, default=str)


def configure(level: str = "info", fmt: str = "json", stream=None) -> None:
    """Set up structlog for the process: JSON lines (default) or a console renderer for humans; and
    send Twisted's log events there too."""
    global _level
    _level = LEVELS[level]
    stream = stream or sys.stdout
    buffer = getattr(stream, "buffer", None)
    if fmt == "json" and buffer is not None:  # bytes straight to the file: no str round trip
        renderer = structlog.processors.JSONRenderer(serializer=_json_line)
        factory = structlog.BytesLoggerFactory(file=buffer)
    else:
        renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                    else structlog.dev.ConsoleRenderer(colors=False))
        factory = structlog.WriteLoggerFactory(file=stream)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _bridge_twisted()


def get_logger(**context):
    return structlog.get_logger(**context)


def enabled(level: int) -> bool:
    """Whether a line at ``level`` would be written: for a caller that has work to do before it
    logs (the access log, on the hot path), so that a line filtered out costs nothing."""
    return level >= _level


# -- Twisted's log events ------------------------------------------------------------------------
_TWISTED_LEVELS = {LogLevel.debug: "debug", LogLevel.info: "info", LogLevel.warn: "warning",
                   LogLevel.error: "error", LogLevel.critical: "critical"}

#: Twisted's routine info lines about its own listeners and factories: debug here, as the gateway
#: says what it listens on itself ("gateway started").
_ROUTINE = re.compile(r"(Starting|Stopping) factory |\S+ starting on \d+$|\(\w+ Port \d+ Closed\)$"
                      r"|Main loop terminated\.$")

_twisted_log = structlog.get_logger(component="twisted")
_bridged = False


def twisted_event(event: dict) -> None:
    """An ``ILogObserver``: one of Twisted's log events as one structlog line, at its level (the
    routine ones at debug), with ``namespace`` (where it came from) and, for a failure, its
    traceback as ``exception``. Never raises: Twisted would report that to this same observer."""
    try:
        level = _TWISTED_LEVELS.get(event.get("log_level"), "info")
        failure = event.get("log_failure")
        text = formatEvent(event)
        if level == "info" and failure is None and _ROUTINE.match(text):
            level = "debug"
        if not enabled(LEVELS.get(level, logging.CRITICAL)):
            return
        fields = {"namespace": event.get("log_namespace")}
        if failure is not None:
            fields["exception"] = failure.getTraceback()
            text = text or f"{failure.type.__name__}: {failure.getErrorMessage()}"
        getattr(_twisted_log, level)(text, **fields)
    except Exception:  # noqa: BLE001 - a log line must never break what logged it
        pass


def _bridge_twisted() -> None:
    """Make ``twisted_event`` Twisted's log observer, once per process. What Twisted logged before
    (kept in its start-up buffer) comes out first; Python's warnings come this way too."""
    global _bridged
    if _bridged:
        return
    _bridged = True
    from twisted.logger import globalLogBeginner

    globalLogBeginner.beginLoggingTo([twisted_event], redirectStandardIO=False)


# -- the access log ------------------------------------------------------------------------------
class AccessLog:
    """One ``info`` line per API request, ``component="access"``: method, path (never the query
    string, which may carry numbers and texts), status, ms (from the API taking the request
    to its answer) and the account whose key it bore (``admin: true`` for an admin key). Never the key.

    Why here and this shape: the API's busiest call is ``POST /v1/messages``, so the line is one
    structlog call, and when the level or ``[http] access_log = false`` rules it out, ``start``
    returns None and nothing else is done (not even reading the clock)."""

    def __init__(self, config_source, clock) -> None:
        from smscore.api.auth import _bearer  # the one parser of Authorization (here: no import cycle)

        self.config_source = config_source  # () -> the current Config ([http] access_log, the keys)
        self.clock = clock
        self._bearer = _bearer
        self.log = get_logger(component="access")

    def start(self) -> float | None:
        """The time a request arrived, or None when its line will not be written."""
        if not enabled(logging.INFO) or not self.config_source().http.access_log:
            return None
        return self.clock.seconds()

    def answered(self, request, started: float | None) -> None:
        """Write the line of a request answered (``started``: what ``start`` gave)."""
        if started is None:
            return
        config = self.config_source()
        scheme, key = self._bearer(request)
        who = {}
        if scheme == "bearer" and key:
            account = config.account_for_key(key)
            if account is not None:
                who["account"] = account.name
            elif config.is_admin_key(key):
                who["admin"] = True
        self.log.info("request", method=request.method.decode("ascii", "replace"),
                      path=request.path.decode("ascii", "replace"), status=request.code,
                      ms=round((self.clock.seconds() - started) * 1000, 2), **who)

    def after(self, result, request, started: float | None):
        """``answered`` as a Deferred callback (the answer was late): passes ``result`` on."""
        self.answered(request, started)
        return result
