"""Status callbacks: which events a customer hears about, and which events go out together
(SPEC §12): pure decisions over plain values.

Which. A selection is what ``callback_statuses`` says, kept as one short string: ``"all"``,
``"final"`` (the events whose ``final`` flag is set, SPEC §5), or the chosen status names joined by
commas in the order the caller lists the statuses (``"submitted,delivered"``; ``""`` chooses none).
``parse_selection`` turns a config or request value into that string, ``selects`` answers for one
event. The status names are passed in, so this module needs nothing from the rest of the gateway.

Shared. One push worker sends for every customer: a customer whose backend hangs must not take
what the others need. Its POSTs on the way take at most an even share of the worker's POST slots
among the targets that have POSTs on the way, events waiting or a POST done within the last
interval (``post_room``); and its jobs waiting in the worker take at most half of the room for them, beyond
which its jobs stay in the store for later claims (``crowded``, ``beyond_share``). A quarter of the
POST slots is never taken by one target. Measured with
``scripts/bench --hung-callbacks``: before, 2,000 callbacks of another customer to a backend that
never answered left the bench's own customer without a single callback for two minutes.

Together. Events waiting for one target (account and URL) are taken oldest first. An event whose
message already has an event on the way (``busy``), or an earlier event left behind, is left behind
too, so a message's events never overtake each other, not even when a batch fails and is sent
again later. A batch goes when it holds ``size`` events, or when its oldest event has waited
``linger`` seconds; until then ``next_batches`` names the moment it will be due.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache

__all__ = ["ALL", "FINAL", "FINAL_FAILURES", "beyond_share", "crowded", "first_status_pushed", "next_batches",
           "parse_selection", "post_room", "selects"]

ALL = "all"
FINAL = "final"
#: final events other than ``delivered``: the receipts an ESME asks for with registered_delivery 2
#: (SPEC §13); not a value of ``callback_statuses``
FINAL_FAILURES = "final-failures"


def parse_selection(value: object, statuses: Sequence[str]) -> str:
    """``"all"``, ``"final"`` or a list of names from ``statuses`` → the selection string.
    Anything else raises ValueError saying what is allowed."""
    if isinstance(value, str):
        if value in (ALL, FINAL):
            return value
        raise ValueError(f'must be "all", "final" or a list of statuses, not {value!r}')
    if not isinstance(value, list):
        raise ValueError('must be "all", "final" or a list of statuses')
    chosen = set()
    for name in value:
        if not isinstance(name, str) or name not in statuses:
            raise ValueError(f"lists {_shown(name)}, which is not a status (the statuses: {', '.join(statuses)})")
        chosen.add(name)
    return ",".join(name for name in statuses if name in chosen)


def _shown(value: object) -> str:
    """A value as the customer wrote it: JSON's spelling (``null``, ``"x"``), not Python's."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # a config's date or time (TOML has them)
        return repr(value)


@lru_cache(maxsize=512)
def _names(selection: str) -> frozenset[str]:
    return frozenset(selection.split(",")) if selection else frozenset()


def selects(selection: str, status: str, final: bool) -> bool:
    """Whether an event with ``status`` and ``final`` is pushed under ``selection``."""
    if selection == ALL:
        return True
    if selection == FINAL:
        return final
    if selection == FINAL_FAILURES:
        return final and status != "delivered"
    return status in _names(selection)


def first_status_pushed(selection: str, status: str, final: bool, *, answered_with_it: bool) -> bool:
    """Whether the status a message was stored with is pushed. Not when the answer to its
    submission carried it (the HTTP API's 202, SPEC §11); otherwise (an SMPP ``submit_sm_resp``
    carries only the id, SPEC §13) when it is final and ``selection`` selects it: an ESME that asked
    for receipts hears of a message stopped at acceptance (stop list) as of any other end."""
    return not answered_with_it and final and selects(selection, status, final)


def next_batches(waiting: Sequence[tuple], *, size: int, linger: float, now: float, busy: Collection[str] = (),
                 limit: int | None = None) -> tuple[list[list[int]], float | None]:
    """The batches to send now from ``waiting``: tuples whose first two items are (message,
    waiting since), oldest first. At most ``limit`` batches.

    Returns (batches as lists of positions in ``waiting``, None), or, when the last batch is still
    filling, (the batches before it, the moment it will be due). A message with an event in an
    earlier batch, in ``busy`` or left behind has its later events left behind: in a batch or
    across batches, a message's events stay in order even when a batch must be sent again.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    in_current: set[str] = set()
    left: set[str] = set(busy)  # messages whose next event may not go in this batch or later ones
    oldest = 0.0
    for i, item in enumerate(waiting):
        if limit is not None and len(batches) >= limit:
            return batches, None
        message = item[0]
        if message in left:
            continue
        if not current or item[1] < oldest:
            oldest = item[1]
        current.append(i)
        in_current.add(message)
        if len(current) == size:
            batches.append(current)
            left |= in_current
            current, in_current = [], set()
    if not current or (limit is not None and len(batches) >= limit):
        return batches, None
    due = oldest + linger
    if due <= now:
        batches.append(current)
        return batches, None
    return batches, due


#: The share of a push worker's room for waiting jobs that one account's may take.
ACCOUNT_SHARE = 0.5


#: The share of a push worker's POST slots that no one target takes, even alone: kept for the
#: others, so that a customer who comes back finds slots at once, not a timeout later.
RESERVED_SHARE = 0.25


def post_room(*, concurrency: int, in_flight: int, target_in_flight: int, targets: int) -> int:
    """POSTs a target may start now: the free slots of ``concurrency``, and no more than its even
    share of them all among the ``targets`` that have POSTs on the way, events waiting or a POST
    just done (itself included), nor more than what ``RESERVED_SHARE`` leaves; less the
    ``target_in_flight`` it has on the way; at least one slot each."""
    share = max(1, min(concurrency // max(1, targets), concurrency - int(concurrency * RESERVED_SHARE)))
    return max(0, min(concurrency - in_flight, share - target_in_flight))


def _account_cap(max_waiting: int) -> int:
    return max(1, int(max_waiting * ACCOUNT_SHARE))


def crowded(waiting: Mapping[str, int], max_waiting: int) -> list[str]:
    """The accounts whose jobs waiting in a worker (``waiting``: per account) fill their share of
    its ``max_waiting``: its next claim leaves their jobs in the store."""
    cap = _account_cap(max_waiting)
    return sorted(account for account, n in waiting.items() if n >= cap)


def beyond_share(accounts: Sequence[str], waiting: Mapping[str, int], max_waiting: int) -> list[int]:
    """The positions, in a claim's jobs (their ``accounts``, in id order), of the jobs to give back
    because their account's share is full with the ones before them (``waiting``: what each
    account has waiting already). Each account keeps its oldest, so a message's later jobs go back
    with its earlier ones."""
    cap = _account_cap(max_waiting)
    taken: dict[str, int] = {}
    out = []
    for i, account in enumerate(accounts):
        n = taken.get(account, waiting.get(account, 0))
        if n >= cap:
            out.append(i)
        else:
            taken[account] = n + 1
    return out
