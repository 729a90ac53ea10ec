"""The message model's statuses and ids (``smscore.model``): the wire names and the final statuses
of SPEC §5, read as plain attributes, and message ids that sort by creation time."""

from __future__ import annotations

import pickle
import re

from smscore import model
from smscore.model import FINAL_STATUSES, STATUS_BY_NAME, STATUS_NAMES, Status, new_message_id

SPEC_5 = ["scheduled", "pending_approval", "paused", "queued", "submitted", "buffered", "delivered", "failed",
          "expired", "unknown", "stopped", "rejected"]


def test_each_status_is_its_wire_name():
    assert [s.value for s in Status] == SPEC_5 == list(STATUS_NAMES)
    for s in Status:
        assert type(s.value) is str and s == s.value
        assert Status(s.value) is s is STATUS_BY_NAME[s.value] is Status[s.name]
        assert pickle.loads(pickle.dumps(s)) is s
        assert f"{s.value}" == s.value and repr(s) == f"<Status.{s.name}: {s.value!r}>"


def test_the_final_statuses_are_those_of_spec_5():
    final = {"delivered", "failed", "expired", "unknown", "stopped", "rejected"}
    assert {s.value for s in Status if s.final} == final
    assert {s.value for s in FINAL_STATUSES} == final
    assert all(type(s.final) is bool for s in Status)


def test_message_ids_are_milliseconds_counter_and_random(monkeypatch):
    now = 1_700_000_000.1234
    monkeypatch.setattr(model, "_last_ms", 0)
    ids = [new_message_id(now) for _ in range(3)]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert {i[:12] for i in ids} == {f"{1_700_000_000_123:012x}"}
    assert [i[12:16] for i in ids] == ["0000", "0001", "0002"]  # the same millisecond: counted
    later = new_message_id(now + 0.001)
    assert (later[:12], later[12:16]) == (f"{1_700_000_000_124:012x}", "0000")
    assert ids + [later] == sorted(ids + [later])
    monkeypatch.setattr(model, "_counter", 0xFFFF)  # the counter wraps within its 16 bits
    monkeypatch.setattr(model, "_last_ms", 1_700_000_000_124)
    wrapped = new_message_id(now + 0.001)
    assert (wrapped[:12], wrapped[12:16]) == (f"{1_700_000_000_124:012x}", "0000")
    far = new_message_id(2 ** 48 / 1000 + 1)  # only the low 48 bits of the milliseconds
    assert far[:12] == f"{1000:012x}" and len(far) == 24
