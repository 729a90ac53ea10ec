"""The push worker: delivers stored push jobs (MO to keyword backends, status callbacks, balance
notices) and records each attempt.

Jobs live in the store (``push_jobs``), written in the same transaction as the MO or the status
change they report, so a crash loses none and a restart resumes them.

Theory of operation
-------------------
- Claim. ``kick()`` claims due jobs with a lease, many per query (``smscore.push_claims``). At most
  one claim is in flight: kicks that come meanwhile (one per stored status change, per MO, per
  finished push) are folded into one more claim when it returns. The store hands out a job only
  with every earlier job of its message, or behind the earlier jobs this process holds
  (``Store.claim_push_jobs``), so a message's jobs are all here, in order, or none is; a message's
  next event joins the batch its earlier one waits in. Jobs a claim brings behind a POST that
  failed are given back at once: their earlier job is retried, and the store holds them back behind
  it once that is stored. The claims sweep the jobs (``policies.claims.JobSweep``): the periodic
  claim (every ``interval``) starts from the first job, the others above the last one read.
- Wait. Claimed jobs wait in memory per target: (kind, account, URL). ``policies.callbacks.
  next_batches`` picks what goes now. MO pushes and balance notices go one per POST at once. Status
  callbacks go one per POST too while the account's ``callback_batch`` is 1; above 1 they go as
  ``{"events": [...]}`` once a batch is full or its oldest event has waited ``callback_linger``
  (one timer, set for the earliest such moment). Batch size and linger are read from the current
  config each time a batch is formed, so a reload applies to the next batch. A message with a push
  on the way sends nothing more until that push is recorded: its events never overtake each other.
- Send. At most ``concurrency`` POSTs at once, through ``connectors.http_push.Pusher`` (one signed
  attempt per call, never a failure); shared among the customers (``policies.callbacks``,
  "Shared"): a target's POSTs take at most its share of the slots and never the last quarter, an
  account's jobs at most half of the room for waiting ones (claims skip it past that, or give back
  what they took over), and claims go on while every slot is busy, so that a backend that hangs
  holds its POSTs' slots, not everyone's. A push is never sent unsigned: the jobs of an account a
  reload removed (its secret went with it) are not POSTed but recorded as a failed attempt, so they
  wait on the retry schedule for the account to come back, and are dropped at the end of
  ``[push] retry_for`` like any push that keeps failing.
- Record, in one store operation per POST (``Store.finish_pushes``), and one log line per POST
  naming the messages (or the MO, or the account of a balance notice) it was about: the pusher
  writes none, it does not know what a push is about (SPEC §9: one event per line, ``message_id``
  on every line about a message):
  - success (2xx): every job of the POST is done; for an MO, a reply in the answer
    (``{"reply": ...}`` or text/plain) becomes an SMS to the phone from the shortcode;
  - failure: the whole POST is tried again after ``policies.retry.next_delay`` (5 s doubling, at
    most 10 min; a batch as far along as its most tried job), each job until ``[push] retry_for``
    has passed since its own first attempt (not since it was queued: a job held back behind an
    earlier job of its message that kept failing would otherwise be dropped after one attempt);
    the store keeps that moment as the job's ``first_at``. Jobs of the same messages still waiting
    here are given back to the store, where the retried ones hold them back. The first failure of
    an MO push sends the keyword's ``unavailable_reply`` to the phone, once. The MO stays in the
    inbox for pull either way.
- Leases. A claim's lease is ``[gateway] lease`` plus ``[push] timeout`` (a POST may take that
  long) plus the longest linger: a dead node's jobs go out from another node that much later.
  Jobs that could not go out in time (all POST slots busy for long) are given back before their
  lease ends, and on ``stop()`` every job still waiting here is given back, so another node, or
  this one restarted, takes them at once. A start first gives back what this node held before
  (``Store.release_push_jobs``): under this process's name, and under the names of the node's
  processes of an earlier run that no process has now (a node of two processes restarted with
  one, or the other way round; ``policies.leases``), but never what its other processes running
  now hold. Then it claims them at once like any unowned job.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred, succeed
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from connectors.http_push import PushResult, loggable_url
from policies.claims import JobSweep, periodic_claim
from policies.leases import node_of
from policies.callbacks import next_batches, post_room
from policies.retry import STORE_RETRY_FIRST, give_up, next_attempt_at, next_delay, next_store_retry
from smscore.claiming import give_back_earlier
from smscore.push_claims import PushClaims, target_of
from smscore.logs import get_logger
from smscore.metrics import Metrics
from smscore.mo import pushed_reply, unavailable_reply
from smscore.model import PushJob
from smscore.store.rules import CommitUnknown

#: A waiting job: (subject, waiting since, the job, its lease end). Subject and time come first
#: because ``next_batches`` reads them.
_Waiting = tuple[str, float, PushJob, float]


class PushWorker(PushClaims):
    """Claims due push jobs and delivers them, batching status callbacks as accounts ask, at most
    ``concurrency`` POSTs at a time and at most ``max_waiting`` jobs claimed and waiting."""

    def __init__(self, *, store, pusher, clock, node: str, config_source, mo_router_source, pipeline,
                 metrics: Metrics, concurrency: int = 50, lease: float = 30.0, interval: float = 1.0,
                 max_waiting: int = 1000, jitter=random.random, family: str | None = None,
                 siblings: Sequence[str] = ()) -> None:
        self.store = store
        self.pusher = pusher
        self.clock = clock
        self.node = node  # this process's lease owner
        #: the node this process is part of, and its other processes that push (``policies.leases``)
        self.family = node if family is None else family
        self.siblings = tuple(siblings)
        self.config_source = config_source  # () -> the current Config
        self.mo_router_source = mo_router_source  # () -> the current MoRouter
        self.pipeline = pipeline
        self.metrics = metrics
        self.concurrency = concurrency
        self.lease = lease
        self.interval = interval
        self.max_waiting = max_waiting
        self.jitter = jitter
        self.retry_first = 5.0  # seconds before the first retry (SPEC: 5 s); tests shorten it
        self.in_flight = 0  # POSTs on the way
        self.claims = 0  # claim queries run (tests, diagnosis)
        self.log = get_logger(component="push", node=node_of(node))  # "gw1", not the owner "gw1/1"
        self._loop: LoopingCall | None = None
        self._waiting: dict[tuple[str, str, str], list[_Waiting]] = {}
        self._count = 0  # jobs in _waiting
        self._waiting_of: Counter[str] = Counter()  # jobs in _waiting per account (policies.callbacks.crowded)
        self._posting_to: Counter[tuple[str, str, str]] = Counter()  # POSTs on the way per target
        self._posted_to: dict[tuple[str, str, str], float] = {}  # when each target's last POST ended
        self._busy: set[str] = set()  # subjects with a POST on the way
        #: subjects whose POST failed: later jobs a claim brings are given back while the retry is
        #: being stored (None), or until the moment the earlier job's lease ends when that failed
        self._retrying: dict[str, float | None] = {}
        self._claiming = False
        self._sweep = JobSweep()  # where the next claim starts (policies.claims)
        self._periodic = False  # the next claim is the periodic one, from the first job (_tick)
        self._claim_waiters: list[Deferred] = []  # stop() waiting for the claim on the way
        self._again = False
        self._dispatching = False
        self._dispatch_again = False
        self._timer = None
        #: start() gives back the node's earlier jobs: no claim meanwhile, or it would give back
        #: what this claim took (the loop claims at once after it)
        self._giving_back = False
        self._stopping = False
        self._idle: list[Deferred] = []
        self._record_retries: set[Deferred] = set()  # waiting to store what came of a push again

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> Deferred:
        """Give back what the node's earlier processes held (see the module docstring), then claim
        every ``interval``; fires once claiming started (a failed give-back is logged: those
        jobs wait for their leases instead)."""
        self._giving_back = True
        d = give_back_earlier(self.store.release_push_jobs(self.family, self.siblings), self.log, "push jobs")
        return d.addCallback(lambda _: self._start_loop())

    def _start_loop(self) -> None:
        self._giving_back = False
        if self._stopping:
            return
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stop(self) -> Deferred:
        """Stop claiming, give back every job waiting here, and fire once the POSTs on the way are
        recorded."""
        self._stopping = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._cancel_timer()
        for retry in list(self._record_retries):  # those jobs wait for their leases instead
            retry.cancel()
        return ensureDeferred(self._stop())

    async def _stop(self) -> None:
        if self._claiming:
            claim: Deferred = Deferred()
            self._claim_waiters.append(claim)
            await claim
        ids = [w[2].id for waiting in self._waiting.values() for w in waiting]
        self._waiting.clear()
        self._count = 0
        self._waiting_of.clear()
        if ids:
            try:
                await self.store.finish_pushes(self.clock.seconds(), release=ids, owner=self.node)
            except Exception as exc:  # noqa: BLE001 - their leases run out instead
                self.log.error("giving back push jobs failed", jobs=len(ids), error=repr(exc))
        if self.in_flight:
            d: Deferred = Deferred()
            self._idle.append(d)
            await d

    def _tick(self) -> None:
        now = self.clock.seconds()
        self._retrying = {s: until for s, until in self._retrying.items() if until is None or until > now}
        self._give_back_stale()
        periodic, self._sweep = periodic_claim(self._sweep, now, self.interval)
        self._periodic = self._periodic or periodic  # this claim, or the one after the claim under way
        self.kick()

    # -- forming batches ---------------------------------------------------------------------------
    def _shape(self, target, config) -> tuple[int, float, bool]:
        """(events per POST, linger, whether the body is {"events": [...]}) for a target."""
        kind, account_name, _ = target
        if kind != "status":
            return 1, 0.0, False
        account = config.accounts.get(account_name)
        if account is None or account.callback_batch <= 1:
            return 1, 0.0, False
        return account.callback_batch, account.callback_linger, True

    def _dispatch(self) -> None:
        """Send every batch that is due, as far as the POST slots allow; set the linger timer.
        A push may finish at once (and dispatch again): that only asks this loop for another turn."""
        if self._stopping:
            return
        if self._dispatching:
            self._dispatch_again = True
            return
        self._dispatching = True
        try:
            again = True
            while again:
                self._dispatch_again = False
                for target, jobs, batched, config in self._due():
                    self._send(target, jobs, batched, config)
                again = self._dispatch_again and not self._stopping
        finally:
            self._dispatching = False

    def _due(self) -> list[tuple]:
        """Take the batches that go now out of ``_waiting`` (their POST slots and messages are
        taken at once); set the timer for the first batch still filling."""
        self._cancel_timer()
        now = self.clock.seconds()
        config = self.config_source()
        due_next = None
        out = []
        # the targets sharing the slots: events waiting, POSTs on the way, or one done within the
        # last interval (a customer between two claims still counts)
        self._posted_to = {t: at for t, at in self._posted_to.items() if now - at < self.interval}
        targets = len(self._waiting.keys() | self._posting_to.keys() | self._posted_to.keys())
        for target, waiting in self._waiting.items():
            if self.in_flight >= self.concurrency:
                break
            room = post_room(concurrency=self.concurrency, in_flight=self.in_flight,
                             target_in_flight=self._posting_to[target], targets=targets)
            if room <= 0:
                continue
            size, linger, batched = self._shape(target, config)
            batches, due = next_batches(waiting, size=size, linger=linger, now=now, busy=self._busy, limit=room)
            if due is not None and (due_next is None or due < due_next):
                due_next = due
            for positions in batches:
                jobs = [waiting[i][2] for i in positions]
                self._busy.update(job.subject for job in jobs)
                self.in_flight += 1
                self._posting_to[target] += 1
                self._count -= len(jobs)
                self._waiting_of[target[1]] -= len(jobs)
                out.append((target, jobs, batched, config))
            for i in sorted((i for positions in batches for i in positions), reverse=True):
                del waiting[i]
        for target in {o[0] for o in out}:  # to the back of the line: no target starves the others
            waiting = self._waiting.pop(target)
            if waiting:
                self._waiting[target] = waiting
        if due_next is not None:
            self._timer = self.clock.callLater(max(0.0, due_next - now), self._linger_over)
        return out

    def _linger_over(self) -> None:
        self._timer = None
        self._dispatch()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    # -- sending and recording ---------------------------------------------------------------------
    def _send(self, target, jobs: list[PushJob], batched: bool, config) -> None:
        """POST ``jobs`` (their slot and messages are already taken, see ``_due``)."""
        account = config.accounts.get(target[1])
        sent_at = self.clock.seconds()
        if account is None:  # removed by a reload: nothing to sign with, and never unsigned
            d = succeed(PushResult(False, None, None, f"not sent: account {target[1]} is not in the config", 0.0))
        else:
            body = {"events": [job.body for job in jobs]} if batched else jobs[0].body
            d = maybeDeferred(self.pusher.push, target[2], body, account.secret)  # a raise still frees the slot
        d.addCallback(self._record, jobs, sent_at)
        d.addErrback(lambda f: self.log.error("push bookkeeping failed", jobs=[j.id for j in jobs],
                                              error=f.getTraceback()))
        d.addBoth(self._done, jobs)

    def _done(self, _, jobs: list[PushJob]) -> None:
        self.in_flight -= 1
        target = target_of(jobs[0])
        self._posting_to[target] -= 1
        if not self._posting_to[target]:
            del self._posting_to[target]
        self._posted_to[target] = self.clock.seconds()
        for job in jobs:
            self._busy.discard(job.subject)
        if self._stopping:
            if self.in_flight == 0 and self._idle:
                waiting, self._idle = self._idle, []
                for d in waiting:
                    d.callback(None)
            return
        self._dispatch()
        self.kick()

    def _record(self, result, jobs: list[PushJob], sent_at: float) -> Deferred:
        """Store what came of the POST of ``jobs`` made at ``sent_at``."""
        now = self.clock.seconds()
        config = self.config_source()
        first = jobs[0]
        self.metrics.callbacks.inc((first.kind, "ok" if result.ok else "failed"), len(jobs))
        mo_events: list[tuple[str, str, str]] = []
        replies: list = []
        done: list[int] = []
        retry: list[int] = []
        retry_at = None
        release: list[int] = []
        retrying: set[str] = set()  # the messages of the jobs retried
        if result.ok:
            done = [job.id for job in jobs]
            self._log(result, jobs)
            if first.kind == "mo":
                mo_events.append((first.subject, "pushed",
                                  f"HTTP {result.status} after {first.attempts + 1} attempt(s)"))
                reply = pushed_reply(self.mo_router_source(), first, result.reply, result.error, now)
                _noted(reply, mo_events, replies)
        else:
            attempts = max(job.attempts for job in jobs) + 1

            def first_attempt(job: PushJob) -> float:  # this POST, for a job never tried before
                return job.first_at if job.attempts else sent_at

            retried = [job for job in jobs if not give_up(first_attempt(job), now, config.push.retry_for)]
            retry = [job.id for job in retried]
            kept = set(retry)
            done = [job.id for job in jobs if job.id not in kept]
            if retry:
                retry_at = next_attempt_at(now, next_delay(attempts, first=self.retry_first, jitter=self.jitter()),
                                           [first_attempt(job) + config.push.retry_for for job in retried])
            self._log(result, jobs, attempts=attempts, retry_in=None if retry_at is None else retry_at - now,
                      abandoned=[job for job in jobs if job.id not in kept])
            if done and first.kind == "mo":
                mo_events.append((first.subject, "push abandoned", f"{result.error} after {attempts} attempts"))
            if retry:
                if first.kind == "mo":
                    mo_events.append((first.subject, "push failed", f"{result.error}; retry {attempts + 1}"))
                retrying = {job.subject for job in retried}
                release = self._hold_back(retrying)
                self._retrying.update(dict.fromkeys(retrying))
            if first.kind == "mo" and first.attempts == 0:
                _noted(unavailable_reply(self.mo_router_source(), first, now), mo_events, replies)
        d = self._finish(STORE_RETRY_FIRST, now, done=done, retry=retry, retry_at=retry_at,
                         error=result.error or "", release=release, mo_events=mo_events, replies=replies,
                         owner=self.node, lease_until=now + self.pipeline.lease,
                         replies_owner=self.pipeline.owner, tried_at=sent_at)
        if retrying:
            d.addBoth(self._retry_stored, retrying)
        d.addCallback(lambda _: self.pipeline.accepted_elsewhere(replies))
        return d

    def _retry_stored(self, result, subjects: set[str]):
        """The retry of a failed POST is stored: the store holds the later jobs of its messages back
        from now on. Not known to be stored (the commit's outcome unknown, stopping): until the
        earlier jobs' lease has ended, a claim's later jobs are still given back."""
        until = None if not isinstance(result, Failure) else self.clock.seconds() + self._lease_span()
        for subject in subjects:
            if until is None:
                self._retrying.pop(subject, None)
            else:
                self._retrying[subject] = until
        return result

    def _finish(self, delay: float, *args, **kw) -> Deferred:
        """``store.finish_pushes(*args, **kw)``; while the store fails (down, restarting), again
        ``delay`` later, then twice as long up to 30 s (``policies.retry.next_store_retry``), the
        POST's slot and its messages held meanwhile. Left to the jobs' lease instead, a callback
        delivered already was sent again ~40 s later, and the message's later events waited behind
        it. Not after a commit whose outcome is unknown (it may have stored replies: they would go
        twice), nor while stopping."""
        def failed(failure):
            if self._stopping or failure.check(CommitUnknown):
                return failure
            self.log.error("storing what came of a push failed: trying again", error=failure.getErrorMessage(),
                           retry_in=delay)
            again = deferLater(self.clock, delay, self._finish, next_store_retry(delay), *args, **kw)
            self._record_retries.add(again)
            return again.addBoth(_discarded, self._record_retries, again)

        return self.store.finish_pushes(*args, **kw).addErrback(failed)

    def _log(self, result, jobs: list[PushJob], *, attempts: int = 0, retry_in: float | None = None,
             abandoned: Sequence[PushJob] = ()) -> None:
        """The one line about a POST (SPEC §9: one event per line, with the ids it was about):
        ``pushed``, ``push failed`` (retried; ``abandoned`` names the messages of a batch whose
        events reached the end of their window) or ``push abandoned`` (nothing retried), with the
        target, the answer and the time it took. A delivered status callback is routine (one per
        message at least): debug; MO pushes, balance notices and every failure at info; anything
        dropped at warning."""
        first = jobs[0]
        line = {"kind": first.kind, "events": len(jobs), **_subjects(jobs), "target": loggable_url(first.url),
                "status": result.status, "error": result.error, "elapsed": round(result.elapsed, 3)}
        if result.ok:
            (self.log.debug if first.kind == "status" else self.log.info)("pushed", **line)
            return
        line["attempts"] = attempts
        if retry_in is None:
            self.log.warning("push abandoned", **line)
            return
        line["retry_in"] = round(retry_in, 1)
        if abandoned:
            line["abandoned"] = sorted({job.subject for job in abandoned})
        (self.log.warning if abandoned else self.log.info)("push failed", **line)



def _noted(outcome, mo_events: list, replies: list) -> None:
    """An MO reply's outcome (``smscore.mo``: its history event and the reply, if one goes)."""
    if outcome is not None:
        event, reply = outcome
        mo_events.append(event)
        if reply is not None:
            replies.append(reply)


def _discarded(result, retries: set, retry: Deferred):
    retries.discard(retry)
    return result


def _subjects(jobs: list[PushJob]) -> dict:
    """Log context: the MO or message id(s) a POST was about (the account, for a balance notice)."""
    if jobs[0].kind == "mo":
        return {"mo_id": jobs[0].subject}
    if jobs[0].kind != "status":
        return {"account": jobs[0].account}
    if len(jobs) == 1:
        return {"message_id": jobs[0].subject}
    return {"message_ids": sorted({job.subject for job in jobs})}
