"""The OpenAPI document of ``GET /v1/openapi.json`` (smscore.api.openapi), read as a document: valid
OpenAPI 3.1 with valid JSON Schemas, every reference resolvable, every error code the code can
answer listed, every error answer in the shape of SPEC §4. What the gateway answers against it is
tests/e2e/test_openapi.py's; that every route is in it, tests/integration/test_openapi_routes.py's.
"""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema_rs
import pytest
import schemathesis

from smscore.api import openapi

ROOT = Path(__file__).resolve().parents[2]


def _walk(node, path=()):
    """Every (JSON path, dict) in the document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*path, i))


def _resolve(doc: dict, ref: str):
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _schemas(doc: dict):
    """Every Schema Object of the document: components', and each `schema` of a parameter, header
    or media type (paths and webhooks)."""
    for name, schema in doc["components"]["schemas"].items():
        yield ("components", "schemas", name), schema
    for path, node in _walk({"paths": doc["paths"], "webhooks": doc["webhooks"],
                             "responses": doc["components"]["responses"]}):
        if "schema" in node and isinstance(node["schema"], dict):
            yield (*path, "schema"), node["schema"]


def _operations(doc: dict):
    for template, item in doc["paths"].items():
        for method, op in item.items():
            yield method, template, op


def test_the_document_is_valid_openapi_3_1():
    doc = openapi.document()
    assert doc["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(doc).validate()  # the OpenAPI 3.1 meta-schema (jsonschema-rs)


@pytest.mark.parametrize("breakage", ["a response without a description", "a path parameter not required",
                                      "an unknown security scheme type"])
def test_the_validity_check_refuses_a_broken_document(breakage):
    """The check above can fail: each of these documents is refused."""
    doc = openapi.document()
    if breakage == "a response without a description":
        del doc["paths"]["/healthz"]["get"]["responses"]["200"]["description"]
    elif breakage == "a path parameter not required":
        doc["paths"]["/v1/messages/{id}"]["get"]["parameters"][0]["required"] = False
    else:
        doc["components"]["securitySchemes"]["adminKey"]["type"] = "password"
    with pytest.raises(jsonschema_rs.ValidationError):
        schemathesis.openapi.from_dict(doc).validate()


def test_every_schema_is_valid_json_schema_2020_12():
    doc = openapi.document()
    problems = []
    for where, schema in _schemas(doc):
        try:
            jsonschema_rs.meta.validate(schema)
        except jsonschema_rs.ValidationError as exc:
            problems.append(f"{'/'.join(map(str, where))}: {exc.message}")
    assert not problems, "\n".join(problems)
    assert len(list(_schemas(doc))) > 50  # the walk found them


def test_every_reference_resolves_and_every_component_is_used():
    doc = openapi.document()
    refs = {node["$ref"] for _, node in _walk(doc) if isinstance(node.get("$ref"), str)}
    for ref in refs:
        _resolve(doc, ref)  # a KeyError names the broken one
    used = {ref.rsplit("/", 1)[1] for ref in refs}
    unused = set(doc["components"]["schemas"]) - used
    assert not unused, f"components nothing refers to: {sorted(unused)}"


def test_every_error_code_the_gateway_answers_is_in_the_document():
    """Each ``ApiError(status, "code", …)`` of smscore and each refusal of the HTTP server is listed
    under its status: a new code without documentation fails here."""
    found = set()
    for source in [*ROOT.joinpath("smscore").rglob("*.py"), ROOT / "connectors" / "http_server.py"]:
        text = source.read_text()
        found |= {(int(s), c) for s, c in re.findall(r'(?:ApiError|_Refused)\(\s*(\d{3}),\s*"([a-z_]+)"', text)}
        found |= {(422, c) for c in re.findall(r'unprocessable\(\s*"([a-z_]+)"', text)}
        found |= {(400, "invalid_request") for _ in re.findall(r"invalid_request\(", text)}
    assert (402, "insufficient_balance") in found and (429, "rate_limited") in found  # the scan works
    missing = {(s, c) for s, c in found if c not in openapi.ERROR_CODES.get(s, ())}
    assert not missing, f"error codes the document does not list: {sorted(missing)}"
    enum = set(openapi.document()["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])
    assert {c for _, c in found} <= enum


def test_every_error_answer_has_the_error_shape_and_every_operation_its_common_errors():
    doc = openapi.document()
    for method, template, op in _operations(doc):
        label = f"{method.upper()} {template}"
        responses = op["responses"]
        for status, response in responses.items():
            if "$ref" in response:
                response = _resolve(doc, response["$ref"])
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                refs = {n["$ref"] for _, n in _walk(schema) if "$ref" in n}
                assert "#/components/schemas/Error" in refs, f"{label} {status} is not the error shape"
        for status in ("413", "414", "431", "500"):
            assert status in responses, f"{label} does not list {status}"
        secured = [name for requirement in op["security"] for name in requirement]
        assert secured == (["adminKey"] if template.startswith("/v1/admin/") else
                           [] if not template.startswith("/v1/") or template == "/v1/openapi.json" else
                           ["customerKey"]), label
        if secured:
            assert "401" in responses, label
        if secured == ["adminKey"]:
            assert "403" in responses, label
        for parameter in op.get("parameters", []):
            if parameter["in"] == "path":
                assert "{" + parameter["name"] + "}" in template, label


def test_the_pushes_are_webhooks_with_their_signature_headers():
    doc = openapi.document()
    assert set(doc["webhooks"]) == {"statusCallback", "statusCallbackBatch", "moPush", "balanceNotice"}
    for name, item in doc["webhooks"].items():
        headers = {p["name"]: p for p in item["post"]["parameters"] if p["in"] == "header"}
        assert set(headers) == {"X-Smsgw-Timestamp", "X-Smsgw-Signature", "User-Agent"}, name
        assert re.fullmatch(headers["X-Smsgw-Signature"]["schema"]["pattern"], "sha256=" + "0" * 64)


def test_the_answer_is_encoded_once_and_is_the_document():
    status, body = openapi.answer()
    assert status == 200 and body is openapi.answer()[1]
    import orjson

    assert orjson.loads(orjson.dumps(body)) == openapi.document()


def test_readyz_not_ready_is_documented_as_its_readiness_body():
    """GET /readyz answers 503 {"ready": false, "problems": [...]} when not ready; the shared 503
    (the error shape) overwrote the operation's own description of it."""
    doc = openapi.document()
    schema = doc["paths"]["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    check = jsonschema_rs.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                         "components": doc["components"], **schema})
    check.validate({"ready": False, "problems": ["profile standard: no bound operator"]})
    check.validate({"error": {"code": "unavailable", "message": "The main process did not answer."}})
