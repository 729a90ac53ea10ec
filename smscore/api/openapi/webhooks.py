"""The pushes of the OpenAPI document: what the gateway POSTs to customers (``webhooks``).

Why a module of its own: status callbacks (one event or a batch), MO pushes with the reply their
answer may carry, and balance notices are requests the gateway makes, not answers it gives; they
share the signature headers of ``connectors.http_push`` and its retry rule, described here once.
"""

from __future__ import annotations

from smscore.api.openapi._common import JSON, _ref, _string

# -- pushes -----------------------------------------------------------------------------------------

_PUSH_HEADERS = [
    {"name": "X-Smsgw-Timestamp", "in": "header", "required": True, "schema": _string(pattern="^[0-9]+$"),
     "description": "Unix seconds when the attempt was made (each retry has its own)."},
    {"name": "X-Smsgw-Signature", "in": "header", "required": False,
     "schema": _string(pattern="^sha256=[0-9a-f]{64}$"),
     "description": "`sha256=` + hex HMAC-SHA256 with the account's `secret` of the timestamp, a `.`, and the "
                    "exact body bytes. Absent when the account has no secret. See docs/api.md for verification."},
    {"name": "User-Agent", "in": "header", "required": True, "schema": _string(pattern="^smsgw/"),
     "description": "`smsgw/<version>`."},
]
_ACK = {"2XX": {"description": "Taken: the push is not sent again (a batch: every event of it)."},
        "default": {"description": "Anything else, a timeout or a refused connection: retried after 5 s, 10 s, "
                                   "20 s … (at most 10 min apart) until `[push] retry_for` has passed. Redirects "
                                   "are not followed."}}


def _webhook(op_id: str, summary: str, schema: str, description: str, responses: dict | None = None) -> dict:
    return {"post": {"operationId": op_id, "summary": summary, "description": description,
                     "parameters": _PUSH_HEADERS,
                     "requestBody": {"required": True, "content": {JSON: {"schema": _ref(schema)}}},
                     "responses": responses or _ACK}}


def _webhooks() -> dict:
    return {
        "statusCallback": _webhook(
            "statusCallback", "A status change of a message (callback_batch = 1)", "StatusEvent",
            "POSTed to the message's `callback_url`, else its account's, once per status change the account's (or "
            "the request's) `callback_statuses` chooses, in order per message, at least once: drop repeats by "
            "`event_id`."),
        "statusCallbackBatch": _webhook(
            "statusCallbackBatch", "Status changes, batched (callback_batch above 1)", "StatusBatch",
            "Up to `callback_batch` events of one account to one URL, sent when full or when the oldest waited "
            "`callback_linger`. Signed over the whole body; retried whole. A message's events keep their order "
            "within and across batches."),
        "moPush": _webhook(
            "moPush", "An MO for a keyword with a url", "MoPush",
            "POSTed to the keyword's `url`. A 2xx answer may carry the reply SMS, sent to the phone from the "
            "shortcode. If the first attempt fails, the phone gets the keyword's `unavailable_reply` once; the MO "
            "stays in `GET /v1/inbound` either way.",
            {"2XX": {"description": "Taken. A body `{\"reply\": \"...\"}` (JSON) or a text/plain body becomes the "
                                    "reply SMS; an empty body or `{}`: no reply. Bodies over 64 KiB are not read.",
                     "content": {JSON: {"schema": _ref("MoReply")},
                                 "text/plain": {"schema": {"type": "string"}}}},
             "default": _ACK["default"]}),
        "balanceNotice": _webhook(
            "balanceNotice", "The balance crossed a threshold", "BalanceNotice",
            "POSTed to the account's `callback_url` when the balance crosses a multiple of 1000 (either way) and when "
            "it falls to or below 500 and 100. Never batched."),
    }
