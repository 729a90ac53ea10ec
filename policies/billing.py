"""Prepaid money rules (SPEC §3 ``billing``/``balance``/``prices``, §7 Balance): pure decisions.

Prices are per part, by destination prefix (longest wins). A request is charged whole or refused
whole. Balance notices go to the account when its balance crosses a multiple of 1000 (either way)
and when it falls to 500 or to 100 or below them.
"""

from __future__ import annotations

from decimal import Decimal

NOTICE_LEVELS = (Decimal(500), Decimal(100))


def notices(before: Decimal, after: Decimal) -> list[Decimal]:
    """The thresholds crossed by a change of balance from ``before`` to ``after``, in the order
    they were crossed (multiples of 1000 in the direction of the change; 500 and 100 when falling)."""
    if before == after:
        return []
    crossed: list[Decimal] = []
    lo, hi = min(before, after), max(before, after)
    thousand = (lo // 1000 + 1) * 1000
    while thousand <= hi:
        if thousand != before:
            crossed.append(Decimal(thousand))
        thousand += 1000
    if after < before:
        crossed.extend(level for level in NOTICE_LEVELS if after <= level < before and level not in crossed)
        crossed.sort(reverse=True)
    return crossed


def charge_for(price: Decimal | None, parts: int) -> Decimal | None:
    """What one message costs the account, or None when the account has no price for it."""
    if price is None:
        return None
    return price * parts
