"""HTTP API v1 (SPEC §4): JSON in, JSON out, bearer keys per account.

Served by the lean HTTP/1.1 server of ``connectors.http_server`` (``api_factory``); the resource is a
twisted.web leaf resource, so twisted.web can serve it too. A small router over one leaf resource
keeps the hot path short (``POST /v1/messages`` is the
gateway's busiest call). Handlers return a dict, a Deferred of one, or raise ``ApiError``; every
error leaves as ``{"error": {"code", "message", "field"?}}``. ``202`` is written only after the
store has committed the messages (the pipeline's accept Deferred fires after the commit).

This package is the façade; the parts live by what they do:

- ``routes``: the leaf resource ``ApiResource``, its route table and ``api_factory``;
- ``auth``: bearer keys for customers and admins, the per-account request rate;
- ``inputs``: the JSON body, query parameters, pages and times of a request;
- ``customer`` and ``admin``: the endpoints, one function each;
- ``lookups``: the admin look-ups of SPEC §14 (messages, numbers, accounts, approvals, MO, stop list);
- ``openapi``: the OpenAPI 3.1 document of all of it (``GET /v1/openapi.json``);
- ``render``: what goes back (JSON, CSV, error bodies, the store's refusals as API errors).
"""

from smscore.api.inputs import DEFAULT_PAGE, MAX_BODY, MAX_PAGE
from smscore.api.render import dumps, render_message
from smscore.api.routes import ApiResource, api_factory

__all__ = ["DEFAULT_PAGE", "MAX_BODY", "MAX_PAGE", "ApiResource", "api_factory", "dumps", "render_message"]
