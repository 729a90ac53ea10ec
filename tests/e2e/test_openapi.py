"""schemathesis against a live gateway: every answer must be one ``GET /v1/openapi.json`` describes.

``smsgw run`` as a user runs it (its own processes: the main worker and an API worker per core,
SQLite, two simulated operators, an admin key and two customers, one of them prepaid with a
``tps``), seeded with messages, MO and stop-list entries of every kind so that lists answer with
items; schemathesis generates requests from the OpenAPI document (the one the gateway serves): valid
ones, and invalid ones that must be refused with a 4xx (``negative_data_rejection``). Any 5xx, any
status the operation does not list, any body that breaks its schema, a wrong Content-Type, a
missing documented header (``Retry-After``, ``WWW-Authenticate``), or a secured operation that
answers 2xx without its key fails the test. A stateful run follows the document's links
(send → read → cancel) so that real ids are read and cancelled too.

Bounded for a 2-core machine (about 45 s): a fixed number of examples per operation (100; set
``SMSGW_SCHEMATHESIS_EXAMPLES`` to look further: 300 pass too), a fixed seed, and 5 s at most for any
one answer.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from smscore.api import openapi
from tests.harness.net import free_port, http
from tests.harness.processes import GatewayProcess
from tests.harness.waiting import wait_until

pytestmark = pytest.mark.slow

ADMIN_KEY = "ops-key"
CUSTOMER_KEY = "acme-key"
EXAMPLES = int(os.environ.get("SMSGW_SCHEMATHESIS_EXAMPLES", "100"))

CONFIG = """
[gateway]
node = "openapi"
[store]
url = "sqlite:///openapi.db"
[http]
listen = "127.0.0.1:{http}"
[metrics]
listen = "127.0.0.1:{metrics}"
[admin]
api_keys = ["ops-key"]
[operators.sim_a]
type = "simulated"
cost = 0.10
unreachable_prefixes = ["4670999"]
receipt_delay = "50ms"
[operators.sim_b]
type = "simulated"
cost = 0.20
receipt_delay = "50ms"
[profiles.standard]
operators = ["sim_a", "sim_b"]
[accounts.acme]
api_keys = ["acme-key"]
senders = ["ACME", "4670111111"]
billing = "prepaid"
balance = 1000.0
prices = {{ "46" = 0.50, "default" = 0.80 }}
approved_domains = ["acme.example"]
tps = 40
[accounts.demo]
api_keys = ["demo-key"]
senders = ["DEMO", "72550"]
[[shortcodes]]
number = "72550"
unknown_keyword_reply = "Unknown service."
stop_words = ["STOP"]
stop_reply = "You will get no more messages from {{account}}."
[[keywords]]
shortcode = "72550"
keyword = "DEMO"
account = "demo"
reply = "You said: {{payload}}"
"""

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, missing_required_header, ignored_auth]

SCHEMA = schemathesis.openapi.from_dict(openapi.document(), config=schemathesis.Config.from_dict({
    "seed": 20261204,
    "generation": {"mode": "all", "max-examples": EXAMPLES, "database": "none"},
    "request-timeout": 5.0,  # the deadline of one request: a hung answer fails the test
}))


def _key(path: str) -> str:
    return ADMIN_KEY if path.startswith("/v1/admin/") else CUSTOMER_KEY


@SCHEMA.auth(refresh_interval=None)
class Keys:
    """The admin key for /v1/admin/*, the customer's elsewhere; as schemathesis's own auth, so the
    requests that test a missing or wrong key go without it."""

    def get(self, case, context):
        return _key(case.path)

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openapi")
    port = free_port()
    config = folder / "gateway.toml"
    config.write_text(CONFIG.format(http=port, metrics=free_port()))
    gw = GatewayProcess(config, port, folder / "gateway.log").start()
    try:
        with urllib.request.urlopen(gw.url + "/v1/openapi.json", timeout=10) as answer:
            served = json.loads(answer.read())
        # what schemathesis tests (the package's document) is what the gateway serves
        assert served == openapi.document()
        _seed(gw.url)
        yield gw
    finally:
        gw.stop()


def _seed(url: str) -> None:
    """Data of every kind before the fuzzing, so that lists and look-ups answer with items of each
    shape: delivered and failed-over, held, scheduled and stopped messages; MO of a keyword, of an
    unknown keyword, a STOP, one from an alphanumeric sender (its reply goes to that sender); a
    do-not-call entry and a consent."""
    for body in ({"to": ["46701234567", "46709991234"], "text": "hello", "reference": "seed"},
                 {"to": "46701234568", "text": "Offer: https://shop.other.example/x"},
                 {"to": "46701234569", "text": "later", "send_at": "2031-06-01T08:00:00+02:00"}):
        assert http("POST", url + "/v1/messages", body, CUSTOMER_KEY)[0] == 202
    for sender, text in (("46701234567", "DEMO hello"), ("46701234570", "what?"), ("46701234571", "STOP"),
                         ("ACME", "hi")):
        status, _ = http("POST", url + "/v1/admin/operators/sim_a/mo", {"from": sender, "to": "72550", "text": text},
                         ADMIN_KEY)
        assert status == 202
    for body in ({"numbers": ["46701234572"]}, {"numbers": ["46701234572"], "account": "acme", "consent": True}):
        assert http("POST", url + "/v1/admin/stoplist", body, ADMIN_KEY)[0] == 200
    assert http("POST", url + "/v1/messages", {"to": "46701234572", "text": "consented"}, CUSTOMER_KEY)[0] == 202
    wait_until(lambda: http("GET", url + "/v1/messages?status=delivered&to=46709991234", key=CUSTOMER_KEY)[1]["messages"],
             what="the failed-over message delivered")


@SCHEMA.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_one_the_document_describes(case, gateway):
    case.call_and_validate(base_url=gateway.url, checks=CHECKS)


class Links(SCHEMA.include(path_regex=r"^/v1/(admin/)?(messages|approvals)").as_state_machine()):
    """Send, then read and cancel what was sent, by the document's links."""

    base_url = None
    seen: Counter = Counter()  # (method, path template, status) of every answer
    failures: list[str] = []  # every check that failed, as it failed

    def after_call(self, response, case):
        Links.seen[(case.method, case.path, response.status_code)] += 1

    def get_call_kwargs(self, case):
        return {"base_url": self.base_url}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        try:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs,
                                   recorder=getattr(self, "recorder", None))
        except Exception as exc:
            Links.failures.append(f"{case.method} {case.formatted_path}: {exc}")
            raise


def test_links_lead_to_answers_the_document_describes(gateway):
    Links.base_url = gateway.url
    try:
        Links.run(settings=settings(max_examples=EXAMPLES, stateful_step_count=5, deadline=None,
                                    suppress_health_check=list(HealthCheck)))
    except FlakyStrategyDefinition:
        # A step's inputs come from the gateway's earlier answers (the ids of the links), so a
        # replay may draw differently; schemathesis's own runner passes over this too. A check that
        # failed on the way is in Links.failures either way.
        pass
    assert not Links.failures, "\n\n".join(Links.failures)
    # the links led somewhere: ids that were sent or listed were read or acted on (not only 404s)
    found = sum(n for (_, path, status), n in Links.seen.items() if "{id}" in path and status not in (401, 404))
    assert found > 0, str(sorted(Links.seen.items()))
