"""SMPP 3.4 time values (§7.1.1): ``schedule_delivery_time``, ``validity_period``, ``final_date``.

Why this module exists: a customer's ESME says *when* in a 16-character string, either absolute
(a local time and its offset from UTC) or relative (a span from now). Reading it wrong sends a
message at the wrong hour or expires it early, and each field has its own SMPP refusal, so the
rules are kept here, pure, with ``now`` passed in, and tested with round trips.

Theory of operation
-------------------
``YYMMDDhhmmsstnnp``, all digits but ``p``:

* ``p`` = ``+`` or ``-``: absolute. ``YYMMDDhhmmss`` is a local time (year 20YY), ``t`` tenths of a
  second, ``nn`` its offset from UTC in quarter hours (00..48) ahead of (``+``) or behind (``-``)
  UTC. The result is that instant as UTC epoch seconds.
* ``p`` = ``R``: relative. ``YY`` years, ``MM`` months, ``DD`` days, ``hh:mm:ss`` after ``now``.
  Years and months are calendar ones (31 January + 1 month = 28 or 29 February, the day clamped
  to the month's end), days and smaller are fixed lengths. ``tnn`` carries nothing (SMPP writes
  ``000``) and is ignored.
* An empty value means "none" (``None``). Anything else, including an impossible date such as
  31 April, raises ``InvalidTime``; the caller turns it into the field's own status.

``format_absolute`` writes an instant back in the absolute form, in UTC (``nn`` = 00, ``+``),
as ``query_sm_resp.final_date`` wants it. ``format_relative`` writes a span in the relative form,
in days, hours, minutes and whole seconds (never years or months, whose length varies), so it
holds less than ``MAX_RELATIVE`` (100 days). ``validity_period`` is what a submit_sm to an operator
carries: the earlier of the message's own expiry and the operator's ``validity`` (SPEC §15).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["InvalidTime", "MAX_QUARTER_HOURS", "MAX_RELATIVE", "format_absolute", "format_relative",
           "parse_time", "validity_period"]

#: The largest UTC offset SMPP 3.4 allows in an absolute time: 48 quarter hours (12 h).
MAX_QUARTER_HOURS = 48
#: Relative times are written in days of two digits: they must be shorter than this (seconds).
MAX_RELATIVE = 100 * 86400.0
_LENGTH = 16


class InvalidTime(ValueError):
    """A time value that is not SMPP 3.4 §7.1.1; the message says what is wrong."""


def parse_time(value: str, now: float) -> float | None:
    """The UTC epoch seconds ``value`` names (``now`` for relative values); None when empty."""
    if not value:
        return None
    if len(value) != _LENGTH or not value[:15].isascii() or not value[:15].isdigit():
        raise InvalidTime(f"{value!r} is not YYMMDDhhmmsstnnp")
    kind = value[15]
    if kind == "R":
        return _relative(value, now)
    if kind in "+-":
        return _absolute(value)
    raise InvalidTime(f"{value!r} ends in {kind!r}, not '+', '-' or 'R'")


def _fields(value: str) -> tuple[int, ...]:
    """YY, MM, DD, hh, mm, ss, t, nn as integers."""
    cuts = (0, 2, 4, 6, 8, 10, 12, 13, 15)
    return tuple(int(value[a:b]) for a, b in zip(cuts, cuts[1:]))


def _absolute(value: str) -> float:
    yy, month, day, hour, minute, second, tenths, quarters = _fields(value)
    if quarters > MAX_QUARTER_HOURS:
        raise InvalidTime(f"{value!r}: offset of {quarters} quarter hours, more than "
                          f"{MAX_QUARTER_HOURS}")
    sign = 1 if value[15] == "+" else -1
    zone = timezone(timedelta(minutes=15 * quarters * sign))
    try:
        local = datetime(2000 + yy, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        raise InvalidTime(f"{value!r}: {exc}") from None
    return local.timestamp() + tenths / 10


def _relative(value: str, now: float) -> float:
    years, months, days, hours, minutes, seconds, _tenths, _quarters = _fields(value)
    start = datetime.fromtimestamp(now, UTC)
    month_index = start.month - 1 + months + 12 * years
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    later = start.replace(year=year, month=month, day=day)
    return (later + timedelta(days=days, hours=hours, minutes=minutes,
                              seconds=seconds)).timestamp()


def format_absolute(epoch: float) -> str:
    """``epoch`` as an absolute SMPP time in UTC: ``YYMMDDhhmmsst00+`` (tenths truncated)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%y%m%d%H%M%S") + f"{moment.microsecond // 100_000}00+"


def format_relative(seconds: float) -> str:
    """``seconds`` (less than ``MAX_RELATIVE``, fractions dropped) as a relative SMPP time:
    ``0000DDhhmmss000R``."""
    if not 0 <= seconds < MAX_RELATIVE:
        raise ValueError(f"{seconds} s is not a relative SMPP time (0 to 100 days)")
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    day, hour = divmod(hours, 24)
    return f"0000{day:02d}{hour:02d}{minute:02d}{second:02d}000R"


def validity_period(expires_at: float | None, validity: float | None, now: float) -> str:
    """A submit_sm's ``validity_period``: the message's own expiry (absolute) or the operator's
    ``validity`` from ``now`` (relative), whichever ends first; empty when there is neither (the
    SMSC's default applies)."""
    if validity is not None and (expires_at is None or now + validity < expires_at):
        return format_relative(validity)
    return format_absolute(expires_at) if expires_at is not None else ""
