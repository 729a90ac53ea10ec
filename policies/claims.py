"""Where a node's next claim of stored messages starts: a sweep through the backlog, as a pure
decision; below, how much of the node's memory one operator takes ("an operator that cannot keep
up") and where the push worker's claims start ("push jobs").

Why: a node holds what it claimed (up to ``max_in_memory``) until it is sent. A claim that starts
from the oldest queued message walks past all of those again, every time: on PostgreSQL 20,000 held
rows made each claim of a big backlog about 20 ms, in the writer's queue; and at load, with the
backlog drained and each API worker's kick claiming what it stored, every claim walked the few
hundred messages held between claim and submit: the most expensive statement of a run (450 ms of
PostgreSQL's time for 10,000 messages, docs/benchmarks.md, twenty-fourth session). So a claim starts
after the last id the previous claim took, and the claims sweep the backlog in id order.

- A full claim moves the sweep to its last id; the next one goes on from there at once.
- A claim that comes back short found the end of the stored work. The next one goes on from there
  when what was stored since was announced with its first id above it (ids sort by creation time,
  and a worker's messages are committed in that order), or from just below that id. It starts over
  from the first id when an announcement did not name its first id, and once the sweep is an
  ``interval`` old: work given back below the sweep (a message released by a stopping node, one
  parked for an operator this node has bound since, a lease that ran out, a message approved or
  released from its schedule) waits at most about a claim interval, as it did for the claim every
  ``interval`` before.
- A sweep through a backlog also starts over once it is a lease old, so work below it whose holder
  died waits at most about a lease even while every claim comes back full; one that reaches the end
  an ``interval`` or more after it started starts over at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sweep:
    """Where the next claim starts (``after``: ids above it; "": from the first), when the sweep
    started from the first id, and whether its last claim found the end of the stored work."""

    after: str = ""
    started: float = 0.0
    ended: bool = False


def announced(so_far: str | None, first_id: str) -> str:
    """What the announcements since the last claim began say, after one more whose lowest id is
    ``first_id`` ("": it did not say): the lowest id announced, or "" when one did not say (the
    work may be anywhere). ``so_far`` None: nothing was announced before this one."""
    if not first_id or so_far == "":
        return ""
    return first_id if so_far is None else min(so_far, first_id)


def next_claim(sweep: Sweep, now: float, lease: float, interval: float, stored_from: str | None = None) -> Sweep:
    """The sweep a claim made at ``now`` uses. ``stored_from``: what was announced since the last
    claim began (``announced``; None: nothing)."""
    if not sweep.after:
        return Sweep("", now)
    if not sweep.ended:
        return Sweep("", now) if now - sweep.started >= lease else sweep
    if stored_from == "" or now - sweep.started >= interval:
        return Sweep("", now)
    if stored_from is not None and stored_from <= sweep.after:
        below = just_below(stored_from)
        return Sweep(below, sweep.started, True) if below else Sweep("", now)
    return sweep


def after_claim(sweep: Sweep, claimed: Sequence[str], asked: int, now: float, interval: float) -> tuple[Sweep, bool]:
    """The sweep after a claim at ``now`` under ``sweep`` that asked for ``asked`` and took the ids
    ``claimed`` (in id order), and whether to claim again at once: after a full claim, and after a
    short one that would start over from the first id (a sweep through a backlog an ``interval``
    old or more), so that work given back below it meanwhile is found at once."""
    if asked > 0 and len(claimed) == asked:
        return Sweep(claimed[-1], sweep.started), True
    ended = Sweep(claimed[-1] if claimed else sweep.after, sweep.started, True)
    return ended, bool(sweep.after) and now - sweep.started >= interval


_ID = re.compile(r"[0-9a-f]{24}")  # smscore.model.new_message_id


def just_below(message_id: str) -> str:
    """The greatest id below ``message_id`` (a claim "after" it takes ``message_id`` too), for
    the gateway's own ids; "" (from the first) for any other, or for the lowest."""
    if not _ID.fullmatch(message_id) or not int(message_id, 16):
        return ""
    return f"{int(message_id, 16) - 1:024x}"


# -- an operator that cannot keep up ------------------------------------------------------------------
# Why: a node holds at most ``max_in_memory`` messages, and a message waits in its operator's queue
# until the link takes it. An operator with no bind up (its SMSC down), or one slower than what
# comes for it (a throttling SMSC), filled the node's memory with its messages, and the node claimed
# nothing more: the other operators' messages stayed in the store, unsent, until it caught up. So
# a quarter of the room is kept for the other operators (when the node has others): an operator
# whose queue holds the rest is full; claims and acceptance then leave in the store the messages of
# the profiles none of whose operators has room (``policies.routing.blocked_profiles``), and a
# message that comes for it all the same (a profile with another operator, a claim that took more
# than the room left) waits in the store, parked for it, once its queue holds a claim's batch more.
# It has room again at half of that, and the claims then start again from the first id.

#: The share of a node's room in memory kept for the other operators.
RESERVED_SHARE = 0.25


def _line(most: int, others: bool) -> int:
    return max(1, most - int(most * RESERVED_SHARE) if others else most)


def queue_full(queued: int, most: int, others: bool, was_full: bool) -> bool:
    """Whether an operator whose queue here holds ``queued`` is full, on a node that holds at most
    ``most`` (and has ``others`` operators besides it): from the room not kept for them on, until
    it is down to half of that."""
    line = _line(most, others)
    return queued > line // 2 if was_full else queued >= line


def waits_in_store(queued: int, most: int, others: bool, batch: int) -> bool:
    """Whether a message for an operator whose queue holds ``queued`` waits in the store instead,
    parked for it: a claim's ``batch`` past the line where it is full."""
    return queued >= _line(most, others) + batch


# -- push jobs -----------------------------------------------------------------------------------
# Why: a customer whose backend is down keeps its status callbacks waiting for their retries, up to
# ``[push] retry_for`` (24 h): a day of them at 100 messages a second is millions of rows at the
# front of push_jobs. SQLite's claim reads the table in id order until it has its jobs, so every
# claim (one per few stored receipts at load) walked all of them: 7 ms at 100,000 waiting, 64 ms at
# 1,000,000, on the reactor thread, for every customer. So the claims sweep the jobs as the claims
# of messages do: a claim takes jobs above the last one the previous claims read (jobs are numbered
# in the order they are stored), and the claimer's periodic claim (once a second) starts from the
# first job, which finds what became due below the sweep (a retry's time came, a lease ran out,
# jobs given back) no later than it did when only that claim looked for it at idle. When that claim
# itself grows long (millions of jobs waiting), it comes at most every ten times what it took, so
# that it keeps to a tenth of the claimer's time; retries, 5 s to 10 min apart, go that much later.

#: The periodic claim from the first job takes at most this share of the time between two.
PERIODIC_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class JobSweep:
    """Where the push claims stand: ``after``, the last job id they have read past (0: none yet);
    when the last claim from the first job was asked for (None: never) and how long it took."""

    after: int = 0
    started: float | None = None
    took: float = 0.0


def periodic_claim(sweep: JobSweep, now: float, interval: float) -> tuple[bool, JobSweep]:
    """Whether the claimer's tick at ``now`` asks for the claim from the first job (every
    ``interval``, or less often when that claim took more than a tenth of the time between two),
    and the sweep that notes it was asked for."""
    if sweep.started is None or now - sweep.started >= max(interval, sweep.took / PERIODIC_SHARE):
        return True, JobSweep(sweep.after, now, sweep.took)
    return False, sweep


def job_claim_from(sweep: JobSweep, periodic: bool) -> int:
    """The id a claim takes jobs above: 0 (from the first job) for the periodic claim, else the
    sweep's."""
    return 0 if periodic else sweep.after


def after_job_claim(sweep: JobSweep, claimed: Sequence[int], asked: int, *,
                    periodic_took: float | None = None) -> JobSweep:
    """The sweep after a claim that asked for ``asked`` jobs and took the ids ``claimed`` (in id
    order); ``periodic_took``: how long it took, when it was the periodic claim. A full claim read
    no further than its last job: the sweep goes on from there (lower than before, when a claim
    from the first job came back full). A short one read every job above where it started: the
    sweep stays past all of them."""
    took = sweep.took if periodic_took is None else periodic_took
    if not claimed:
        after = sweep.after
    elif asked > 0 and len(claimed) >= asked:
        after = claimed[-1]
    else:
        after = max(sweep.after, claimed[-1])
    return JobSweep(after, sweep.started, took)
