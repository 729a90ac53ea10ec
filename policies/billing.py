"""Prepaid money rules (SPEC §3 ``billing``/``balance``/``prices``, §7 Balance): pure decisions.

Prices are per part, by destination prefix (longest wins). A request is charged whole or refused
whole. Balance notices go to the account when its balance crosses a multiple of 1000 (either way)
and when it falls to 500 or to 100 or below them.
"""

from __future__ import annotations

import math
from decimal import Decimal

NOTICE_LEVELS = (Decimal(500), Decimal(100))


def notices(before: Decimal, after: Decimal) -> list[Decimal]:
    """The thresholds crossed by a change of balance from ``before`` to ``after``, in the order
    they were crossed: the multiples of 1000 above 0 in the direction of the change, and 500 and
    100 when falling. A threshold is crossed by reaching it (falling: ``after <= level < before``;
    rising: ``before < level <= after``), so a balance spent one part at a time hears of 1000 when
    it lands there, and not again when it leaves."""
    if before == after:
        return []
    falling = after < before
    lo, hi = (after, before) if falling else (before, after)
    crossed = [Decimal(k * 1000) for k in range(max(1, math.floor(lo / 1000)), math.floor(hi / 1000) + 1)]
    crossed = [m for m in crossed if (after <= m < before if falling else before < m <= after)]
    if falling:
        crossed.extend(level for level in NOTICE_LEVELS if after <= level < before and level not in crossed)
        crossed.sort(reverse=True)
    return crossed


def charge_for(price: Decimal | None, parts: int) -> Decimal | None:
    """What one message costs the account, or None when the account has no price for it."""
    if price is None:
        return None
    return price * parts
