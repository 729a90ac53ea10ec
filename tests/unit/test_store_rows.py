"""What the stores build model objects and bodies with: a row's every column in its field, a message's copy,
RFC 3339 times."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from smscore.model import Message, Status
from smscore.store.rows import MSG_COLS, row_to_message

#: a distinct value per column (MSG_COLS order), and the field and value each must give
COLUMNS = {
    "id": ("id", "m-1", "m-1"),
    "account": ("account", "acme", "acme"),
    "to_number": ("to", "46701234567", "46701234567"),
    "sender": ("sender", "Acme", "Acme"),
    "body": ("text", "Hello", "Hello"),
    "encoding": ("encoding", "ucs2", "ucs2"),
    "parts": ("parts", 3, 3),
    "profile": ("profile", "premium", "premium"),
    "status": ("status", "buffered", Status.BUFFERED),
    "reference": ("reference", "ref-9", "ref-9"),
    "callback_url": ("callback_url", "https://acme.example/cb", "https://acme.example/cb"),
    "operator": ("operator", "cheap", "cheap"),
    "cost": ("cost", "0.015", Decimal("0.015")),
    "error": ("error", "err=042", "err=042"),
    "created_at": ("created_at", 1000.5, 1000.5),
    "updated_at": ("updated_at", 1001.5, 1001.5),
    "send_at": ("send_at", 1002.5, 1002.5),
    "tried": ("tried", "cheap,backup", ("cheap", "backup")),
    "origin": ("origin", "reply", "reply"),
    "charged": ("charged", "0.03", Decimal("0.03")),
    "callback_statuses": ("callback_statuses", "final", "final"),
    "udh": ("udh", "050003cc0201", bytes.fromhex("050003cc0201")),
    "expires_at": ("expires_at", 1003.5, 1003.5),
    "part_state": (None, "SSD", None),
}


def test_every_column_lands_in_its_field():
    assert [c.strip() for c in MSG_COLS.split(",")] == list(COLUMNS)
    m = row_to_message(tuple(value for _, value, _ in COLUMNS.values()))
    assert {field: getattr(m, field) for field, _, _ in COLUMNS.values() if field} == {
        field: expected for field, _, expected in COLUMNS.values() if field}
    # what a row does not hold: the defaults, and a history of its own
    fresh = Message(id="x", account="a", to="1", sender="s", text="t", encoding="gsm7", parts=1, profile="p")
    assert (m.events, m.preferred, m.recent_failures, m.block, m.reach) == (
        [], fresh.preferred, fresh.recent_failures, fresh.block, fresh.reach)
    assert m.events is not row_to_message(tuple(value for _, value, _ in COLUMNS.values())).events


def test_zero_amounts_and_empty_values():
    values = [value for _, value, _ in COLUMNS.values()]
    names = list(COLUMNS)
    for name, value in (("cost", "0"), ("charged", "0"), ("tried", ""), ("udh", None)):
        values[names.index(name)] = value
    m = row_to_message(tuple(values))
    assert (m.cost, m.charged, m.tried, m.udh) == (Decimal(0), Decimal(0), (), b"")


def test_a_messages_copy_has_every_field_and_is_its_own_object():
    from dataclasses import fields

    values = {f.name: object() for f in fields(Message)}
    m = Message(**values)
    c = m.copy()
    assert c is not m and all(getattr(c, name) is value for name, value in values.items())


@given(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False)
       | st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999995)  # rounds up into the next second
       | st.integers(0, 4_000_000_000).map(lambda s: s - 1e-7))
def test_rfc3339_is_isoformat_in_milliseconds_with_z(ts):
    from datetime import datetime, timezone

    from smscore.model import rfc3339

    expected = datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert rfc3339(ts) == expected
    assert rfc3339(ts) == expected  # the second's text made before
    assert rfc3339(ts + 1.0) == datetime.fromtimestamp(ts + 1.0, tz=timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
