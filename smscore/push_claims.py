"""How the push worker claims its jobs from the store and gives them back, part of the worker
(``smscore.callbacks``).

Why a module of its own: a claim decides what the worker holds, and so what every customer waits
for. ``kick()`` claims due jobs with a lease, many per query, one claim at a time (kicks meanwhile
are folded into one more). The claims sweep the jobs (``policies.claims.JobSweep``): each takes
jobs above the last one the previous claims read, and the periodic claim starts from the first job,
so that jobs waiting for their retries at the front of the table are read once an interval, not at
every claim. An account whose jobs fill its share of the worker (``policies.callbacks.crowded``) is
left in the store by the next claims, and what a claim brought past that share is given back at
once; so are the jobs a claim brings behind a POST that failed, and jobs that waited here so long
that their lease would end before a POST of them could finish.
"""

from __future__ import annotations

from policies.callbacks import beyond_share, crowded
from policies.claims import after_job_claim, job_claim_from
from smscore.model import PushJob


class PushClaims:
    """Mixed into ``PushWorker``: its store, clock, node, config, lease, interval, ``max_waiting``,
    ``_waiting`` (jobs per target), ``_waiting_of`` (per account), ``_count``, ``_sweep``,
    ``_retrying``, ``_dispatch`` and the claim's own flags."""

    def kick(self) -> None:
        """Claim what is due (at most one claim at a time: a kick meanwhile asks for one more)."""
        if self._stopping or self._giving_back:
            return
        if self._claiming:
            self._again = True
            return
        # Claimed even while every POST slot is busy: the jobs of the other customers must be here
        # to take the slots a slow backend's POSTs leave (policies.callbacks.post_room).
        room = self.max_waiting - self._count
        if room <= 0:
            return
        now = self.clock.seconds()
        lease_until = now + self._lease_span()
        self.claims += 1
        self._claiming = True
        periodic, self._periodic = self._periodic, False
        after = job_claim_from(self._sweep, periodic)

        def claimed(jobs):
            took = self.clock.seconds() - now if periodic else None
            self._sweep = after_job_claim(self._sweep, [job.id for job in jobs], room, periodic_took=took)
            behind = [job.id for job in jobs if job.subject in self._retrying]
            jobs = [job for job in jobs if job.subject not in self._retrying]
            over = set(beyond_share([job.account for job in jobs], self._waiting_of, self.max_waiting))
            for i, job in enumerate(jobs):
                if i not in over:
                    self._waiting.setdefault(target_of(job), []).append(
                        (job.subject, _waiting_since(job), job, lease_until))
                    self._waiting_of[job.account] += 1
            self._count += len(jobs) - len(over)
            if behind:
                self._give_back(behind, "behind a push that failed")
            if over:  # an account's share is full: those wait in the store for a later claim
                self._give_back([jobs[i].id for i in sorted(over)], "its account's share of the worker is full")

        def failed(failure):
            self.log.error("claiming push jobs failed", error=failure.getErrorMessage())

        def done(_):
            self._claiming = False
            waiters, self._claim_waiters = self._claim_waiters, []
            for waiter in waiters:
                waiter.callback(None)
            self._dispatch()
            if self._again:
                self._again = False
                self.kick()

        d = self.store.claim_push_jobs(self.node, now, lease_until, room, after=after,
                                       skip_accounts=crowded(self._waiting_of, self.max_waiting))
        d.addCallbacks(claimed, failed)
        d.addCallback(done)

    def _lease_span(self) -> float:
        """How long a claim holds its jobs: a POST may wait the longest linger, then take the timeout."""
        config = self.config_source()
        return (self.lease + config.push.timeout
                + max((a.callback_linger for a in config.accounts.values()), default=0.0))

    def _give_back(self, ids: list[int], why: str) -> None:
        d = self.store.finish_pushes(self.clock.seconds(), release=ids, owner=self.node)
        d.addErrback(lambda f: self.log.error("giving back push jobs failed", why=why, jobs=len(ids),
                                              error=f.getErrorMessage()))

    def _give_back_stale(self) -> None:
        """Give back waiting jobs whose lease would end before a POST of them could finish, with the
        later jobs of their messages (claimed after them, their leases end later: they must not go
        out while another node sends the earlier ones)."""
        soon = self.clock.seconds() + self.config_source().push.timeout + 2 * self.interval
        subjects = {w[0] for waiting in self._waiting.values() for w in waiting if w[3] <= soon}
        if subjects:
            stale = self._hold_back(subjects)
            self.log.warning("push jobs waited too long here, given back", jobs=len(stale))
            self._give_back(stale, "waited too long")

    def _hold_back(self, subjects: set[str]) -> list[int]:
        """Take the waiting jobs of ``subjects`` out (to give back): their earlier jobs are retried."""
        released = []
        for target in list(self._waiting):
            waiting = self._waiting[target]
            keep = [w for w in waiting if w[0] not in subjects]
            if len(keep) < len(waiting):
                released.extend(w[2].id for w in waiting if w[0] in subjects)
                self._waiting_of[target[1]] -= len(waiting) - len(keep)
                if keep:
                    self._waiting[target] = keep
                else:
                    del self._waiting[target]
        self._count -= len(released)
        return released


def _waiting_since(job: PushJob) -> float:
    """When a job's linger counts from: when its event happened, for a job never tried. A job
    tried before lingered then, and its retry is due now: it goes at once (its ``first_at`` is no
    longer when it was queued but its first attempt, see ``Store.finish_pushes``)."""
    return job.first_at if job.attempts == 0 else float("-inf")


def target_of(job: PushJob) -> tuple[str, str, str]:
    """Where a job goes: jobs of one target may share a POST (status callbacks of one account and URL)."""
    return job.kind, job.account, job.url
