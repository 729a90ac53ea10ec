"""Where a node's next claim of stored messages starts: a sweep through the backlog, as a pure
decision.

Why: a node holds what it claimed (up to ``max_in_memory``) until it is sent. A claim that starts
from the oldest queued message walks past all of those again, every time: on PostgreSQL 20,000 held
rows made each claim of a big backlog about 20 ms, in the writer's queue. So a claim starts after
the last id the previous claim took, and the claims sweep the backlog in id order.

- A full claim moves the sweep to its last id; the next one goes on from there at once.
- A claim that comes back short reached the end: the sweep starts over from the first id, once
  more at once if it was not already there (work given back below it since: a message released by
  a stopping node, one parked for this node's operator).
- A sweep also starts over once it is a lease old, so work below it whose holder died (its lease
  ran out) waits at most about a lease even while every claim comes back full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sweep:
    """Where the next claim starts (``after``: ids above it; "": from the first) and when the
    sweep started from the first id."""

    after: str = ""
    started: float = 0.0


def next_claim(sweep: Sweep, now: float, lease: float) -> Sweep:
    """The sweep a claim made at ``now`` uses: this one, or a new one from the first id when this
    one is at the start already or a ``lease`` old."""
    if not sweep.after or now - sweep.started >= lease:
        return Sweep("", now)
    return sweep


def after_claim(sweep: Sweep, claimed: Sequence[str], asked: int) -> tuple[Sweep, bool]:
    """The sweep after a claim under ``sweep`` that asked for ``asked`` and took the ids
    ``claimed`` (in id order), and whether to claim again at once."""
    full = len(claimed) == asked and asked > 0
    return Sweep(claimed[-1] if full else "", sweep.started), full or bool(sweep.after)

