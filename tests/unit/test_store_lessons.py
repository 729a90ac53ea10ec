"""What a batch of saved changes teaches (``smscore.store.rules.lessons`` and ``block_lessons``),
read the same way by every store: checked here against a plain reading of the events."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smscore.model import Event, Message, Status
from smscore.store.rules import block_lessons, lessons
from smscore.transitions import Transition

OPS = ("a", "b", "c")
event = st.builds(Event, at=st.floats(0, 100),
                  status=st.sampled_from([Status.SUBMITTED, Status.FAILED, Status.DELIVERED]),
                  operator=st.none() | st.sampled_from(OPS))
change = st.tuples(st.sampled_from(["4670", "4671"]), st.lists(event, min_size=1, max_size=4),
                   st.lists(st.sampled_from(OPS), unique=True, max_size=3).map(tuple))


def _transitions(changes) -> list[Transition]:
    return [Transition(Message(id=str(i), account="acme", to=to, sender="S", text="x", encoding="gsm7", parts=1,
                               profile="p", created_at=0.0, updated_at=0.0, tried=tried), events)
            for i, (to, events, tried) in enumerate(changes)]


def _delivered_by(events):
    return next((e.operator for e in events if e.status is Status.DELIVERED and e.operator), None)


@given(st.lists(change, max_size=5))
def test_lessons_are_each_changes_first_delivery_and_its_failures(changes):
    ts = _transitions(changes)
    expected = []
    for t in ts:
        failed = [(e.operator, e.at) for e in t.events if e.status is Status.FAILED and e.operator]
        if failed or _delivered_by(t.events):
            expected.append((t.message.to, _delivered_by(t.events), failed, t.events[-1].at))
    assert lessons(ts) == expected


@given(st.lists(change, max_size=5), st.sets(st.sampled_from(["4670", "4671"])), st.integers(0, 3))
def test_block_lessons_are_the_first_delivery_to_each_number_whose_profile_had_a_choice(changes, numbers, offered):
    ts = _transitions(changes)
    untried = lambda m: [op for op in OPS[:offered] if op not in m.tried]  # noqa: E731
    expected, seen = [], set()
    for t in ts:
        m, by = t.message, _delivered_by(t.events)
        if by is None or m.to not in numbers or m.to in seen or len(m.tried) + len(untried(m)) < 2:
            continue
        seen.add(m.to)
        expected.append((m.to, by, [op for op in m.tried if op != by], t.events[-1].at))
    assert block_lessons(ts, untried, numbers) == expected
