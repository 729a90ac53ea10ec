"""What the application may answer a customer's request with, and the SMPP status each becomes
(SPEC §13). The reasons are the HTTP API's error codes (SPEC §4), so the gateway's core refuses an
SMPP submit with the words it refuses a ``POST /v1/messages`` with."""

from __future__ import annotations

from .defs import (
    ESME_RCANCELFAIL,
    ESME_RINVDSTADR,
    ESME_RINVMSGLEN,
    ESME_RINVSCHED,
    ESME_RINVSRCADR,
    ESME_RMSGQFUL,
    ESME_RQUERYFAIL,
    ESME_RSUBMITFAIL,
    ESME_RTHROTTLED,
)

__all__ = ["REFUSALS", "Refused", "refusal_status"]

#: ``Refused.reason`` (the HTTP API's error codes, SPEC §4) → the status answering a submit.
REFUSALS: dict[str, int] = {
    "invalid_number": ESME_RINVDSTADR,
    "invalid_sender": ESME_RINVSRCADR,
    "text_too_long": ESME_RINVMSGLEN,
    "insufficient_balance": ESME_RSUBMITFAIL,
    "send_at_out_of_range": ESME_RINVSCHED,
    "rate_limited": ESME_RTHROTTLED,
    "unavailable": ESME_RMSGQFUL,
}
#: Refusals that keep their own status whatever the command (the others say "failed").
_ANY_COMMAND = frozenset({"rate_limited", "unavailable"})
#: Each request's status for a refusal without one of its own.
_FAILED = {"submit_sm": ESME_RSUBMITFAIL, "data_sm": ESME_RSUBMITFAIL,
           "query_sm": ESME_RQUERYFAIL, "cancel_sm": ESME_RCANCELFAIL}


class Refused(Exception):
    """The application refuses a request: ``reason`` is an HTTP API error code (``REFUSALS``),
    ``detail`` a sentence for the logs."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def refusal_status(command: str, reason: str) -> int:
    """The status answering ``command`` refused for ``reason``."""
    if command in ("submit_sm", "data_sm") or reason in _ANY_COMMAND:
        return REFUSALS.get(reason, _FAILED[command])
    return _FAILED[command]
