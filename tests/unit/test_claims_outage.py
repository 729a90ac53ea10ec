"""Nodes sharing a store that went out of reach for longer than a lease (``smscore.claiming``).

Found by a black-box audit on PostgreSQL: stopped for 20 s (lease 9 s), the store came back with
every node's leases run out; another node claimed the messages a live node held, some of them
sent already, their outcome waiting to be stored, and sent them again (10 SMS twice, the first
attempt missing from their history). A lease that ran out while the store could not be reached
is its holder's to renew first; a holder that stopped renewing before is taken over as ever.
"""

from __future__ import annotations

from twisted.internet.defer import fail
from twisted.internet.task import Clock

from smscore.claiming import Claims
from smscore.store.memory import MemoryStore
from tests.store_contract import make_message

LEASE = 9.0


class Reachable(MemoryStore):
    """A MemoryStore that can be out of reach: claims and renewals then fail as a lost server does."""

    down = False

    def claim(self, *args, **kw):
        return fail(ConnectionError("server closed the connection")) if self.down else super().claim(*args, **kw)

    def renew(self, *args, **kw):
        return fail(ConnectionError("server closed the connection")) if self.down else super().renew(*args, **kw)

    def release_due(self, *args, **kw):
        return fail(ConnectionError("server closed the connection")) if self.down else super().release_due(*args, **kw)


def node(name: str, store, clock, held: dict, room: list[int] | None = None) -> Claims:
    """A node's claims; ``held[name]`` lists what it took; ``room[0]``: how many more it takes."""
    held[name] = []
    room = room or [100]
    return Claims(store=store, clock=clock, node=name, lease=LEASE, batch=100, interval=0.5,
                  room=lambda: room[0], take=lambda ms: held[name].extend(m.id for m in ms), holding=lambda: held[name],
                  lost=lambda ids: None, others_alive=lambda: True, skip=frozenset, before=lambda: None,
                  released=lambda n: None, log_failure=lambda *a, **kw: None)


def advance(clock, seconds: float, step: float = 0.1) -> None:
    for _ in range(round(seconds / step)):
        clock.advance(step)


def test_leases_that_ran_out_while_the_store_was_out_of_reach_are_their_holders_to_renew_first():
    clock = Clock()
    clock.advance(1000)
    store, held = Reachable(), {}
    ms = [make_message(at=1000.0 + i) for i in range(3)]
    store.accept(ms, None, 0.0)
    gw1, gw2 = node("gw1", store, clock, held), node("gw2", store, clock, held)
    gw1.start()
    gw2.start()
    assert sorted(held["gw1"]) == sorted(m.id for m in ms)  # gw1 claimed first: it holds them

    store.down = True  # a PostgreSQL restart: longer than a lease
    advance(clock, 2 * LEASE)
    store.down = False
    gw2.more()  # gw2's claim is the first call to reach the store again
    assert held["gw2"] == []
    advance(clock, 3 * LEASE)  # gw1 renewed at once when the store answered it, and goes on renewing
    assert held["gw2"] == []

    gw1.stop()  # gw1 dies: after its lease, gw2 takes its messages over
    advance(clock, LEASE + 1)
    assert sorted(held["gw2"]) == sorted(m.id for m in ms)


def test_a_holder_that_stopped_renewing_before_the_store_went_out_of_reach_is_taken_over_at_its_return():
    clock = Clock()
    clock.advance(1000)
    store, held = Reachable(), {}
    ms = [make_message(at=1000.0)]
    store.accept(ms, "gw1", 1000.0 + LEASE)  # claimed by a gw1 that died since
    room = [0]  # gw2 is full meanwhile: it renews, and claims nothing
    gw2 = node("gw2", store, clock, held, room)
    gw2.start()
    advance(clock, LEASE + 3)
    store.down = True
    advance(clock, 2 * LEASE)
    store.down = False
    room[0] = 100
    gw2.more()
    assert held["gw2"] == [ms[0].id]  # its lease ran out while the store still answered: a dead holder's
