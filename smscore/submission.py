"""Turning a ``POST /v1/messages`` body into messages, or into the one error that refuses it whole.

Checks run field by field in the order SPEC §11 gives (``to``, ``text``, ``from``, ``profile``,
``send_at``, then ``callback_statuses`` as SPEC §12 asks, then the other optional fields), so
when several errors apply the first of that order is the one reported. Nothing here does I/O: the
HTTP layer stores what this returns.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from connectors.smpp import text as sms_text
from connectors.smpp.addressing import wire_encodings
from policies import numbers
from policies.admission import parts_allowed
from policies.approval import unapproved_links
from policies.callback_urls import host_allowed, host_of, url_problem
from policies.callbacks import parse_selection
from smscore.errors import ApiError, invalid_request, unprocessable
from smscore.model import STATUS_NAMES, Event, Message, Status, new_message_id

MAX_RECIPIENTS = 1000
MAX_REFERENCE = 64
SEND_AHEAD_YEARS = 5  # SPEC §7: "send_at up to 5 years ahead"
ENCODINGS = ("auto", "gsm7", "latin1", "ucs2")
KNOWN_FIELDS = frozenset({"to", "text", "from", "profile", "max_parts", "encoding", "send_at",
                          "callback_url", "callback_statuses", "reference"})


#: RFC 3339's date-time (§5.6): full date, "T", full time with seconds and an optional fraction, and
#: "Z" or a numeric offset; not ISO 8601's other forms (no seconds, a dot with no digit, week dates)
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")


def latest_send_at(now: float) -> float:
    """The latest ``send_at`` accepted at ``now``: the same moment of the calendar 5 years later, in
    UTC (29 February gives 1 March)."""
    today = datetime.fromtimestamp(now, timezone.utc)
    try:
        later = today.replace(year=today.year + SEND_AHEAD_YEARS)
    except ValueError:  # 29 February: no such day that year
        later = today.replace(year=today.year + SEND_AHEAD_YEARS, month=3, day=1)
    return later.timestamp()


def parse_rfc3339(value: str) -> float:
    """RFC 3339 date-time to POSIX seconds; ValueError for a value without an offset, and for one
    the offset moves out of the years 1-9999 (e.g. 0001-01-01T00:00:00+05:00), which Python's
    datetime cannot represent in UTC: callers answer both as a client error. A leap second
    (``23:59:60Z``) is the next second's start."""
    v = value.strip()
    if not _RFC3339.fullmatch(v):  # fromisoformat also reads ISO 8601 forms RFC 3339 does not have
        raise ValueError("an RFC 3339 date-time such as 2026-12-04T17:36:36Z or 2026-12-04T18:36:36.5+01:00 "
                         "is needed")
    if v.endswith(("Z", "z")):
        v = v[:-1] + "+00:00"
    # A leap second (second 60, RFC 3339 section 5.7) is the second after :59, as POSIX time counts
    # it; datetime has no second 60.
    leap = v[17:19] == "60"
    dt = datetime.fromisoformat(v[:17] + "59" + v[19:] if leap else v)
    try:
        return dt.astimezone(timezone.utc).timestamp() + leap
    except OverflowError:
        raise ValueError("the date-time is outside the years 1-9999 in UTC") from None


def check_callback_url(url: Any, account) -> None:
    """A request's ``callback_url`` (SPEC §15): 400 when not a string, 422 ``invalid_callback_url``
    when its shape is wrong or its host is not one of the account's ``callback_hosts``."""
    if not isinstance(url, str):
        raise invalid_request("callback_url", "Field 'callback_url' must be a string.")
    problem = _callback_url_problem(url, account.callback_hosts or ())
    if problem is not None:
        raise unprocessable("invalid_callback_url", "callback_url", problem)


@lru_cache(maxsize=1024)
def _callback_url_problem(url: str, hosts: tuple[str, ...]) -> str | None:
    """Why ``url`` may not be a callback of an account with ``hosts``, or None. Remembered: a
    backend names the same URL (or a few) request after request, and parsing it is most of the
    check's cost."""
    problem = url_problem(url)
    if problem is not None:
        return f"callback_url {problem}."
    if not host_allowed(host_of(url), hosts):
        allowed = ", ".join(hosts) or "none: the account has no callback_url or keyword url"
        return f"callback_url must name one of the account's callback_hosts ({allowed})."
    return None


@lru_cache(maxsize=1024)
def _sender_out(sender: str, senders: tuple[str, ...], default: str) -> str:
    """``sender`` as it goes out from an account with these ``senders`` and ``default`` sender, else
    422 ``invalid_sender`` (its form first, then whether it is the account's). Remembered: an
    account sends from the same few senders request after request, and the regular expressions
    of these checks were their cost. The key is the configured values themselves, so a reload
    that changes them is a new key (a refusal is not remembered: it is computed again)."""
    try:
        numbers.classify_sender(sender)
    except numbers.InvalidSender as exc:
        raise unprocessable("invalid_sender", "from", str(exc)) from None
    if not numbers.sender_allowed(sender, (*senders, default)):
        raise unprocessable("invalid_sender", "from", f"Sender {sender!r} is not allowed for this account.")
    return numbers.normalize_sender(sender)


def default_sender(account, gateway) -> str:
    """The account's default sender, else its first allowed sender, else the gateway's."""
    if account.default_sender:
        return account.default_sender
    if account.senders:
        return account.senders[0]
    return gateway.default_sender


def profile_latin1(profile: Any, config) -> list[bool]:
    """The ``latin1`` setting of each operator of ``profile`` (none for a profile not configured)."""
    found = config.profiles.get(profile) if isinstance(profile, str) else None
    if found is None:
        return []
    return [config.operators[name].latin1 for name in found.operators if name in config.operators]


def wire_parts(text: str, encoding: sms_text.Encoding, profile: Any, config) -> int:
    """The parts ``text`` takes on the operator of ``profile`` that needs the most (an operator
    without Latin-1 gets a ``latin1`` text as GSM or UCS-2: ``addressing.wire_encoding``): the count
    held to max_parts, charged and stored, so that no link sends more (SPEC §7)."""
    if encoding is not sms_text.Encoding.LATIN1:  # GSM stays GSM; UCS-2 never takes more parts
        return sms_text.count_parts(text, encoding)
    return max(sms_text.count_parts(text, each)
               for each in wire_encodings(encoding, text, profile_latin1(profile, config)))


def udh_part_problem(text: str, encoding: sms_text.Encoding, udh: bytes, profile: Any, config) -> str | None:
    """Why a part its sender concatenated (``udh``) would not stay one SMS on some operator of
    ``profile`` (a ``latin1`` part going as UCS-2 takes twice the octets), or None."""
    for each in sorted(wire_encodings(encoding, text, profile_latin1(profile, config))):
        try:
            sms_text.one_part_with_udh(text, each, udh)
        except ValueError as exc:  # UnencodableText too: the fallbacks carry every Latin-1 text
            return str(exc)
    return None


def build_messages(body: Any, account, config, now: float) -> list[Message]:
    """Validate ``body`` for ``account`` and return the messages to store (not yet stored)."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")

    # to
    if "to" not in body:
        raise invalid_request("to", "Field 'to' is required.")
    to = body["to"]
    if isinstance(to, str):
        recipients = [to]
    elif isinstance(to, list) and all(isinstance(x, str) for x in to):
        recipients = to
        if not recipients:
            raise invalid_request("to", "Field 'to' must name at least one number.")
        if len(recipients) > MAX_RECIPIENTS:
            raise invalid_request("to", f"Field 'to' takes at most {MAX_RECIPIENTS} numbers.")
    else:
        raise invalid_request("to", "Field 'to' must be a string or a list of strings.")
    numbers_out = []
    for value in recipients:
        try:
            numbers_out.append(numbers.normalize_msisdn(value))
        except numbers.InvalidNumber as exc:
            raise unprocessable("invalid_number", "to", str(exc)) from None

    # text (its length depends on encoding and max_parts, checked here in text's turn)
    text = body.get("text")
    if not isinstance(text, str):
        raise invalid_request("text", "Field 'text' is required and must be a string.")
    if text == "":
        raise invalid_request("text", "Field 'text' must not be empty.")
    requested = body.get("encoding")
    if requested is None:  # absent or null: null is the same as leaving an optional field out
        requested = "auto"
    encoding_ok = isinstance(requested, str) and requested in ENCODINGS
    max_parts_raw = body.get("max_parts")
    max_parts_ok = max_parts_raw is None or (type(max_parts_raw) is int and max_parts_raw >= 1)
    limit = parts_allowed(config.gateway.max_parts_cap, account.max_parts, max_parts_raw if max_parts_ok else None)
    encoding_problem = None  # an encoding the text does not fit: reported in encoding's turn
    try:
        encoding, parts = sms_text.encoding_and_parts(text, requested if encoding_ok else "auto")
    except sms_text.UnencodableText as exc:
        if requested == "auto" or not encoding_ok:
            # Only a lone surrogate fits no encoding: the text itself is broken.
            raise invalid_request("text", f"The text cannot be encoded: {exc}") from None
        encoding_problem = f"The text cannot be sent as {requested}: {exc}"
        encoding, parts = sms_text.encoding_and_parts(text, "auto")  # it fits auto: only a surrogate fits none
    chosen_profile = account.profile if body.get("profile") is None else body["profile"]
    as_sent = f"as {encoding.value}"
    if encoding is sms_text.Encoding.LATIN1:  # an operator without Latin-1 may need more (wire_parts)
        latin1_parts, parts = parts, wire_parts(text, encoding, chosen_profile, config)
        if parts > latin1_parts:
            as_sent = "on an operator of the profile without Latin-1 (sent there as GSM or UCS-2)"
    if parts > limit:
        raise unprocessable("text_too_long", "text",
                            f"The text needs {parts} parts {as_sent}; at most {limit} are allowed.")

    # from
    sender = body.get("from")
    if sender is None:
        sender = default_sender(account, config.gateway)
    elif not isinstance(sender, str):
        raise invalid_request("from", "Field 'from' must be a string.")
    else:
        sender = _sender_out(sender, account.senders, default_sender(account, config.gateway))

    # profile
    profile = chosen_profile
    if not isinstance(profile, str):
        raise invalid_request("profile", "Field 'profile' must be a string.")
    if profile not in config.profiles:
        raise unprocessable("unknown_profile", "profile", f"There is no profile {profile!r}.")

    # send_at
    send_at = None
    raw_send_at = body.get("send_at")
    if raw_send_at is not None:
        if not isinstance(raw_send_at, str):
            raise invalid_request("send_at", "Field 'send_at' must be an RFC 3339 date-time string.")
        try:
            send_at = parse_rfc3339(raw_send_at)
        except ValueError:
            raise invalid_request("send_at", f"{raw_send_at!r} is not an RFC 3339 date-time.") from None
        if send_at > latest_send_at(now):
            raise unprocessable("send_at_out_of_range", "send_at", "send_at may be at most 5 years ahead.")
        if send_at <= now:
            send_at = None  # in the past means now

    # callback_statuses (SPEC §12: right after send_at); absent or null: the account's, event by event
    callback_statuses = None
    raw_statuses = body.get("callback_statuses")
    if raw_statuses is not None:
        try:
            callback_statuses = parse_selection(raw_statuses, STATUS_NAMES)
        except ValueError as exc:
            raise invalid_request("callback_statuses", f"Field 'callback_statuses' {exc}.") from None

    # the optional rest
    if not max_parts_ok:
        raise invalid_request("max_parts", "Field 'max_parts' must be an integer of at least 1.")
    if not encoding_ok:
        raise invalid_request("encoding", "Field 'encoding' must be one of auto, gsm7, latin1, ucs2.")
    if encoding_problem is not None:
        raise invalid_request("encoding", encoding_problem)
    callback_url = body.get("callback_url")
    if callback_url is not None:
        check_callback_url(callback_url, account)
    reference = body.get("reference")
    if reference is not None and not (isinstance(reference, str) and len(reference) <= MAX_REFERENCE):
        raise invalid_request("reference", f"Field 'reference' must be a string of at most {MAX_REFERENCE} characters.")
    if not KNOWN_FIELDS.issuperset(body):
        unknown = sorted(set(body) - KNOWN_FIELDS)
        raise invalid_request(unknown[0], f"Unknown field {unknown[0]!r}.")

    status = Status.SCHEDULED if send_at is not None else Status.QUEUED
    detail = ""
    links = unapproved_links(text, account.approved_domains)
    if links:
        status = Status.PENDING_APPROVAL
        detail = f"link to {links[0]} is outside the approved domains"
    first = Event(at=now, status=status, detail=detail)  # frozen: one for all of them
    template = Message(id=new_message_id(now), account=account.name, to=numbers_out[0], sender=sender, text=text,
                       encoding=encoding._value_, parts=parts, profile=profile, status=status, reference=reference,
                       callback_url=callback_url, created_at=now, updated_at=now, send_at=send_at,
                       callback_statuses=callback_statuses, events=[first])
    out = [template]  # the first message; a list of 100 numbers is 99 copies of it, not 99 keyword calls
    for number in numbers_out[1:]:
        m = template.copy()
        m.id, m.to, m.events = new_message_id(now), number, [first]
        out.append(m)
    return out
