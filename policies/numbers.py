"""Destination numbers and sender IDs: what the API accepts, in one strict place (SPEC §7, §11).

Why strict: a customer whose code sends " 4670..." or "070..." has a bug, and the gateway helps most
by refusing it with a sentence that names the problem, not by guessing what was meant. Only ASCII
digits count (``str.isdigit`` would accept Arabic-Indic and other digits, so it is not used).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Iterable

__all__ = [
    "InvalidNumber",
    "InvalidSender",
    "SenderKind",
    "classify_sender",
    "normalize_msisdn",
    "normalize_sender",
    "sender_allowed",
]


class InvalidNumber(ValueError):
    """A destination that is not an international number (API error ``invalid_number``)."""


class InvalidSender(ValueError):
    """A sender ID of no valid form (API error ``invalid_sender``)."""


class SenderKind(str, Enum):
    """The form of a sender ID; a connector turns it into its protocol's address type."""

    ALPHANUMERIC = "alphanumeric"
    NUMERIC = "numeric"


_MSISDN = re.compile(r"\+?([1-9][0-9]{7,14})")
_NUMERIC_SENDER = re.compile(r"\+?([0-9]{1,15})")
_ALPHANUMERIC_SENDER = re.compile(r"(?=[0-9]*[A-Za-z])[A-Za-z0-9]{1,11}")


def normalize_msisdn(value: str) -> str:
    """The number as international digits: 8 to 15 ASCII digits, not starting with 0.

    One leading ``+`` is accepted and stripped. Anything else (whitespace, separators, a national
    number starting with 0, too short or too long) raises InvalidNumber.
    """
    if not isinstance(value, str):
        raise InvalidNumber(f"a number must be a string of digits, got {type(value).__name__}")
    match = _MSISDN.fullmatch(value)
    if match is None:
        raise InvalidNumber(_number_problem(value))
    return match.group(1)


def canonical_number(value: str) -> str:
    """A number as the gateway keeps it: international digits when ``value`` is a valid MSISDN
    (``+46701234567`` → ``46701234567``, as the API, the stop list and every look-up take it), else
    ``value`` unchanged (an alphanumeric sender, a national number the gateway cannot place)."""
    try:
        return normalize_msisdn(value)
    except InvalidNumber:
        return value


def _number_problem(value: str) -> str:
    shown = value if len(value) <= 40 else value[:40] + "..."
    digits = value[1:] if value.startswith("+") else value
    if digits and digits.isascii() and digits.isdigit():
        if digits.startswith("0"):
            why = "it starts with 0; give it in international form with the country code"
        else:
            why = f"it has {len(digits)} digits; an international number has 8 to 15"
    else:
        why = "only digits are allowed, with an optional leading '+'"
    return f"{shown!r} is not a valid number: {why}"


def classify_sender(value: str) -> SenderKind:
    """The form of a sender ID (SPEC §7).

    ``NUMERIC``: 1 to 15 ASCII digits, one leading ``+`` allowed (see ``normalize_sender``); a short
    all-digit sender such as a shortcode is NUMERIC by form, only the caller knows its shortcodes.
    ``ALPHANUMERIC``: 1 to 11 ASCII letters and digits with at least one letter.
    Anything else raises InvalidSender.
    """
    if not isinstance(value, str):
        raise InvalidSender(f"a sender must be a string, got {type(value).__name__}")
    if _NUMERIC_SENDER.fullmatch(value):
        return SenderKind.NUMERIC
    if _ALPHANUMERIC_SENDER.fullmatch(value):
        return SenderKind.ALPHANUMERIC
    raise InvalidSender(_sender_problem(value))


def _sender_problem(value: str) -> str:
    shown = value if len(value) <= 40 else value[:40] + "..."
    if not value:
        why = "it is empty"
    elif value.isascii() and value.isalnum() and not value.isdigit():
        why = f"it has {len(value)} characters; an alphanumeric sender has at most 11"
    elif value.lstrip("+").isascii() and value.lstrip("+").isdigit() and value.count("+") <= 1:
        why = f"it has {len(value.lstrip('+'))} digits; a numeric sender has at most 15"
    else:
        why = "only letters A-Z, a-z and digits are allowed (a numeric sender may start with '+')"
    return f"{shown!r} is not a valid sender: {why}"


def normalize_sender(value: str) -> str:
    """The sender as it goes out: a numeric sender loses its ``+``. Raises InvalidSender."""
    if classify_sender(value) is SenderKind.NUMERIC:
        return value.removeprefix("+")
    return value


def sender_allowed(sender: str, allowed: Iterable[str]) -> bool:
    """True when ``sender`` is one of ``allowed``.

    Exact and case-sensitive, except that a ``+`` before an all-digit sender is ignored on both
    sides. Malformed entries simply never match.
    """
    key = _sender_key(sender)
    return any(_sender_key(entry) == key for entry in allowed)


def _sender_key(value: str) -> str:
    if _NUMERIC_SENDER.fullmatch(value):
        return value.removeprefix("+")
    return value
