"""The pipeline's in-memory queues, one per operator, and which message ids they hold.

Why a module of its own: a claim must not take a second copy of a message this node holds
already (``Pipeline._claimed``), and a cancel looks for the message it names. Both asked every
queue, message by message: with lists of 100, the main worker holds up to ``max_in_memory``
messages and claims every few hundred sends, so those walks were a tenth of its CPU
(docs/benchmarks.md, seventeenth session). The queues keep the set of their ids as they change,
so either question costs a look-up.

Every change to a queue goes through these methods; reading one (``queues[name]``, iterating,
``len``) is as with a plain dict of deques.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection

from smscore.model import Message


class OperatorQueues(dict[str, deque[Message]]):
    """Operator name → its queue of messages waiting to be submitted; ``ids``: the ids in all of them."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def add(self, name: str, message: Message, front: bool = False) -> None:
        queue = self.get(name)
        if queue is None:
            queue = self[name] = deque()
        if front:
            queue.appendleft(message)
        else:
            queue.append(message)
        self.ids.add(message.id)

    def pop(self, name: str) -> Message:
        """The next message of ``name``'s queue (which must not be empty), out of the queues."""
        message = self[name].popleft()
        self.ids.discard(message.id)
        return message

    def take(self, message_id: str) -> Message | None:
        """Take ``message_id`` out of whichever queue holds it; None when none does."""
        if message_id not in self.ids:
            return None
        for queue in self.values():
            for message in queue:
                if message.id == message_id:
                    queue.remove(message)
                    self.ids.discard(message_id)
                    return message
        self.ids.discard(message_id)  # not reached while every change goes through here
        return None

    def drop(self, message_ids: Collection[str]) -> list[str]:
        """Drop these messages from the queues; returns the ids that were there."""
        gone = self.ids.intersection(message_ids)
        if not gone:
            return []
        return [m.id for m in self._take_if(lambda m: m.id in gone)]

    def drain(self, name: str) -> list[Message]:
        """Everything ``name``'s queue holds, in order, taken out of it."""
        queue = self.get(name)
        if not queue:
            return []
        waiting = list(queue)
        queue.clear()
        self.ids.difference_update(m.id for m in waiting)
        return waiting

    def take_expired(self, now: float) -> list[Message]:
        """Take out every message whose validity (``expires_at``) ended by ``now``. A walk of all
        of them: for a sweep every second or so (a few ms for the 20,000 memory holds at most)."""
        return self._take_if(lambda m: m.expires_at is not None and m.expires_at <= now)

    def _take_if(self, gone: Callable[[Message], bool]) -> list[Message]:
        """Take out the messages ``gone`` says, queue by queue in order. Each queue is changed in
        place: a caller walking it keeps a queue that is current."""
        taken: list[Message] = []
        for queue in self.values():
            out = [m for m in queue if gone(m)]
            if out:
                keep = [m for m in queue if not gone(m)]
                queue.clear()
                queue.extend(keep)
                taken += out
        self.ids.difference_update(m.id for m in taken)
        return taken

    def clear_all(self) -> None:
        """Empty every queue (the operators stay)."""
        for queue in self.values():
            queue.clear()
        self.ids.clear()
