"""Structured logs: structlog, one JSON object per line (SPEC §9).

Configured once by the CLI. Every line about a message carries ``message_id``; secrets (passwords,
API keys, HMAC secrets) are never logged: ``redact`` drops any key that looks like one, as a last
line of defence behind not passing them in the first place.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

_SECRET_KEYS = ("password", "secret", "api_key", "authorization", "token")

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

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
    """Set up structlog for the process: JSON lines (default) or a console renderer for humans."""
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


def get_logger(**context):
    return structlog.get_logger(**context)
