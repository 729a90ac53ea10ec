"""The pipeline's queues keep the set of the ids they hold as they change (``smscore.queues``): a
property over any sequence of changes, and each change's answer against the plain deques."""

from __future__ import annotations

from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from smscore.model import Message
from smscore.queues import OperatorQueues

OPERATORS = ("cheap", "dear", "third")
IDS = [f"m{i}" for i in range(12)]


def _message(mid: str) -> Message:
    """``m<i>``'s validity ends at ``i`` seconds, but that of an even ``i`` (no validity)."""
    number = int(mid[1:]) if mid[1:].isdigit() else 1
    return Message(id=mid, account="acme", to="46701234567", sender="ACME", text="hi", encoding="gsm7",
                   parts=1, profile="standard", created_at=0.0, updated_at=0.0,
                   expires_at=float(number) if number % 2 else None)


def _ended(mid: str, now: float) -> bool:
    number = int(mid[1:])
    return number % 2 == 1 and number <= now


_changes = st.lists(st.one_of(
    st.tuples(st.just("add"), st.sampled_from(OPERATORS), st.sampled_from(IDS), st.booleans()),
    st.tuples(st.just("pop"), st.sampled_from(OPERATORS)),
    st.tuples(st.just("take"), st.sampled_from(IDS)),
    st.tuples(st.just("drop"), st.frozensets(st.sampled_from(IDS), max_size=4)),
    st.tuples(st.just("drain"), st.sampled_from(OPERATORS)),
    st.tuples(st.just("clear_all"),),
    st.tuples(st.just("expired"), st.integers(min_value=0, max_value=12)),
), max_size=60)


@given(_changes)
def test_the_ids_are_always_those_in_the_queues_and_each_change_answers_as_the_deques_would(changes):
    queues = OperatorQueues()
    model: dict[str, deque[str]] = {name: deque() for name in OPERATORS}
    for change in changes:
        kind = change[0]
        held = {mid for q in model.values() for mid in q}
        if kind == "add":
            _, name, mid, front = change
            if mid in held:
                continue  # the pipeline never queues a message twice (Pipeline._claimed)
            queues.add(name, _message(mid), front)
            model[name].appendleft(mid) if front else model[name].append(mid)
        elif kind == "pop":
            if not model[change[1]]:
                continue  # the pipeline pops only a queue it has just seen holding messages
            assert queues.pop(change[1]).id == model[change[1]].popleft()
        elif kind == "take":
            got = queues.take(change[1])
            assert (got.id if got else None) == (change[1] if change[1] in held else None)
            for q in model.values():
                if change[1] in q:
                    q.remove(change[1])
        elif kind == "drop":
            assert sorted(queues.drop(change[1])) == sorted(held & change[1])
            for name in OPERATORS:
                model[name] = deque(mid for mid in model[name] if mid not in change[1])
        elif kind == "drain":
            assert [m.id for m in queues.drain(change[1])] == list(model[change[1]])
            model[change[1]].clear()
        elif kind == "expired":
            got = queues.take_expired(float(change[1]))
            assert [m.id for m in got] == [mid for name in queues for mid in model[name] if _ended(mid, change[1])]
            for name in OPERATORS:
                model[name] = deque(mid for mid in model[name] if not _ended(mid, change[1]))
        else:
            queues.clear_all()
            for q in model.values():
                q.clear()
        assert queues.ids == {mid for q in model.values() for mid in q}
        for name in OPERATORS:
            assert [m.id for m in queues.get(name, ())] == list(model[name])


def test_a_drop_keeps_each_queue_the_same_object_so_a_caller_walking_it_sees_what_is_current():
    queues = OperatorQueues()
    for mid in ("a", "b", "c"):
        queues.add("cheap", _message(mid))
    queue = queues["cheap"]
    assert queues.drop({"b", "x"}) == ["b"]
    assert queues["cheap"] is queue and [m.id for m in queue] == ["a", "c"] and queues.ids == {"a", "c"}


def test_taking_a_message_no_queue_holds_answers_none_and_changes_nothing():
    queues = OperatorQueues()
    queues.add("cheap", _message("a"))
    assert queues.take("b") is None
    assert [m.id for m in queues["cheap"]] == ["a"] and queues.ids == {"a"}
