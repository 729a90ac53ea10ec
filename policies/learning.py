"""What deliveries and failures teach about a number (SPEC §7, "SmartConfirm"): pure decisions.

For each number the gateway keeps the operator that last delivered to it and, per operator, when
it last failed for it. ``routing.rank`` reads them: the operator that delivered goes first, those
that failed lately go last.

- A delivery makes its operator the number's operator and clears that operator's failure.
- A failure is remembered with its time; if the failing operator was the number's operator, the
  number has none until another delivers (the number was ported away).
- A failure counts for ``DECAY``: numbers get ported back, routes get fixed.
- The same operator delivering again teaches nothing: no write (the common case).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: How long a failure keeps an operator at the back for a number.
DECAY = 30 * 24 * 3600.0


@dataclass(slots=True)
class Learned:
    """What is known about one number."""

    operator: str | None = None
    failures: Mapping[str, float] = field(default_factory=dict)  # operator -> when it last failed


def learn(known: Learned | None, delivered_by: str | None, failed: Iterable[tuple[str, float]]) -> Learned | None:
    """What is known after ``delivered_by`` delivered (or None) and ``failed`` (operator, when)
    failed for the number; None when that teaches nothing new."""
    failed = list(failed)
    if (known is not None and not failed and delivered_by is not None and known.operator == delivered_by
            and delivered_by not in known.failures):
        return None
    operator = known.operator if known else None
    failures = dict(known.failures) if known else {}
    for name, when in failed:
        failures[name] = when
        if operator == name:
            operator = None
    if delivered_by is not None:
        operator = delivered_by
        failures.pop(delivered_by, None)
    return Learned(operator, failures)


def failed_lately(known: Learned, now: float) -> tuple[str, ...]:
    """The operators whose failure for the number still counts at ``now``."""
    return tuple(name for name, when in known.failures.items() if now - when < DECAY)
