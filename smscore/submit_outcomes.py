"""What an operator's answer to a submit changes, stored, part of the pipeline.

Why a module of its own: the outcome of a submit (accepted with its SMSC ids, or refused) must reach
the store, whatever the store does meanwhile. The message went out (or was refused); until its
outcome is stored the store still has it ``queued``, held by this node. If that write is lost (the
store down, PostgreSQL restarted under it), the message would wait there, sent and delivered but
never ``submitted`` (its receipts kept as orphans), until a restart sent it a second time. So a
failed write of an outcome is tried again, 0.5 s later, then twice as long each time up to 30 s,
until it is stored. Meanwhile the message keeps its in-flight slot: after a crash only what holds
a slot may go out twice (SPEC §11, ``window × binds``). Storing an outcome twice changes nothing
the first did not (a message submitted already stays as it is; its SMSC ids are kept again).
"""

from __future__ import annotations

from twisted.python.failure import Failure

from connectors.api import SubmitError
from policies.retry import STORE_RETRY_FIRST, next_store_retry, refused_too_often
from smscore.model import Message
from smscore.transitions import Transition


class SubmitOutcomes:
    """Mixed into ``Pipeline``: its store, clock, node, lease, metrics, links, queues, ``inflight``,
    ``_sending``, ``_outcome_retries``, ``pump``, ``_after`` and ``_log_failure``."""

    def _stored_attempt(self, result, operator: str, message_id: str):
        """The outcome of a submit is stored: it is no longer being sent, its in-flight slot is free."""
        self._sending.pop(message_id, None)
        self.inflight[operator] -= 1
        if operator in self.links:
            self.pump(operator)
        return result

    def _submitted(self, keys: list[str], operator: str, m: Message, started: float) -> None:
        try:
            m.refusals = 0
            now = self.clock.seconds()
            self.metrics.submit_seconds.observe((), now - started)
            self.metrics.operator_attempts.inc((operator, "accepted"))
            self._store_submit(operator, m, keys, now, STORE_RETRY_FIRST)
        except Exception:  # noqa: BLE001 - logged here: no errback follows
            self._log_failure(Failure(), "submit bookkeeping failed", message_id=m.id)

    def _store_submit(self, operator: str, m: Message, keys: list[str], at: float, delay: float) -> None:
        self._outcome_retries.pop(m.id, None)
        now = self.clock.seconds()
        # No errback after these two: each logs what it raises itself (on the hottest path there
        # is, a callback fewer a message).
        d = self.store.record_submit(m.id, operator, keys, at, self.node, now + self.lease)
        d.addCallbacks(self._submit_stored, self._submit_not_stored, callbackArgs=(operator, m.id),
                       errbackArgs=(operator, m, keys, at, delay))

    def _submit_stored(self, transitions: list[Transition], operator: str, message_id: str) -> None:
        try:
            self._stored_attempt(None, operator, message_id)
            self._after(transitions, held=True)
        except Exception:  # noqa: BLE001 - logged here: no errback follows
            self._log_failure(Failure(), "submit bookkeeping failed", message_id=message_id)

    def _submit_not_stored(self, failure, operator: str, m: Message, keys: list[str], at: float,
                           delay: float) -> None:
        try:
            self._try_again(failure, m.id, delay, self._store_submit, operator, m, keys, at)
        except Exception:  # noqa: BLE001 - logged here: no errback follows
            self._log_failure(Failure(), "submit bookkeeping failed", message_id=m.id)

    def _submit_failed(self, err: Exception, operator: str, m: Message, started: float) -> None:
        try:
            if not isinstance(err, SubmitError):
                self.log.error("submit raised", message_id=m.id, operator=operator, error=repr(err))
                err = SubmitError(SubmitError.TRANSIENT, repr(err))
            if err.answered:  # an SMSC's refusal is a response too: submit -> resp (SPEC §9)
                self.metrics.submit_seconds.observe((), self.clock.seconds() - started)
            self.metrics.operator_attempts.inc((operator, err.kind))
            if getattr(err, "maybe_sent", False):  # rare, and what ops look for after a complaint of a duplicate
                self.metrics.child(self.metrics.submit_unanswered, operator).inc()
                self.log.warning("submit unanswered: it may have gone, and goes again (a possible duplicate)",
                                 message_id=m.id, operator=operator, reason=err.detail)
            detail = err.detail
            if err.kind == SubmitError.TRANSIENT and getattr(err, "answered", False):
                m.refusals += 1
            if err.kind != SubmitError.PERMANENT and not refused_too_often(m.refusals):
                # Throttled or transient: no failure yet. Back to the front of the queue; the link
                # reports capacity 0 while it backs off, so this does not spin.
                self.log.debug("submit requeued", message_id=m.id, operator=operator, reason=detail)
                self.inflight[operator] -= 1
                self._sending.pop(m.id, None)
                self.queues.add(operator, m, front=True)
                return
            if err.kind != SubmitError.PERMANENT:
                detail = f"{detail} ({m.refusals} times in a row)"
            m.refusals = 0
            self._store_refusal(operator, m, detail, self.clock.seconds(), STORE_RETRY_FIRST)
        except Exception:  # noqa: BLE001 - logged here: no errback follows
            self._log_failure(Failure(), "submit bookkeeping failed", message_id=m.id)

    def _store_refusal(self, operator: str, m: Message, detail: str, at: float, delay: float) -> None:
        self._outcome_retries.pop(m.id, None)

        def stored(t) -> None:
            self._stored_attempt(None, operator, m.id)
            self._after([t] if t is not None else [], held=True)

        d = self.store.record_submit_failed(m.id, operator, detail, at)
        d.addCallbacks(stored, self._try_again, errbackArgs=(m.id, delay, self._store_refusal, operator, m, detail, at))
        d.addErrback(self._log_failure, "submit bookkeeping failed", message_id=m.id)

    def _try_again(self, failure, message_id: str, delay: float, store, *args) -> None:
        """A submit's outcome was not stored: ``store(*args, next delay)`` again after ``delay``."""
        self.log.error("storing a submit's outcome failed: trying again", message_id=message_id,
                       error=failure.getErrorMessage(), retry_in=delay)
        self._outcome_retries[message_id] = self.clock.callLater(delay, store, *args, next_store_retry(delay))

    def retry_outcomes_now(self) -> None:
        """The store answers again after an outage: the outcomes waiting for their next try are
        written now, not after their backoff (up to 30 s, with their in-flight slots held)."""
        for call in list(self._outcome_retries.values()):
            if call.active():
                call.reset(0)

    def stop_outcome_retries(self) -> None:
        """The pipeline stops: the outcomes not stored yet stay unknown to the store, their
        messages held by this node (a restart takes them back and sends them again, within the
        bound of SPEC §11: they held their slots)."""
        retries, self._outcome_retries = self._outcome_retries, {}
        for call in retries.values():
            if call.active():
                call.cancel()
