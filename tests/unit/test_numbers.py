"""policies.numbers: destination numbers and sender IDs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.numbers import (
    InvalidNumber,
    InvalidSender,
    SenderKind,
    classify_sender,
    normalize_msisdn,
    normalize_sender,
    sender_allowed,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("46701234567", "46701234567"),
        ("+46701234567", "46701234567"),
        ("12345678", "12345678"),  # 8 digits: the shortest
        ("123456789012345", "123456789012345"),  # 15 digits: the longest
        ("+123456789012345", "123456789012345"),
    ],
)
def test_normalize_msisdn_accepts(value, expected):
    assert normalize_msisdn(value) == expected


@pytest.mark.parametrize(
    "value, says",
    [
        ("", "only digits"),
        ("+", "only digits"),
        ("1234567", "7 digits"),
        ("+1234567", "7 digits"),
        ("1234567890123456", "16 digits"),
        (" 46701234567", "only digits"),
        ("46701234567 ", "only digits"),
        ("46701234567\n", "only digits"),
        ("++46701234567", "only digits"),
        ("0046701234567", "starts with 0"),
        ("0701234567", "starts with 0"),
        ("+0701234567", "starts with 0"),
        ("4670-123 45 67", "only digits"),
        ("467012345a7", "only digits"),
        ("4670123456+", "only digits"),
        ("٤٦٧٠١٢٣٤٥٦٧", "only digits"),  # Arabic-Indic digits are digits to str.isdigit, not to us
        ("４６７０１２３４５６７", "only digits"),  # fullwidth digits
    ],
)
def test_normalize_msisdn_refuses(value, says):
    with pytest.raises(InvalidNumber) as info:
        normalize_msisdn(value)
    assert says in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [None, 46701234567, b"46701234567"])
def test_normalize_msisdn_refuses_non_strings(value):
    with pytest.raises(InvalidNumber):
        normalize_msisdn(value)  # type: ignore[arg-type]


@given(st.from_regex(r"\+?[1-9][0-9]{7,14}", fullmatch=True))
def test_every_international_number_normalizes_to_its_digits(value):
    assert normalize_msisdn(value) == value.lstrip("+")


@given(st.text())
def test_normalize_msisdn_either_returns_8_to_15_ascii_digits_or_raises(value):
    try:
        digits = normalize_msisdn(value)
    except InvalidNumber:
        return
    assert digits.isascii() and digits.isdigit() and 8 <= len(digits) <= 15
    assert value in (digits, "+" + digits)


@pytest.mark.parametrize(
    "value, kind",
    [
        ("Acme", SenderKind.ALPHANUMERIC),
        ("A", SenderKind.ALPHANUMERIC),
        ("ACME2024Ltd", SenderKind.ALPHANUMERIC),  # 11: the longest
        ("2FA", SenderKind.ALPHANUMERIC),
        ("1234567890a", SenderKind.ALPHANUMERIC),
        ("72550", SenderKind.NUMERIC),  # a shortcode is numeric by form
        ("1", SenderKind.NUMERIC),
        ("46701234567", SenderKind.NUMERIC),
        ("123456789012345", SenderKind.NUMERIC),  # 15: the longest
        ("+46701234567", SenderKind.NUMERIC),
    ],
)
def test_classify_sender(value, kind):
    assert classify_sender(value) is kind


@pytest.mark.parametrize(
    "value, says",
    [
        ("", "empty"),
        ("ACME2024Ltd1", "at most 11"),
        ("1234567890123456", "at most 15"),
        ("+1234567890123456", "at most 15"),
        ("Acme Ltd", "only letters"),
        (" Acme", "only letters"),
        ("Acme\n", "only letters"),
        ("Åsa", "only letters"),
        ("Acme-1", "only letters"),
        ("+", "only letters"),
        ("+Acme", "only letters"),
        ("++4670", "only letters"),
        ("٤٦٧٠", "only letters"),
    ],
)
def test_classify_sender_refuses(value, says):
    with pytest.raises(InvalidSender) as info:
        classify_sender(value)
    assert says in str(info.value)
    assert isinstance(info.value, ValueError)


@given(st.from_regex(r"(?=[0-9]*[A-Za-z])[A-Za-z0-9]{1,11}", fullmatch=True))
def test_alphanumeric_senders(value):
    assert classify_sender(value) is SenderKind.ALPHANUMERIC


@given(st.text(max_size=20))
def test_classify_sender_only_accepts_the_two_forms(value):
    try:
        kind = classify_sender(value)
    except InvalidSender:
        return
    assert value.isascii()
    if kind is SenderKind.NUMERIC:
        assert value.lstrip("+").isdigit() and 1 <= len(value.lstrip("+")) <= 15
    else:
        assert value.isalnum() and not value.isdigit() and len(value) <= 11


@pytest.mark.parametrize(
    "value, sent",
    [("+46701234567", "46701234567"), ("72550", "72550"), ("Acme", "Acme")],
)
def test_normalize_sender(value, sent):
    assert normalize_sender(value) == sent


@pytest.mark.parametrize(
    "sender, allowed, expected",
    [
        ("Acme", ["Acme", "72550"], True),
        ("acme", ["Acme"], False),  # exact: case matters
        ("Acme", [], False),
        ("72550", ["Acme", "72550"], True),
        ("+46701234567", ["46701234567"], True),
        ("46701234567", ["+46701234567"], True),
        ("+46701234567", ["+46701234567"], True),
        ("4670123456", ["46701234567"], False),
        ("+Acme", ["Acme"], False),  # the + is only normalised on numeric senders
        ("Acme", ("x" for x in ["Acme"]), False),
        ("Acme", (x for x in ["Acme"]), True),  # any iterable
        ("Acme ", ["Acme"], False),
    ],
)
def test_sender_allowed(sender, allowed, expected):
    assert sender_allowed(sender, allowed) is expected
