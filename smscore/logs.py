"""Structured logs: structlog, one JSON object per line (SPEC §9).

Configured once by the CLI. Every line about a message carries ``message_id``; secrets (passwords,
API keys, HMAC secrets) are never logged: ``redact`` drops any key that looks like one, as a last
line of defence behind not passing them in the first place.
"""

from __future__ import annotations

import logging
import sys

import structlog

_SECRET_KEYS = ("password", "secret", "api_key", "authorization", "token")

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def redact(_logger, _name, event_dict):
    for key in list(event_dict):
        if any(s in key.lower() for s in _SECRET_KEYS):
            event_dict[key] = "[redacted]"
    return event_dict


def configure(level: str = "info", fmt: str = "json", stream=None) -> None:
    """Set up structlog for the process: JSON lines (default) or a console renderer for humans."""
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
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
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=True,
    )


def get_logger(**context):
    return structlog.get_logger(**context)
