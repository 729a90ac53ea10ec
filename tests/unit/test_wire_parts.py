"""Parts counted at acceptance are the most any operator of the message's profile sends (SPEC §7:
"Text over `max_parts` → 422 `text_too_long`, never truncated"; Latin-1 only for operators with
``latin1 = true``). A ``latin1`` text goes to an operator without Latin-1 as GSM when it fits,
else as UCS-2 (``addressing.wire_encoding``): acceptance counts that, holds it to max_parts,
charges and stores it; and a part its ESME concatenated must stay one SMS on every such operator."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.smpp.text import Encoding, concat_udh, count_parts
from smscore.config import parse_config
from smscore.errors import ApiError
from smscore.submission import build_messages, udh_part_problem

NOW = 1_700_000_000.0
NOT_GSM = "Þetta er ðað sem ég sagði ÿ « » ° ½ "  # Latin-1, outside GSM 03.38


def config(latin1: list[bool], max_parts: int = 3):
    operators = "".join(f'[operators.op{i}]\ntype = "simulated"\nlatin1 = {str(v).lower()}\n'
                        for i, v in enumerate(latin1))
    names = ", ".join(f'"op{i}"' for i in range(len(latin1)))
    return parse_config(f"""
[gateway]
max_parts_cap = 10
{operators}
[profiles.standard]
operators = [{names}]
[accounts.acme]
senders = ["ACME"]
max_parts = {max_parts}
""", path=Path("/etc/smsgw/gateway.toml"))


def parts_of(text: str, latin1: list[bool], max_parts: int = 10) -> int:
    cfg = config(latin1, max_parts)
    [m] = build_messages({"to": "46701234567", "text": text, "encoding": "latin1"}, cfg.accounts["acme"], cfg, NOW)
    return m.parts


def test_latin1_text_counts_as_latin1_where_every_operator_takes_latin1():
    text = (NOT_GSM * 12)[:400]
    assert parts_of(text, [True]) == count_parts(text, Encoding.LATIN1) == 3


@pytest.mark.parametrize("latin1", [[False], [True, False], [False, True]])
def test_latin1_text_counts_as_ucs2_where_an_operator_of_the_profile_takes_none(latin1):
    text = (NOT_GSM * 12)[:400]
    assert parts_of(text, latin1) == count_parts(text, Encoding.UCS2) == 6


def test_latin1_text_that_fits_gsm_counts_as_gsm_where_an_operator_takes_no_latin1():
    assert parts_of("y" * 400, [False]) == count_parts("y" * 400, Encoding.GSM7) == 3
    # extension characters count two in GSM: more parts than Latin-1 would take
    assert parts_of("{" * 140, [True]) == 1
    assert parts_of("{" * 140, [False]) == count_parts("{" * 140, Encoding.GSM7) == 2


def test_over_max_parts_on_the_operator_that_needs_most_is_text_too_long():
    cfg = config([True, False], max_parts=3)
    text = (NOT_GSM * 12)[:400]  # 3 parts as Latin-1, 6 as UCS-2
    with pytest.raises(ApiError) as caught:
        build_messages({"to": "46701234567", "text": text, "encoding": "latin1"}, cfg.accounts["acme"], cfg, NOW)
    assert (caught.value.status, caught.value.code, caught.value.field) == (422, "text_too_long", "text")
    # not "6 parts as latin1": as Latin-1 it is 3; the 6 are where it goes as UCS-2
    assert caught.value.message == ("The text needs 6 parts on an operator of the profile without Latin-1 "
                                    "(sent there as GSM or UCS-2); at most 3 are allowed.")


def test_an_unknown_profile_is_still_refused_in_its_own_turn():
    cfg = config([False])
    with pytest.raises(ApiError) as caught:
        build_messages({"to": "46701234567", "text": "Ça", "encoding": "latin1", "profile": "nope"},
                       cfg.accounts["acme"], cfg, NOW)
    assert caught.value.code == "unknown_profile"


def test_a_concatenated_part_must_stay_one_sms_on_every_operator_of_the_profile():
    udh = concat_udh(7, 2, 1)
    text = NOT_GSM * 3  # 102 octets as Latin-1, 204 as UCS-2
    text = text[:100]
    assert udh_part_problem(text, Encoding.LATIN1, udh, "standard", config([True])) is None
    problem = udh_part_problem(text, Encoding.LATIN1, udh, "standard", config([True, False]))
    assert problem is not None and "ucs2" in problem
    # GSM-able Latin-1 goes as GSM to the operator without Latin-1: it fits
    assert udh_part_problem("L" * 100, Encoding.LATIN1, udh, "standard", config([False])) is None
