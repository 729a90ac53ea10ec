"""Rows of the SQL stores: the column lists and how a row becomes a model object, and the
``IN (...)`` lists the set-based statements are built with."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import orjson

from smscore.model import STATUS_BY_NAME, Message, MoMessage, PushJob

MSG_COLS = ("id, account, to_number, sender, body, encoding, parts, profile, status, reference, "
            "callback_url, operator, cost, error, created_at, updated_at, send_at, tried, origin, charged, "
            "callback_statuses, udh, expires_at, part_state")
MO_COLS = "id, operator, sender, to_number, body, received_at, parts, note, account, keyword, payload, outcome, seq"
JOB_COLS = "id, kind, account, subject, url, body, attempts, first_at"


def row_to_message(row) -> Message:
    """The message a ``MSG_COLS`` row holds. Built with positional arguments in ``Message``'s field
    order (``events`` empty): a third of the keyword call's time, three times a message."""
    (mid, account, to, sender, body, encoding, parts, profile, status, reference, callback_url,
     operator, cost, error, created_at, updated_at, send_at, tried, origin, charged, callback_statuses,
     udh, expires_at, _part_state) = row
    return Message(
        mid, account, to, sender, body, encoding, parts, profile, STATUS_BY_NAME[status], reference, callback_url,
        operator, _ZERO if cost == "0" else Decimal(cost), error, created_at, updated_at, send_at,
        tuple(tried.split(",")) if tried else (), [], origin, _ZERO if charged == "0" else Decimal(charged),
        callback_statuses, bytes.fromhex(udh) if udh else b"", expires_at)


_ZERO = Decimal(0)


def row_to_mo(row) -> MoMessage:
    (mid, operator, sender, to, body, received_at, parts, note, account, keyword, payload, outcome, seq) = row
    return MoMessage(id=mid, operator=operator, sender=sender, to=to, text=body, received_at=received_at,
                     parts=parts, note=note, account=account, keyword=keyword, payload=payload, outcome=outcome,
                     seq=seq)


def row_to_job(row) -> PushJob:
    jid, kind, account, subject, url, body, attempts, first_at = row
    return PushJob(kind=kind, account=account, subject=subject, url=url, body=orjson.loads(body), id=jid,
                   attempts=attempts, first_at=first_at)

def chunks(items: Sequence, size: int = 500):
    """``items`` in lists of at most ``size``: for ``IN (...)`` lists far below any driver's limit
    on parameters, and few distinct statements."""
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def marks(chunk: Sequence) -> str:
    return ",".join("?" * len(chunk))


def in_lists(items: Sequence, size: int = 512):
    """``items`` without repeats in lists for ``IN (...)``, each padded (with its last item,
    harmless in ``IN``) to a power of two, so that a few statement texts serve every batch size
    and the driver's statement cache keeps them compiled."""
    items = list(dict.fromkeys(items))
    for i in range(0, len(items), size):
        chunk = items[i:i + size]
        width = 1 << (len(chunk) - 1).bit_length()
        yield chunk + chunk[-1:] * (width - len(chunk))
