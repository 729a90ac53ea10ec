"""One push worker sends for every customer (policies.callbacks, "Shared"): a backend that never
answers takes at most its share of the POST slots, and its jobs at most half of the room for jobs
waiting in the worker, so the other customers' callbacks go on. The pure rules, then the worker
on the rig of ``test_push_worker`` (a ``Clock``, an in-memory store, the real ``Pusher``)."""

from __future__ import annotations

from policies.callbacks import beyond_share, crowded, post_room
from tests.backend import Answer
from tests.store_contract import make_message
from tests.unit.test_push_worker import NOW, URL, Rig

HUNG = "http://acme.example/hung"


def test_a_target_alone_takes_all_but_the_reserved_quarter_of_the_slots_and_an_even_share_with_others():
    assert post_room(concurrency=50, in_flight=0, target_in_flight=0, targets=1) == 38
    assert post_room(concurrency=50, in_flight=38, target_in_flight=38, targets=1) == 0
    assert post_room(concurrency=50, in_flight=38, target_in_flight=0, targets=2) == 12  # what is free
    assert post_room(concurrency=50, in_flight=10, target_in_flight=10, targets=2) == 15  # its share, 25
    assert post_room(concurrency=50, in_flight=0, target_in_flight=0, targets=100) == 1  # at least one
    assert post_room(concurrency=1, in_flight=0, target_in_flight=0, targets=1) == 1  # nothing to reserve


def test_an_account_takes_at_most_half_of_the_room_for_waiting_jobs():
    assert crowded({"slow": 500, "ok": 3}, 1000) == ["slow"]
    assert crowded({"slow": 499}, 1000) == []
    # a claim of [slow x4, ok, slow] with slow at 498 of its 500: two kept, the rest given back
    assert beyond_share(["slow", "slow", "slow", "ok", "slow", "slow"], {"slow": 498}, 1000) == [2, 4, 5]
    assert beyond_share(["a"] * 3, {}, 2) == [1, 2]  # a room of 2: one each


def test_a_backend_that_never_answers_leaves_the_others_slots():
    """60 status events for a URL that never answers come first, then 20 for one that does: the
    hung URL takes 38 of the 50 slots, and the 20 go at once through the rest (before: the hung
    URL took all 50, and nothing else was even claimed until its POSTs timed out)."""
    rig = Rig(batch=1)
    rig.store.status_callbacks_for = lambda m: (m.callback_url or URL, "all")
    rig.backend.answer_at("/hung", Answer(delay=3600.0))
    hung = [make_message(at=NOW, callback_url=HUNG) for _ in range(60)]
    rig.store.accept(hung, "gw1", NOW + 30)
    for m in hung:
        rig.submitted(m)
    rig.kick()
    assert len(rig.backend.requests) == 38 and rig.worker.in_flight == 38
    others = rig.messages(20)
    for m in others:
        rig.submitted(m)
    rig.kick()
    answered = [r.json()["id"] for r in rig.backend.requests if r.path == "/status"]
    assert sorted(answered) == sorted(m.id for m in others)
    assert sum(r.path == "/hung" for r in rig.backend.requests) == 38
