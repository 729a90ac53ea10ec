"""smscore.backlog and policies.admission.over_backlog: SPEC §15 load shedding, Clock-driven."""

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from policies.admission import over_backlog
from smscore.backlog import Backlog, Backlogged
from smscore.model import Message, Status


def msg(status=Status.QUEUED) -> Message:
    return Message(id="x", account="a", to="46701234567", sender="S", text="t", encoding="gsm7", parts=1,
                   profile="p", created_at=0.0, updated_at=0.0, status=status)


class CountingStore:
    """Answers count_queued with what the test sets; ``pending`` holds a read that has not answered."""

    def __init__(self) -> None:
        self.queued = 0
        self.pending: Deferred | None = None
        self.broken = False

    def count_queued(self) -> Deferred:
        if self.broken:
            return fail(RuntimeError("store down"))
        if self.pending is not None:
            return self.pending
        return succeed(self.queued)


@pytest.mark.parametrize("queued, incoming, limit, refused", [
    (0, 5, 5, False), (0, 6, 5, True), (4, 1, 5, False), (5, 1, 5, True), (9, 0, 5, False), (5, 0, 5, False),
])
def test_over_backlog(queued, incoming, limit, refused):
    assert over_backlog(queued, incoming, limit) is refused


def test_the_store_figure_plus_what_this_process_accepted_since_is_checked():
    store, clock, limit = CountingStore(), Clock(), [10]
    backlog = Backlog(store=store, clock=clock, limit=lambda: limit[0])
    store.queued = 7
    backlog.start()
    backlog.check([msg(), msg(), msg()])  # 7 + 3 = 10: taken
    backlog.accepted([msg(), msg(), msg()])
    assert backlog.shedding
    with pytest.raises(Backlogged) as refused:
        backlog.check([msg()])
    assert (refused.value.queued, refused.value.limit, refused.value.retry_after) == (10, 10, 1)
    backlog.check([msg(Status.SCHEDULED), msg(Status.PAUSED)])  # queues nothing: never shed
    limit[0] = 11  # a reload raised it
    backlog.check([msg()])
    backlog.accepted([msg(Status.PENDING_APPROVAL), msg(), msg(Status.SCHEDULED)])  # one of them queued
    assert backlog.added == 4
    with pytest.raises(Backlogged):
        backlog.check([msg(Status.PAUSED), msg()])
    backlog.stop()


def test_a_read_counts_only_what_was_accepted_after_it_began():
    store, clock = CountingStore(), Clock()
    backlog = Backlog(store=store, clock=clock, limit=lambda: 100)
    backlog.start()
    backlog.accepted([msg()] * 4)
    store.pending = Deferred()
    clock.advance(1.0)  # a read begins, 4 accepted before it
    backlog.accepted([msg()] * 2)  # accepted while it runs: the read may not see them
    store.pending.callback(30)
    assert (backlog.queued, backlog.added) == (30, 2)
    backlog.stop()


def test_a_store_that_cannot_be_read_leaves_the_last_figure():
    store, clock = CountingStore(), Clock()
    backlog = Backlog(store=store, clock=clock, limit=lambda: 10)
    store.queued = 9
    backlog.start()
    store.broken = True
    clock.advance(1.0)
    assert backlog.queued == 9
    with pytest.raises(Backlogged):
        backlog.check([msg(), msg()])
    backlog.stop()


def test_a_slow_count_is_read_less_often():
    """A count that takes t seconds (a big backlog) is read again READ_SHARE_INVERSE x t after it
    began, not every second: counting takes at most a twentieth of the store's time."""
    from smscore.backlog import READ_SHARE_INVERSE

    store, clock = CountingStore(), Clock()
    backlog = Backlog(store=store, clock=clock, limit=lambda: 100)
    store.pending = Deferred()
    backlog.start()  # the first read begins at 0 and takes 0.5 s
    clock.advance(0.5)
    store.pending, pending = None, store.pending
    store.queued = 40
    pending.callback(30)
    assert backlog.queued == 30
    clock.advance(READ_SHARE_INVERSE * 0.5 - 0.5 - 0.01)
    assert backlog.queued == 30  # not read again yet
    clock.advance(0.02)
    assert backlog.queued == 40
    store.queued = 41
    clock.advance(1.0)  # that read took no time: back to every second
    assert backlog.queued == 41
    backlog.stop()
    assert not clock.getDelayedCalls()


def test_a_paused_accounts_messages_are_not_shed_they_wait_paused():
    """SPEC §15: paused messages do not count. The API sees a request's messages ``queued`` (the
    store pauses them as it stores them); while the backlog is at its limit, the accounts paused
    are read with the count, and their requests are taken."""
    from smscore.store.lookups import AccountState

    store, clock = CountingStore(), Clock()
    states = {"a": AccountState(0, True, 0), "b": AccountState(0, False, 0)}
    asked = []
    store.account_states = lambda day: asked.append(day) or succeed(states)
    backlog = Backlog(store=store, clock=clock, limit=lambda: 5)
    store.queued = 3
    backlog.start()
    assert asked == []  # under the limit: nobody asks who is paused
    store.queued = 5
    clock.advance(1.0)
    assert asked == ["1970-01-01"] and backlog.paused == {"a"}
    backlog.check([msg(), msg()])  # account "a": paused
    other = msg()
    other.account = "b"
    with pytest.raises(Backlogged):
        backlog.check([other])
    states["a"] = AccountState(0, False, 0)  # resumed
    clock.advance(1.0)
    with pytest.raises(Backlogged):
        backlog.check([msg()])
    store.queued = 0
    clock.advance(1.0)
    assert backlog.paused == frozenset()
    backlog.stop()
