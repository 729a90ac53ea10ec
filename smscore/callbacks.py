"""The push worker: delivers stored push jobs (MO to keyword backends, status callbacks) and
records each attempt.

Jobs live in the store (``push_jobs``), written in the same transaction as the MO or the status
change they report, so a crash loses none and a restart resumes them. The worker claims due jobs
with a lease (the oldest job of each message only, so callbacks arrive in order per message), POSTs
them through ``connectors.http_push.Pusher`` and records the outcome:

- success: the job is done; for an MO, a reply in the answer (``{"reply": ...}`` or text/plain)
  becomes an SMS to the phone from the shortcode;
- failure: tried again after ``policies.retry.next_delay`` (5 s doubling, at most 10 min), until
  ``[push] retry_for`` has passed since the first attempt; the first failure of an MO push sends the
  keyword's ``unavailable_reply`` to the phone, once. The MO stays in the inbox for pull either way.
"""

from __future__ import annotations

import random

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall

from policies.retry import give_up, next_delay
from smscore.logs import get_logger
from smscore.metrics import Metrics
from smscore.model import MoMessage, PushJob


class PushWorker:
    """Claims due push jobs and delivers them, at most ``concurrency`` at a time."""

    def __init__(self, *, store, pusher, clock, node: str, config_source, mo_router_source, pipeline,
                 metrics: Metrics, concurrency: int = 50, lease: float = 120.0, interval: float = 1.0,
                 jitter=random.random) -> None:
        self.store = store
        self.pusher = pusher
        self.clock = clock
        self.node = node
        self.config_source = config_source  # () -> the current Config
        self.mo_router_source = mo_router_source  # () -> the current MoRouter
        self.pipeline = pipeline
        self.metrics = metrics
        self.concurrency = concurrency
        self.lease = lease
        self.interval = interval
        self.jitter = jitter
        self.retry_first = 5.0  # seconds before the first retry (SPEC: 5 s); tests shorten it
        self.in_flight = 0
        self.log = get_logger(component="push", node=node)
        self._loop: LoopingCall | None = None
        self._claiming = False
        self._idle: list[Deferred] = []

    def start(self) -> None:
        self._loop = LoopingCall(self.kick)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stop(self) -> Deferred:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self.in_flight == 0:
            return succeed(None)
        d: Deferred = Deferred()
        self._idle.append(d)
        return d

    def kick(self) -> None:
        """Claim and start what is due, as far as the concurrency allows."""
        if self._claiming or (self._loop is not None and not self._loop.running):
            return
        room = self.concurrency - self.in_flight
        if room <= 0:
            return
        self._claiming = True
        now = self.clock.seconds()
        d = self.store.claim_push_jobs(self.node, now, now + self.lease, room)

        def claimed(jobs):
            self._claiming = False
            for job in jobs:
                self._attempt(job)

        def failed(failure):
            self._claiming = False
            self.log.error("claiming push jobs failed", error=failure.getErrorMessage())

        d.addCallbacks(claimed, failed)

    def _attempt(self, job: PushJob) -> None:
        self.in_flight += 1
        config = self.config_source()
        account = config.accounts.get(job.account)
        secret = account.secret if account is not None else None
        d = self.pusher.push(job.url, job.body, secret)
        d.addCallback(self._record, job)
        d.addErrback(lambda f: self.log.error("push bookkeeping failed", job=job.id, error=f.getTraceback()))
        d.addBoth(self._done)

    def _done(self, _) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle:
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)
        elif self._loop is not None and self._loop.running:
            self.kick()

    def _record(self, result, job: PushJob) -> Deferred:
        now = self.clock.seconds()
        config = self.config_source()
        outcome = "ok" if result.ok else "failed"
        self.metrics.child(self.metrics.callbacks, job.kind, outcome).inc()
        mo_events: list[tuple[str, str, str]] = []
        replies = []
        retry_at = None
        if result.ok:
            self.log.info("pushed", kind=job.kind, job=job.id, status=result.status, **_subject(job))
            if job.kind == "mo":
                mo_events.append((job.subject, "pushed", f"HTTP {result.status} after {job.attempts + 1} attempt(s)"))
                if result.reply:
                    self._reply(job, result.reply, mo_events, replies, now)
        else:
            attempts = job.attempts + 1
            if give_up(job.first_at, now, config.push.retry_for):
                self.log.warning("push abandoned", kind=job.kind, job=job.id, attempts=attempts,
                                 error=result.error, **_subject(job))
                if job.kind == "mo":
                    mo_events.append((job.subject, "push abandoned", f"{result.error} after {attempts} attempts"))
            else:
                retry_at = now + next_delay(attempts, first=self.retry_first, jitter=self.jitter())
                self.log.info("push failed", kind=job.kind, job=job.id, error=result.error, attempts=attempts,
                              retry_in=round(retry_at - now, 1), **_subject(job))
                if job.kind == "mo":
                    mo_events.append((job.subject, "push failed", f"{result.error}; retry {attempts + 1}"))
            if job.kind == "mo" and job.attempts == 0:
                self._unavailable(job, mo_events, replies, now)
        d = self.store.finish_push(job, now, retry_at=retry_at, error=result.error or "", mo_events=mo_events,
                                   replies=replies, owner=self.node, lease_until=now + self.pipeline.lease)
        d.addCallback(lambda _: self.pipeline.accepted_elsewhere(replies))
        return d

    def _mo_of(self, job: PushJob) -> MoMessage:
        b = job.body
        return MoMessage(id=b["id"], operator="", sender=b["from"], to=b["to"], text=b["text"], received_at=0.0,
                         account=job.account, keyword=b.get("keyword", ""), payload=b.get("payload", ""))

    def _reply(self, job: PushJob, text: str, mo_events, replies, now: float) -> None:
        router = self.mo_router_source()
        reply = router.reply_message(self._mo_of(job), text, job.account, now)
        if isinstance(reply, str):
            mo_events.append((job.subject, "reply not sent", reply))
        else:
            replies.append(reply)
            mo_events.append((job.subject, "reply queued", f"message {reply.id} (from the backend)"))

    def _unavailable(self, job: PushJob, mo_events, replies, now: float) -> None:
        router = self.mo_router_source()
        keyword = router.keyword_for(job.body["to"], job.body.get("keyword", ""))
        if keyword is None or not keyword.unavailable_reply:
            return
        reply = router.reply_message(self._mo_of(job), keyword.unavailable_reply, job.account, now)
        if isinstance(reply, str):
            mo_events.append((job.subject, "reply not sent", reply))
        else:
            replies.append(reply)
            mo_events.append((job.subject, "unavailable reply queued", f"message {reply.id}"))


def _subject(job: PushJob) -> dict:
    return {"mo_id": job.subject} if job.kind == "mo" else {"message_id": job.subject}

