"""Customers' cancels (``DELETE``, ``cancel_sm``) of the messages a node holds, part of the pipeline.

Why a module of its own: a cancel races the submit of the message it names. While the store records
it, the message is set aside (``Pipeline.enqueue`` puts it there if it reaches a queue meanwhile);
once every cancel of it is stored it is dropped, or goes on when every one was refused. A message
whose submit is out already is past cancelling (SPEC §4: 409 once submitted).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure

from smscore.model import CANCELLED_BY_CUSTOMER, Message
from smscore.store.rules import BeingSubmitted


class Cancelling:
    """Mixed into ``Pipeline``: its store, clock, node, queues, metrics, ``_sending``,
    ``_cancelling``, ``held``, ``enqueue`` and ``forget`` are what a cancel works on."""

    def cancel(self, message_id: str, account: str) -> Deferred:
        """A customer of ``account`` cancels ``message_id`` (``DELETE``, ``cancel_sm``): the store
        records it (its rules decide) while the message, if it waits here, is kept from going to an
        operator. Fires with the message as stored, history included. Fails with NotFound, Conflict
        (submitted already), or ``BeingSubmitted`` when its submit is out from here (SPEC §4: 409
        once submitted). A message another node or process holds is cancelled in the store like
        any other (SPEC §11: any node answers): the holder drops it at its next lease renewal."""
        def act() -> Deferred:
            d = self.store.act(message_id, "cancel", self.clock.seconds(), CANCELLED_BY_CUSTOMER, account=account)
            d.addCallback(self._counted)
            return d

        if not self.delivers:  # an API worker sends nothing: the store's answer is the whole story
            return act()
        sending = self._sending.get(message_id)
        if sending is not None and sending.account == account:
            return fail(BeingSubmitted(message_id))
        entry = self._cancelling.setdefault(message_id, [0, None, False])  # cancels, set aside, any stored
        entry[0] += 1
        if entry[1] is None:
            entry[1] = self.queues.take(message_id)
        d = act()
        d.addBoth(self._cancel_stored, message_id)
        d.addCallback(self._cancelled)
        return d

    def _counted(self, message: Message) -> Message:
        self.metrics.acted_on([message])  # smsgw_messages_total{status="stopped"}
        return message

    def _cancelled(self, message: Message) -> Message:
        self.forget([message.id])  # one that reached a queue another way meanwhile (a number look-up)
        return message

    def _cancel_stored(self, result, message_id: str):
        """A cancel of ``message_id`` is stored (or refused): when none is left, the message set
        aside is dropped (one was stored) or goes on (every one was refused)."""
        entry = self._cancelling[message_id]
        entry[0] -= 1
        entry[2] = entry[2] or not isinstance(result, Failure)
        if entry[0] == 0:
            del self._cancelling[message_id]
            if entry[1] is not None:
                if entry[2]:
                    self.held -= 1
                else:
                    self.enqueue(entry[1], front=True)
        return result
