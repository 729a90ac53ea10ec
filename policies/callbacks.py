"""Status callbacks: which events a customer hears about, and which events go out together
(SPEC §12): pure decisions over plain values.

Which. A selection is what ``callback_statuses`` says, kept as one short string: ``"all"``,
``"final"`` (the events whose ``final`` flag is set, SPEC §5), or the chosen status names joined by
commas in the order the caller lists the statuses (``"submitted,delivered"``; ``""`` chooses none).
``parse_selection`` turns a config or request value into that string, ``selects`` answers for one
event. The status names are passed in, so this module needs nothing from the rest of the gateway.

Together. Events waiting for one target (account and URL) are taken oldest first. An event whose
message already has an event on the way (``busy``), or an earlier event left behind, is left behind
too, so a message's events never overtake each other, not even when a batch fails and is sent
again later. A batch goes when it holds ``size`` events, or when its oldest event has waited
``linger`` seconds; until then ``next_batches`` names the moment it will be due.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from functools import lru_cache

__all__ = ["ALL", "FINAL", "FINAL_FAILURES", "first_status_pushed", "next_batches", "parse_selection", "selects"]

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
