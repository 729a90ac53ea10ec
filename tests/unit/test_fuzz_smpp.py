"""Fuzzing what reads a PDU after the codec and the session, on both of the gateway's SMPP roles.

The codec and the session have their own properties (``test_smpp_codec.py``,
``test_smpp_session.py``); here mutated valid PDUs go whole through the customer-facing
``CustomerSMPPServer`` and the SMSC-facing ``OperatorLink`` (``tests/fuzzing/smpp.py``, its input
made by ``tests/fuzzing/smpp_pdus.py``): nothing raises, nothing is logged as an error, every reply
is whole PDUs, and bytes cut anyhow give the same replies and the same calls to the application. hypothesis drives the shared generator
through ``st.randoms()``, so ``scripts/fuzz.py smpp`` and these tests fuzz alike. At the end, one
test per finding.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.smpp.codec import PDU, decode, encode
from connectors.smpp.defs import ESME_RBINDFAIL, ESME_RQUERYFAIL
from tests.fuzzing import smpp, smpp_pdus

RIGS = {"server": smpp.ServerRig(), "client": smpp.ClientRig()}
ROLES = st.sampled_from(sorted(RIGS))
COMMANDS = st.sampled_from(["submit_sm", "data_sm", "deliver_sm", "query_sm", "cancel_sm",
                            "bind_transceiver", "submit_sm_resp", "enquire_link", "generic_nack",
                            "unbind"])
# No pytest.mark.parametrize on these: pytest-twisted wraps a hypothesis test once per item, and
# the items of one parametrized function share it (the wrappers nest and deadlock the reactor).
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_fine(rig, data: bytes, rng) -> None:
    _, problems = smpp.check(rig, data, rng)
    assert not problems, f"input {data.hex()}:\n" + "\n".join(problems)


@FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_server_takes_mutated_pdus(rng):
    rig = RIGS["server"]
    assert_fine(rig, rig.prefix(rng) + smpp_pdus.stream(rng), rng)


@FUZZ
@given(rng=st.randoms(use_true_random=False))
def test_client_takes_mutated_pdus(rng):
    rig = RIGS["client"]
    assert_fine(rig, rig.prefix(rng) + smpp_pdus.stream(rng), rng)


@FUZZ
@given(role=ROLES, command=COMMANDS, rng=st.randoms(use_true_random=False))
def test_each_command_mutated(role, command, rng):
    """Each command the roles read, mutated, on each role (a floor under the weighted mix)."""
    rig = RIGS[role]
    assert_fine(rig, rig.prefix(rng) + smpp_pdus.mutate(rng, smpp_pdus.valid_pdu(rng, command)), rng)


@settings(max_examples=100, deadline=None)
@given(role=ROLES, rng=st.randoms(use_true_random=False))
def test_valid_pdus_unmutated(role, rng):
    rig = RIGS[role]
    data = rig.prefix(rng) + b"".join(smpp_pdus.valid_pdu(rng).data for _ in range(rng.randint(1, 4)))
    assert_fine(rig, data, rng)


# --- findings -----------------------------------------------------------------------------------------
def _bind(password: str, sequence: int) -> bytes:
    return encode(PDU("bind_transceiver", sequence, params={"system_id": "acme-esme",
                                                           "password": password}))


def test_a_refused_bind_ends_the_reading_so_one_segment_holds_one_guess():
    """Found by fuzzing: the PDUs after a refused bind in the same TCP segment were still served,
    so a guesser could try a password per PDU instead of per connection."""
    run = smpp.ServerRig().run([_bind("wrong", 1) + _bind("s3cret", 2)])
    replies = smpp.replies(run.written)
    assert [(p.command, p.status, p.sequence) for p in replies] == [
        ("bind_transceiver_resp", ESME_RBINDFAIL, 1)]
    assert run.calls == [] and run.closed.startswith("bind refused")


def test_query_sm_for_an_id_longer_than_any_we_give_is_not_found_without_an_error():
    """Found by fuzzing: the codec takes a NUL-terminated message_id of any length; echoed in the
    query_sm_resp it did not fit, which logged an error and answered ESME_RSYSERR."""
    query = encode(PDU("query_sm", 2, params={"message_id": "a" * 64}))
    query = query[:16] + b"a" * 36 + query[16:]  # 100 characters, NUL-terminated
    query = len(query).to_bytes(4, "big") + query[4:]
    assert len(decode(query).params["message_id"]) == 100
    run = smpp.ServerRig().run([smpp.ServerRig.BIND + query])
    replies = smpp.replies(run.written)
    assert [(p.command, p.status) for p in replies][-1] == ("query_sm_resp", ESME_RQUERYFAIL)
    assert run.errors == [] and not any(c[0] == "query" for c in run.calls)
