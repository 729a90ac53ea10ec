"""``CustomerSmpp.cancel`` in an API worker: the main worker does the cancel, and its answer (as
``DELETE /v1/messages/{id}`` gives it) becomes the ``cancel_sm`` answer: the id, or ``Refused``
with the HTTP API's code (SPEC §13: ESME_RCANCELFAIL for all but the server's own troubles)."""

from __future__ import annotations

import pytest
from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock

from connectors.smpp.refusals import Refused
from smscore.customer_smpp import CustomerSmpp, _error_code


class Session:
    account = "acme"


def cancel_with(answer):
    asked = []

    def at_main(message_id, account):
        asked.append((message_id, account))
        return answer if hasattr(answer, "addCallback") else succeed(answer)

    customers = CustomerSmpp(config_source=None, pipeline=None, store=None, clock=Clock(), rate_limit=None,
                             cancel_at_main=at_main)
    out = []
    customers.cancel(Session(), "01a2b3").addBoth(out.append)
    assert asked == [("01a2b3", "acme")]
    return out[0]


def test_the_main_workers_200_is_the_cancelled_id():
    assert cancel_with((200, {"id": "01a2b3", "status": "stopped"})) == "01a2b3"


@pytest.mark.parametrize("answer, reason", [
    ((409, {"error": {"code": "conflict", "message": "The message is being submitted to an operator."}}), "conflict"),
    ((404, {"error": {"code": "not_found", "message": "No such message."}}), "not_found"),
    ((503, {"error": {"code": "unavailable", "message": "down"}}), "unavailable"),
    ((502, {}), "unavailable"),
    ((400, "not an object"), "unavailable"),
])
def test_a_refusal_of_the_main_worker_is_refused_with_its_code(answer, reason):
    failure = cancel_with(answer)
    assert failure.check(Refused) and failure.value.reason == reason


def test_the_main_worker_out_of_reach_is_unavailable():
    failure = cancel_with(fail(ConnectionRefusedError("main worker restarting")))
    assert failure.check(Refused) and failure.value.reason == "unavailable"


def test_a_receipts_err_is_the_operators_code_from_a_receipt_or_from_the_submit_it_refused():
    assert _error_code("UNDELIV err=034") == "034"  # a receipt's
    assert _error_code("ESME_RINVDSTADR") == "11"  # a submit the operator refused: its command_status
    assert _error_code("ESME_RSYSERR (5 times in a row)") == "8"
    assert _error_code("validity period ended before submission") == ""  # the gateway's own: none
    assert _error_code(None) == ""
