"""The API's OpenAPI 3.1 document (SPEC §14), served as ``GET /v1/openapi.json``.

Why built here rather than written as a JSON file: the limits and vocabularies a customer codes
against (the statuses, the encodings, 1,000 recipients, 64-character references, pages of 1,000)
are the code's own constants, read from the modules that enforce them, so the document cannot
drift from them; and every error answer is written once (``_error``) and shared by reference.

What it holds: every route of ``smscore.api.routes`` with its parameters, request body, answers
and every error status it can give (in the shape of ``render``: ``{"error": {"code", "message",
"field"?}}``, each status with the codes it can carry); the two bearer keys (a customer's, an
admin's); and, as ``webhooks``, what the gateway POSTs to customers: status callbacks (one event,
or ``{"events": [...]}`` batches, SPEC §12), MO pushes and the reply their answer may carry, and
balance notices, with the signature headers of ``connectors.http_push``.

The tests keep it honest: ``tests/e2e/test_openapi.py`` drives a live gateway from it with
schemathesis and fails on any answer it does not describe; ``tests/integration/test_openapi_routes.py``
fails on a route of ``routes.py`` missing here and on a push that breaks its webhook;
``tests/unit/test_openapi.py`` checks it is valid OpenAPI 3.1 and lists every error code the code
raises. It is built and encoded once per process (``answer``).

Layout, one module for each part: ``_common`` (the small builders, the shared scalar schemas, the
error shape with ``ERROR_CODES``, the shared error answers, the parameters), ``schemas`` (the
component schemas, ``SCHEMAS``), ``paths`` (the operations) and ``webhooks`` (the pushes); this
package assembles the document and serves it (``document``, ``answer``).
"""

from __future__ import annotations

from functools import cache

import orjson

# ERROR_CODES is re-exported (not in __all__): importable from here as before.
from smscore.api.openapi._common import _RESPONSES, ERROR_CODES  # noqa: F401
from smscore.api.openapi.paths import _paths
from smscore.api.openapi.schemas import SCHEMAS
from smscore.api.openapi.webhooks import _webhooks

__all__ = ["answer", "document"]

# -- the document -----------------------------------------------------------------------------------

_DESCRIPTION = """\
The smsgw HTTP API (SPEC §4): JSON in, JSON out, one bearer key per account (`Authorization: Bearer
<key>`), and admin keys for `/v1/admin/*`. docs/api.md is the reference with examples.

Every error is `{"error": {"code", "message", "field"?}}`; each operation lists the statuses and codes
it can answer. Besides those, the HTTP server itself answers 400 `invalid_request` to bytes that are
not HTTP/1.1 (501 `not_implemented` to a method HTTP does not define), and any path the API does not
have is 404 `not_found`; a known path with another method is 405 `method_not_allowed`.

The pushes the gateway makes to your backend (status callbacks, MO, balance notices) are the
`webhooks`: JSON POSTs signed with `X-Smsgw-Signature`."""


def document() -> dict:
    """The OpenAPI 3.1 document, as plain JSON values (a copy: the caller may change it)."""
    return orjson.loads(_encoded())


@cache
def _encoded() -> bytes:
    return orjson.dumps(_build())


@cache
def _fragment() -> orjson.Fragment:
    return orjson.Fragment(_encoded())


def answer() -> tuple[int, orjson.Fragment]:
    """``GET /v1/openapi.json``: the document, encoded once per process."""
    return 200, _fragment()


def _build() -> dict:
    from smscore import version

    return {
        "openapi": "3.1.0",
        "info": {"title": "smsgw", "version": version(), "description": _DESCRIPTION,
                 "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"}},
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{"url": "/", "description": "The gateway that serves this document."}],
        "tags": [
            {"name": "messages", "description": "Send MT messages and follow them (customer key)."},
            {"name": "inbound", "description": "MO for your keywords, by pull (customer key)."},
            {"name": "account", "description": "Your account (customer key)."},
            {"name": "own look-ups", "description": "Your account's messages, numbers and stop list, as the "
                                                    "web console shows them (customer key, SPEC §14)."},
            {"name": "admin", "description": "Operations (admin key)."},
            {"name": "look-ups", "description": "Any account's data, for ops (admin key, SPEC §14)."},
            {"name": "node", "description": "Health, readiness and this document (no key)."},
        ],
        "paths": _paths(),
        "webhooks": _webhooks(),
        "components": {
            "schemas": dict(sorted(SCHEMAS.items())),
            "responses": _RESPONSES,
            "securitySchemes": {
                "customerKey": {"type": "http", "scheme": "bearer",
                                "description": "An API key of the account (`[accounts.NAME] api_keys`)."},
                "adminKey": {"type": "http", "scheme": "bearer",
                             "description": "An ops key (`[admin] api_keys`). A customer's key gets 403."},
            },
        },
    }
