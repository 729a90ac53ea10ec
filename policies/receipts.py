"""Which message a delivery receipt is about when its SMSC gave the receipt's id to more than one.

An SMSC names in a receipt the id it gave the submit. Most never give one id twice; some count from
1 again after a restart, so that one id names an older message still waiting for its receipt and a
newer one. A receipt also says the phone number it is about (the deliver_sm's ``source_addr``), and,
as Kannel compares it too, that decides first: among the messages the id names, those sent to that
number. Then a message that still waits for its receipt before one that has ended (a receipt sent
again for an ended one is held for the next message given the id, ``store.rules.held_for_next``),
and the newest. An id that names one message is that message's, whatever number the receipt gives
(an SMSC may write it in another form than it was sent in, and most SMSCs never reuse ids).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SAME_DIGITS", "receipt_owner", "same_number", "sent_again"]

#: The last digits two renderings of one number must share: an SMSC may write the number it was sent
#: to in international form with or without "+", or in national form with a trunk prefix
#: ("0701234567" for "46701234567"), which differ before these.
SAME_DIGITS = 8


def same_number(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are one phone number as two systems may write it: their last
    ``SAME_DIGITS`` digits (all of them, when shorter) are the same, and there are at least 3."""
    da = "".join(c for c in a if c.isdigit())[-SAME_DIGITS:]
    db = "".join(c for c in b if c.isdigit())[-SAME_DIGITS:]
    return len(da) >= 3 and da == db


def sent_again(receipt_number: str, message_number: str) -> bool:
    """Whether a receipt that found its message ended, and changed nothing, is that message's
    receipt sent again: it names the message's number. Else it may be for the next message the
    SMSC gives the id, whose submit response has not come yet, and is held for it."""
    return bool(receipt_number) and same_number(receipt_number, message_number)


def receipt_owner(number: str, numbers: Sequence[str], waiting: Sequence[bool]) -> int:
    """Of the messages one SMSC id names, in the order it was given to them, the index of the one a
    receipt about ``number`` is about. ``numbers``: the number each was sent to ("" for one no
    longer stored); ``waiting``: whether each still waits for this operator's receipt (not ended,
    not gone on to another operator). The newest of those sent to ``number``, one that waits
    first; with no number, or none sent to it, the newest that waits, else the newest."""
    last = len(numbers) - 1
    if last < 1:
        return last
    pool = range(last, -1, -1)
    if number:
        matching = [i for i in pool if numbers[i] and same_number(number, numbers[i])]
        if matching:
            pool = matching
    return next((i for i in pool if waiting[i]), pool[0])
