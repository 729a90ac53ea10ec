"""The store contract, continued: claims, leases and the nodes that hold them (SPEC §10): who may
claim what and when, a restart taking its own back, renewals that tell a holder what changed
elsewhere, parking for the nodes with an operator's binds; checked on every store (see
``tests.store_contract``)."""

from __future__ import annotations

from policies.cluster import Seen, live
from smscore.model import Event, Status
from tests.store_contract import make_message, receipt, untried


async def check_claim_and_leases(store):
    ms = [make_message(at=1000.0 + i) for i in range(5)]
    await store.accept(ms[:2], "gw1", 1030.0)
    await store.accept(ms[2:], None, 0.0)
    # Unowned ones are claimable at once, oldest first; owned ones only after the lease.
    got = await store.claim("gw2", 1010.0, 1200.0, 10)
    assert [m.id for m in got] == [m.id for m in ms[2:]]
    assert await store.claim("gw2", 1010.0, 1200.0, 10) == []
    # gw1 renews; its lease does not expire.
    assert await store.renew("gw1", 1100.0) == []
    assert await store.claim("gw2", 1050.0, 1090.0, 10) == []
    # A restarted gw1 takes back at once what its earlier process leased until before the first
    # lease it gives itself ends (own_before), and never what it leased since.
    assert await store.claim("gw1", 1050.0, 1300.0, 10, own_before=1100.0) == []
    got = await store.claim("gw1", 1050.0, 1300.0, 10, own_before=1110.0)
    assert [m.id for m in got] == [m.id for m in ms[:2]]
    assert await store.claim("gw1", 1051.0, 1310.0, 10, own_before=1110.0) == []
    # gw2 dies: after its lease (1200) gw1 takes its messages over.
    assert await store.claim("gw1", 1199.0, 1290.0, 1) == []
    got = await store.claim("gw1", 1201.0, 1290.0, 1)
    assert [m.id for m in got] == [ms[2].id]
    await store.release("gw1", [ms[2].id])
    got = await store.claim("gw3", 1202.0, 1290.0, 10)
    assert ms[2].id in [m.id for m in got]


async def check_a_lease_that_ran_out_after_the_fence_is_left_to_its_holder(store):
    """``ended_before`` (smscore.claiming: the store was out of reach from 1040 to 1100)."""
    ms = [make_message(at=1000.0 + i) for i in range(2)]
    await store.accept(ms[:1], "gw1", 1030.0)  # ran out before: a holder that had stopped renewing
    await store.accept(ms[1:], "gw1", 1060.0)  # ran out while nobody could renew
    got = await store.claim("gw2", 1100.0, 1200.0, 10, ended_before=1040.0)
    assert [m.id for m in got] == [ms[0].id]
    got = await store.claim("gw2", 1100.0, 1200.0, 10)
    assert [m.id for m in got] == [ms[1].id]


async def check_parked_messages_wait_for_a_node_holding_their_operator(store):
    ms = [make_message(at=1000.0 + i) for i in range(3)]
    await store.accept(ms, "gw1", 1030.0)
    # gw1 holds no bind of "dear": it parks the first two for it, keeps the third.
    await store.park("gw1", [(ms[0].id, "dear"), (ms[1].id, "cheap")])
    await store.park("gw2", [(ms[2].id, "dear")])  # not gw2's to park: nothing happens
    # gw1 passes "dear" by; gw2 (which holds it) takes it; anyone takes "cheap".
    got = await store.claim("gw1", 1010.0, 1100.0, 10, skip=["dear"])
    assert [m.id for m in got] == [ms[1].id]
    got = await store.claim("gw2", 1010.0, 1100.0, 10, skip=["cheap"])
    assert [m.id for m in got] == [ms[0].id]
    # The third stayed gw1's (its lease holds).
    assert await store.claim("gw3", 1010.0, 1100.0, 10) == []
    # A parked message that failed over is parked again for its next operator.
    await store.park("gw2", [(ms[0].id, "cheap")])
    assert await store.claim("gw2", 1011.0, 1100.0, 10, skip=["cheap"]) == []
    assert [m.id for m in await store.claim("gw1", 1011.0, 1100.0, 10, skip=["dear"])] == [ms[0].id]


async def check_claims_leave_the_messages_of_the_profiles_they_skip(store):
    """``skip_profiles``: profiles none of whose operators can take a message now (an SMSC down):
    their messages stay in the store, unclaimed and untouched, for a later claim."""
    ms = [make_message(at=1000.0 + i) for i in range(3)]
    ms[1].profile = "national"
    await store.accept(ms, None, 0.0)
    got = await store.claim("gw1", 1010.0, 1100.0, 10, skip_profiles=["standard", "other"])
    assert [m.id for m in got] == [ms[1].id]
    assert await store.claim("gw1", 1011.0, 1100.0, 10, skip_profiles=["standard"]) == []
    assert [m.id for m in await store.claim("gw1", 1012.0, 1100.0, 10)] == [ms[0].id, ms[2].id]


async def check_heartbeats_tell_the_nodes_and_since_when_each_was_heard_from(store):
    assert await store.heartbeat("gw2", 1000.0, 30.0) == [Seen("gw2", 1000.0, 1000.0)]
    assert await store.heartbeat("gw1", 1010.0, 30.0) == [Seen("gw1", 1010.0, 1010.0), Seen("gw2", 1000.0, 1000.0)]
    # heard from again within the ttl: the same since (a process restarted in time keeps it too)
    assert await store.heartbeat("gw2", 1020.0, 30.0) == [Seen("gw1", 1010.0, 1010.0), Seen("gw2", 1020.0, 1000.0)]
    # gw2 is silent for longer than the ttl: live() drops it; its next beat starts a new since
    # (as gw1's did here: 41 s since its last)
    seen = await store.heartbeat("gw1", 1051.0, 30.0)
    assert seen == [Seen("gw1", 1051.0, 1051.0), Seen("gw2", 1020.0, 1000.0)] and live(seen, 1051.0, 30.0) == ["gw1"]
    assert (await store.heartbeat("gw2", 1052.0, 30.0))[1] == Seen("gw2", 1052.0, 1052.0)
    # leaving: recorded as last heard from when the node says (a lease ago: gone at once)
    await store.leave("gw2", 1053.0 - 30.0)
    seen = await store.heartbeat("gw1", 1053.0, 30.0)
    assert seen == [Seen("gw1", 1053.0, 1051.0), Seen("gw2", 1023.0, 1052.0)] and live(seen, 1053.0, 30.0) == ["gw1"]
    # back after leaving: a newcomer
    assert (await store.heartbeat("gw2", 1054.0, 30.0))[1] == Seen("gw2", 1054.0, 1054.0)
    # not heard from for FORGET_AFTER ttls: forgotten
    assert await store.heartbeat("gw1", 1054.0 + 100 * 30.0 + 1, 30.0) == [Seen("gw1", 4055.0, 4055.0)]


async def check_a_restarted_process_takes_back_and_leaves_alone_what_the_earlier_one_leased(store):
    """A process of gw1 starting at 1040 with a lease of 60 s: every lease it gives ends at 1100
    or later, every lease of the process before it ended earlier. Its claims take the earlier
    leases back at once (``own_before``); its renewals extend its own only (``since``), so what it
    does not take back runs out and any node may claim it."""
    before, mine = make_message(at=1000.0), make_message(at=1001.0)
    await store.accept([before], "gw1", 1090.0)  # the earlier process, renewed at 1030
    await store.accept([mine], "gw1", 1100.0)  # this one, at 1040
    assert await store.renew("gw1", 1120.0, [mine.id], since=1100.0) == []
    assert [m.id for m in await store.claim("gw2", 1091.0, 1150.0, 10)] == [before.id]
    assert await store.claim("gw2", 1101.0, 1150.0, 10) == []  # mine was renewed to 1120
    # without ``since`` a renewal extends whatever gw1 holds, as a node that never restarted
    await store.accept([third := make_message(at=1002.0)], "gw1", 1090.0)
    assert await store.renew("gw1", 1130.0) == []
    assert await store.claim("gw2", 1121.0, 1150.0, 10) == []
    assert [m.id for m in await store.claim("gw2", 1131.0, 1200.0, 10)] == sorted([mine.id, third.id])


async def check_submitted_messages_are_not_claimed(store):
    m = make_message()
    await store.accept([m], "gw1", 1030.0)
    await store.record_submit(m.id, "cheap", ["k"], 1001.0)
    assert await store.claim("gw2", 5000.0, 5030.0, 10, own_before=5030.0) == []
    counts = await store.count_by_status()
    assert counts == {Status.SUBMITTED: 1}
    assert await store.count_queued() == 0


async def check_count_queued_counts_only_queued_messages_of_every_node(store):
    assert await store.count_queued() == 0
    await store.accept([make_message(), make_message()], "gw1", 1030.0)
    await store.accept([make_message()], None, 0.0)
    later = make_message(status=Status.SCHEDULED, send_at=2000.0)
    later.events[0] = Event(at=1000.0, status=Status.SCHEDULED)
    await store.accept([later], None, 0.0)
    assert await store.count_queued() == 3


async def check_a_renewal_reports_the_held_messages_changed_elsewhere(store):
    """A node learns at its lease renewal which of the messages it holds in memory it must not
    submit: paused or cancelled through another node, or claimed by another (SPEC §10)."""
    ms = [make_message(to=f"4670123456{i}", at=1000.0 + i) for i in range(4)]
    await store.accept(ms, "gw1", 1030.0)
    assert await store.renew("gw1", 1040.0, [m.id for m in ms]) == []
    await store.act(ms[1].id, "cancel", 1011.0, "cancelled by the customer", account="acme")
    await store.release("gw1", [ms[2].id])
    assert [m.id for m in await store.claim("gw2", 1012.0, 1100.0, 10)] == [ms[2].id]
    assert await store.renew("gw1", 1050.0, [m.id for m in ms] + ["unknown"]) == sorted(
        [ms[1].id, ms[2].id, "unknown"])
    paused = await store.set_paused("acme", True, 1013.0)
    assert sorted(m.id for m in paused) == sorted([ms[0].id, ms[2].id, ms[3].id])
    assert await store.renew("gw1", 1060.0, [ms[0].id, ms[3].id]) == sorted([ms[0].id, ms[3].id])
    # Resumed, they are anybody's again (unowned): still not gw1's until it claims them.
    await store.set_paused("acme", False, 1014.0)
    assert await store.renew("gw1", 1070.0, [ms[0].id]) == [ms[0].id]
    await store.claim("gw1", 1015.0, 1080.0, 10)
    assert await store.renew("gw1", 1090.0, [ms[0].id, ms[3].id]) == []


async def check_a_submit_that_raced_a_pause_or_a_cancel_is_stored_as_what_happened(store):
    """The holder submitted before its renewal told it: a paused message went out (``submitted``,
    not resumed and sent again); a cancelled one stays ``stopped`` but its SMSC id is kept, so its
    receipt finds it instead of waiting as an orphan."""
    store.untried = untried
    paused, stopped = make_message(to="46701234561", at=1000.0), make_message(to="46701234562", at=1001.0)
    await store.accept([paused, stopped], "gw1", 1030.0)
    await store.set_paused("acme", True, 1002.0)
    await store.act(stopped.id, "cancel", 1003.0, "cancelled by the customer", account="acme")
    ts = await store.record_submit(paused.id, "cheap", ["k-paused"], 1004.0)
    assert [t.message.status for t in ts] == [Status.SUBMITTED]
    assert await store.record_submit(stopped.id, "cheap", ["k-stopped"], 1004.0) == []
    assert (await store.set_paused("acme", False, 1005.0)) == []
    assert (await store.get(paused.id)).status is Status.SUBMITTED
    late = await store.apply_receipt(receipt("k-stopped"), 1006.0)
    assert late is not None and not late.changed  # found (not an orphan); a final message stays as it is
    assert (await store.get(stopped.id)).status is Status.STOPPED
    t = await store.apply_receipt(receipt("k-paused"), 1007.0)
    assert t.message.status is Status.DELIVERED


CHECKS = [v for k, v in sorted(globals().items()) if k.startswith("check_")]
