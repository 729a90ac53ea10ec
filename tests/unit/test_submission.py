"""``build_messages`` without HTTP: the request field ``callback_statuses`` (SPEC §12), where it
stands in SPEC §11's order of fields (right after ``send_at``), and where ``encoding`` stands."""

from __future__ import annotations

from pathlib import Path

import pytest

from smscore.config import parse_config
from smscore.errors import ApiError
from smscore.submission import build_messages

NOW = 1_700_000_000.0

def config(account_lines: str):
    return parse_config(f"""
[operators.sim]
type = "simulated"
[profiles.standard]
operators = ["sim"]
[accounts.acme]
senders = ["ACME"]
{account_lines}
""", path=Path("/etc/smsgw/gateway.toml"))


CONFIG = config('callback_statuses = "final"')
ACME = CONFIG.accounts["acme"]


def build(**fields):
    return build_messages({"to": "46701234567", "text": "hi", **fields}, ACME, CONFIG, NOW)


def refusal(body) -> tuple[int, str, str | None]:
    with pytest.raises(ApiError) as caught:
        build_messages(body, ACME, CONFIG, NOW)
    return caught.value.status, caught.value.code, caught.value.field


@pytest.mark.parametrize("value, kept", [
    ("all", "all"),
    ("final", "final"),
    (["delivered", "failed", "submitted"], "submitted,delivered,failed"),
    (["delivered", "delivered"], "delivered"),
    ([], ""),
    (None, None),  # null is no choice: the account's setting, event by event
])
def test_a_requests_callback_statuses_are_kept_per_message(value, kept):
    messages = build(to=["46701234567", "46701234568"], callback_statuses=value)
    assert [m.callback_statuses for m in messages] == [kept, kept]


def test_without_callback_statuses_each_event_follows_the_account():
    [m] = build()
    assert m.callback_statuses is None


@pytest.mark.parametrize("value", ["some", "FINAL", "delivered", 3, True, {"final": True}, ["delivered", "sent"],
                                   ["delivered", 1], [["final"]]])
def test_a_value_that_is_none_of_these_is_refused(value):
    assert refusal({"to": "46701234567", "text": "hi", "callback_statuses": value}) == (
        400, "invalid_request", "callback_statuses")


BAD = "nope"
ORDER = [
    # (body, the field reported): each earlier field's error wins over callback_statuses' ...
    ({"to": "x", "text": "hi", "callback_statuses": BAD}, "to"),
    ({"to": "46701234567", "text": "", "callback_statuses": BAD}, "text"),
    ({"to": "46701234567", "text": "hi", "from": "NOT_MINE", "callback_statuses": BAD}, "from"),
    ({"to": "46701234567", "text": "hi", "profile": "nope", "callback_statuses": BAD}, "profile"),
    ({"to": "46701234567", "text": "hi", "send_at": "tomorrow", "callback_statuses": BAD}, "send_at"),
    # a text the requested encoding cannot carry is encoding's error, in encoding's turn
    ({"to": "46701234567", "text": "привет", "encoding": "gsm7", "from": "NOT_MINE"}, "from"),
    ({"to": "46701234567", "text": "привет", "encoding": "latin1", "profile": "nope"}, "profile"),
    ({"to": "46701234567", "text": "привет", "encoding": "gsm7", "send_at": "2099-01-01T00:00:00Z"}, "send_at"),
    ({"to": "46701234567", "text": "привет", "encoding": "gsm7", "callback_statuses": BAD}, "callback_statuses"),
    ({"to": "46701234567", "text": "привет", "encoding": "gsm7", "max_parts": 0}, "max_parts"),
    ({"to": "46701234567", "text": "привет", "encoding": "gsm7", "reference": "r" * 65}, "encoding"),
    ({"to": "46701234567", "text": "привет" * 200, "encoding": "gsm7"}, "text"),  # too long as UCS-2 too
    # ... and callback_statuses' wins over the optional fields after it
    ({"to": "46701234567", "text": "hi", "callback_statuses": BAD, "max_parts": 0}, "callback_statuses"),
    ({"to": "46701234567", "text": "hi", "callback_statuses": BAD, "encoding": "ebcdic"}, "callback_statuses"),
    ({"to": "46701234567", "text": "hi", "callback_statuses": BAD, "callback_url": "ftp://x"}, "callback_statuses"),
    ({"to": "46701234567", "text": "hi", "callback_statuses": BAD, "reference": "r" * 65}, "callback_statuses"),
    ({"to": "46701234567", "text": "hi", "callback_statuses": BAD, "colour": "red"}, "callback_statuses"),
]


@pytest.mark.parametrize("body, field", ORDER, ids=[f for _, f in ORDER])
def test_callback_statuses_is_checked_right_after_send_at(body, field):
    assert refusal(body)[2] == field


def test_a_callback_url_is_judged_against_the_accounts_hosts_of_the_moment():
    """The verdict on a URL is remembered per URL and host list: the same URL is refused for an
    account that does not name its host, and accepted once a reload names it."""
    url = "https://hooks.example.com/status"
    for _ in range(2):  # the second time from what was remembered
        status, code, field = refusal({"to": "46701234567", "text": "hi", "callback_url": url})
        assert (status, code, field) == (422, "invalid_callback_url", "callback_url")
    reloaded = config('callback_hosts = ["*.example.com"]\nsecret = "s"')
    account = reloaded.accounts["acme"]
    for _ in range(2):
        [m] = build_messages({"to": "46701234567", "text": "hi", "callback_url": url}, account, reloaded, NOW)
        assert m.callback_url == url
    with pytest.raises(ApiError) as caught:
        build_messages({"to": "46701234567", "text": "hi", "callback_url": "ftp://hooks.example.com/"},
                       account, reloaded, NOW)
    assert caught.value.code == "invalid_callback_url"
    assert "http:// or https://" in caught.value.message


def senders_config(account_lines: str, gateway_lines: str = ""):
    """A configuration whose account ``acme`` has only ``account_lines`` (its senders)."""
    return parse_config(f"""
[gateway]
{gateway_lines}
[operators.sim]
type = "simulated"
[profiles.standard]
operators = ["sim"]
[accounts.acme]
{account_lines}
""", path=Path("/etc/smsgw/gateway.toml"))


def sender_answer(sender: str, cfg=CONFIG) -> str | tuple[int, str, str | None, str]:
    """The sender a message from ``sender`` goes out with, else the refusal (status, code, field, message)."""
    try:
        [m] = build_messages({"to": "46701234567", "text": "hi", "from": sender}, cfg.accounts["acme"], cfg, NOW)
    except ApiError as exc:
        return exc.status, exc.code, exc.field, exc.message
    return m.sender


@pytest.mark.parametrize("sender, answer", [
    ("ACME", "ACME"),
    ("+4670111111", "4670111111"),  # a numeric sender goes out without its +
    ("4670111111", "4670111111"),
    ("acme", (422, "invalid_sender", "from", "Sender 'acme' is not allowed for this account.")),
    ("+ACME", (422, "invalid_sender", "from",
               "'+ACME' is not a valid sender: only letters A-Z, a-z and digits are allowed (a numeric sender "
               "may start with '+')")),
    ("ACME2024Ltd1", (422, "invalid_sender", "from",
                      "'ACME2024Ltd1' is not a valid sender: it has 12 characters; an alphanumeric sender has at "
                      "most 11")),
    ("", (422, "invalid_sender", "from", "'' is not a valid sender: it is empty")),
])
def test_a_sender_is_checked_for_its_form_then_for_the_account_each_time(sender, answer):
    """The verdict on an accepted sender is remembered per sender and account senders: asked
    again, the answer is the same (a refusal is computed again, with the same words)."""
    numeric = senders_config('senders = ["ACME", "+4670111111"]')
    for _ in range(3):
        assert sender_answer(sender, numeric) == answer


def test_a_sender_is_judged_against_the_accounts_senders_of_the_moment():
    """A reload that takes a sender away refuses it at once, one that gives it back accepts it
    again; the default sender (the account's, else the gateway's) is always allowed."""
    assert sender_answer("ACME") == "ACME"
    without = senders_config('senders = ["BETA"]')
    assert sender_answer("ACME", without)[:3] == (422, "invalid_sender", "from")
    assert sender_answer("BETA", without) == "BETA"
    assert sender_answer("ACME") == "ACME"
    default_only = senders_config("", 'default_sender = "GW"')
    assert sender_answer("GW", default_only) == "GW"
    assert sender_answer("ACME", default_only)[:3] == (422, "invalid_sender", "from")
    other_default = senders_config("", 'default_sender = "GW2"')
    assert sender_answer("GW", other_default)[:3] == (422, "invalid_sender", "from")
    assert sender_answer("GW2", other_default) == "GW2"


def test_each_number_of_a_request_is_a_message_of_its_own():
    """The first message is built whole and the others copied from it: each has its own id (in
    the order of the numbers, as they sort by creation), number and history, and shares the rest."""
    messages = build(to=["46701234567", "46701234568", "46701234569"], reference="r-1")
    assert [m.to for m in messages] == ["46701234567", "46701234568", "46701234569"]
    ids = [m.id for m in messages]
    assert len(set(ids)) == 3 and ids == sorted(ids)
    assert len({id(m.events) for m in messages}) == 3
    assert all(m.events == messages[0].events and len(m.events) == 1 for m in messages)
    assert messages[0].events[0].at == NOW and messages[0].events[0].status.value == "queued"
    first = messages[0]
    for m in messages[1:]:
        assert m is not first
        assert (m.account, m.sender, m.text, m.encoding, m.parts, m.profile, m.status, m.reference, m.created_at) == (
            first.account, first.sender, first.text, first.encoding, first.parts, first.profile, first.status,
            first.reference, first.created_at)
    [one] = build()
    assert (one.to, len(one.id), one.events[0].at) == ("46701234567", 24, NOW)


@pytest.mark.parametrize("value", ["2026-12-05T12:00:00.Z", "2026-12-05T12:00Z", "2026-12-05 12:00:00Z",
                                   "20261205T120000Z", "2026-W49-6T12:00:00Z", "2026-12-05T12:00:00",
                                   "2026-12-05T12:00:00+0100", "2026-12-05T12:00:00 Z", "2016-12-31T23:59:61Z",
                                   "2016-12-31T23:60:00Z"])
def test_send_at_is_rfc_3339_not_any_iso_8601(value):
    assert refusal({"to": "46701234567", "text": "hi", "send_at": value}) == (400, "invalid_request", "send_at")


@pytest.mark.parametrize("value, epoch", [("2026-12-05T12:00:00Z", 1_796_472_000.0),
                                          ("2026-12-05t13:00:00.5+01:00", 1_796_472_000.5),
                                          ("2026-12-05T12:00:00.123456789z", 1_796_472_000.123456),
                                          # leap seconds (RFC 3339 section 5.7): the next second's start
                                          ("2016-12-31T23:59:60Z", 1_483_228_800.0),
                                          ("2016-12-31T23:59:60.5Z", 1_483_228_800.5),
                                          ("1990-12-31T15:59:60-08:00", 662_688_000.0)])
def test_rfc_3339_date_times_are_read(value, epoch):
    from smscore.submission import parse_rfc3339

    assert parse_rfc3339(value) == epoch


def test_send_at_is_up_to_5_calendar_years_ahead():
    """SPEC §7: the same moment 5 years later, not 5 x 366 days (4 days more)."""
    from datetime import datetime, timezone

    from smscore.submission import latest_send_at

    now = datetime(2026, 12, 5, 20, 3, tzinfo=timezone.utc).timestamp()
    assert latest_send_at(now) == datetime(2031, 12, 5, 20, 3, tzinfo=timezone.utc).timestamp()
    leap = datetime(2028, 2, 29, 12, 0, tzinfo=timezone.utc).timestamp()
    assert latest_send_at(leap) == datetime(2033, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
    at = datetime(2031, 12, 5, 20, 3, tzinfo=timezone.utc)
    assert build_messages({"to": "46701234567", "text": "hi", "send_at": at.isoformat()}, ACME, CONFIG, now)
    later = "2031-12-05T20:04:00Z"  # a minute past: refused (it was taken up to 2031-12-09)
    with pytest.raises(ApiError) as caught:
        build_messages({"to": "46701234567", "text": "hi", "send_at": later}, ACME, CONFIG, now)
    assert (caught.value.status, caught.value.code, caught.value.field) == (422, "send_at_out_of_range", "send_at")


def test_null_profile_and_encoding_are_the_same_as_leaving_them_out():
    """docs/api.md: "null is the same as leaving an optional field out"; client generators send
    unset optional fields as null. profile and encoding were refused (400) for it."""
    [m] = build(profile=None, encoding=None)
    assert (m.profile, m.encoding) == (ACME.profile, "gsm7")
