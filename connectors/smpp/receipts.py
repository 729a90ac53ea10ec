"""Delivery receipts, pure: the receipt text, its outcome, and the SMSC message ids to match it by.

Why this module exists: a receipt is only useful if it finds its message, and SMSCs disagree on
how to say what they mean. They print the receipt text with different spacing and case, leave
fields out, put junk after it; some send the id and state as TLVs instead; many print in the receipt
in decimal an id they gave in hex in the ``submit_sm_resp`` (or the reverse), with or without
leading zeros. Each of those quirks is a rule here, with no I/O, so each is a line in a test table.

Theory of operation
-------------------
* ``parse_receipt_text`` reads the SMPP 3.4 Appendix B text
  (``id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E
  text:...``) by keyword, not by position: keys in any case, spaces around ``:``, ``submit_date`` for
  ``submit date``, missing fields, NULs and trailing junk are all accepted. ``text:`` takes the rest.
* ``outcome_for(stat, message_state)``: the text's ``stat`` decides; the ``message_state`` TLV is
  used when the text has no (recognised) ``stat``. ENROUTE is the SMSC still trying: with an error
  named (``err`` not zero, or a ``network_error_code``: the phone is off, out of coverage) it is
  ``buffered`` (SPEC §5), as Kannel reports it; without one it changes nothing.
* ``keys_for_submit(id, fmt)`` is the one key stored for a part; ``keys_for_receipt(id, fmt)`` the
  candidates a receipt is looked up by, best first. ``fmt`` is the operator's ``receipt_id_format``:

  ``auto``  ids are case-insensitive and leading zeros do not count; a receipt id may also be the
            same number printed in the other base: an all-digit receipt id also yields its hex
            form (``6699`` → ``1a2b``), a hex receipt id its decimal form (``1a2b`` → ``6699``).
  ``hex`` / ``dec``  both sides print the id in that one base: case and leading zeros are
            forgiven, no other base is tried (no false match through a conversion).
  ``as-is`` exact strings, nothing normalised.

  An empty id normalises to ``""`` (no key: it can never match); an id of only zeros to ``"0"``.
* ``receipt_facts`` puts it together for a deliver_sm/data_sm: the ``receipted_message_id`` TLV wins
  over the text's ``id``; None when there is no id at all (the caller logs it and acks it: an
  unmatchable receipt is not worth the SMSC redelivering it forever).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from connectors.api import ReceiptFacts, ReceiptOutcome

__all__ = [
    "ID_FORMATS",
    "MESSAGE_STATES",
    "STAT_OUTCOMES",
    "keys_for_receipt",
    "keys_for_submit",
    "normalize_id",
    "outcome_for",
    "parse_receipt_text",
    "receipt_facts",
    "understood",
]

ID_FORMATS = ("auto", "hex", "dec", "as-is")

#: stat word (upper case) → outcome. The 7-letter words are SMPP 3.4 Appendix B; the long forms and
#: BUFFRED are variants seen in the wild.
STAT_OUTCOMES: dict[str, ReceiptOutcome] = {
    "DELIVRD": ReceiptOutcome.DELIVERED,
    "DELIVERED": ReceiptOutcome.DELIVERED,
    "UNDELIV": ReceiptOutcome.FAILED,
    "UNDELIVERABLE": ReceiptOutcome.FAILED,
    "REJECTD": ReceiptOutcome.FAILED,
    "REJECTED": ReceiptOutcome.FAILED,
    "EXPIRED": ReceiptOutcome.EXPIRED,
    "ACCEPTD": ReceiptOutcome.ACCEPTED,
    "ACCEPTED": ReceiptOutcome.ACCEPTED,
    "ENROUTE": ReceiptOutcome.ACCEPTED,
    "BUFFRED": ReceiptOutcome.BUFFERED,
    "BUFFERED": ReceiptOutcome.BUFFERED,
    "DELETED": ReceiptOutcome.FAILED,  # the SMSC deleted it: not delivered, and nothing more will come
    "UNKNOWN": ReceiptOutcome.UNKNOWN,
}

#: message_state TLV value (SMPP 3.4 §5.2.28) → (its stat word, outcome).
MESSAGE_STATES: dict[int, tuple[str, ReceiptOutcome]] = {
    1: ("ENROUTE", ReceiptOutcome.ACCEPTED),
    2: ("DELIVRD", ReceiptOutcome.DELIVERED),
    3: ("EXPIRED", ReceiptOutcome.EXPIRED),
    4: ("DELETED", ReceiptOutcome.FAILED),
    5: ("UNDELIV", ReceiptOutcome.FAILED),
    6: ("ACCEPTD", ReceiptOutcome.ACCEPTED),
    7: ("UNKNOWN", ReceiptOutcome.UNKNOWN),
    8: ("REJECTD", ReceiptOutcome.FAILED),
}

# A key starts the text or follows whitespace; "submit date", "submit_date", "submitdate" alike.
_KEY = re.compile(r"(?:^|(?<=\s))(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:\s*",
                  re.IGNORECASE)
_FIELD_NAMES = {"submitdate": "submit_date", "donedate": "done_date"}
# Fields whose value is one token; the dates may hold a space ("240101 1200") and keep it.
_ONE_TOKEN = frozenset({"id", "sub", "dlvrd", "stat", "err"})
_HEX = re.compile(r"[0-9a-f]+")


# The layout of SMPP 3.4 Appendix B that nearly every SMSC prints, read in one match; anything else
# (other order, spacing, case, missing fields) goes the general way below, with the same result.
_USUAL = re.compile(r"id:(\S+) sub:(\S+) dlvrd:(\S+) submit date:(\d+) done date:(\d+) stat:(\S+) err:(\S+)"
                    r"(?: text:(.*))?", re.DOTALL)


def parse_receipt_text(text: str) -> dict[str, str]:
    """The fields of a receipt text: any of ``id sub dlvrd submit_date done_date stat err text``.

    Missing fields are absent. ``stat`` is upper-cased; other values are as printed (stripped).
    The first occurrence of a key wins; ``text`` runs to the end of the string.
    """
    usual = _USUAL.fullmatch(text) if "\x00" not in text else None
    if usual is not None:
        id_, sub, dlvrd, submit, done, stat, err, rest = usual.groups()
        fields = {"id": id_, "sub": sub, "dlvrd": dlvrd, "submit_date": submit, "done_date": done,
                  "stat": stat.upper(), "err": err}
        if rest is not None:
            fields["text"] = rest.strip()
        return fields
    return _parse_any(text)


def _parse_any(text: str) -> dict[str, str]:
    """``parse_receipt_text`` for any layout: keys found wherever they stand."""
    text = text.replace("\x00", " ")
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for i, m in enumerate(matches):
        name = m.group(1).lower().replace(" ", "").replace("_", "")
        name = _FIELD_NAMES.get(name, name)
        if name == "text":
            fields.setdefault("text", text[m.end():].strip())
            break
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        value = text[m.end():end].strip()
        if name in _ONE_TOKEN:
            value = value.split()[0] if value.split() else ""
        if name == "stat":
            value = value.upper()
        if not fields.get(name):
            fields[name] = value
    return {k: v for k, v in fields.items() if v or k == "text"}


def outcome_for(stat: str | None, message_state: int | None = None) -> ReceiptOutcome:
    """What a receipt means: by its ``stat`` word, else by its ``message_state`` TLV. A receipt that
    says neither in a way these tables know changes nothing (ACCEPTED): the message waits for a
    receipt that does, or for its receipt_timeout (SPEC §5 keeps ``unknown`` for that); the link
    logs it (``understood``)."""
    if stat:
        # as the text gives it (``parse_receipt_text`` upper-cases it), else in any case and spacing
        outcome = STAT_OUTCOMES.get(stat)
        if outcome is None:
            outcome = STAT_OUTCOMES.get(stat.strip().upper())
        if outcome is not None:
            return outcome
    if message_state is not None and message_state in MESSAGE_STATES:
        return MESSAGE_STATES[message_state][1]
    return ReceiptOutcome.ACCEPTED


def understood(stat: str | None, message_state: int | None = None) -> bool:
    """Whether ``outcome_for`` read the receipt's ``stat`` or ``message_state`` (else it changes nothing)."""
    return bool(stat) and (stat in STAT_OUTCOMES or stat.strip().upper() in STAT_OUTCOMES) or (
        message_state in MESSAGE_STATES)


def _reports_an_error(fields: Mapping, network) -> bool:
    """The receipt names an error: an ``err`` of the text other than zero, or a
    ``network_error_code`` whose error code (its last two octets; the first is the network type)
    is not zero."""
    err = str(fields.get("err", "")).strip()
    if err and err.strip("0"):
        return True
    return isinstance(network, (bytes, bytearray)) and len(network) == 3 and network[1:] != b"\0\0"


def normalize_id(raw: str, fmt: str = "auto") -> str:
    """An SMSC id as a key: stripped, lower case, no leading zeros (``"000"`` → ``"0"``,
    ``""`` → ``""``); with ``as-is`` the id unchanged."""
    if fmt not in ID_FORMATS:
        raise ValueError(f"receipt_id_format must be one of {', '.join(ID_FORMATS)}, not {fmt!r}")
    if fmt == "as-is":
        return raw
    # an id of letters and digits only (nearly every one: one per part sent, one per receipt) has
    # nothing to strip, neither spaces nor NULs
    value = raw.lower() if raw.isalnum() else raw.strip().strip("\x00").strip().lower()
    if not value:
        return ""
    return value.lstrip("0") or "0"


#: ``keys_for_submit(message_id, fmt)``: the key stored for a part whose ``submit_sm_resp`` carried
#: ``message_id``, which is the id normalized (an alias, not a wrapper: a call less a part sent).
keys_for_submit = normalize_id


def keys_for_receipt(message_id: str, fmt: str = "auto") -> tuple[str, ...]:
    """The keys a receipt id may match, best first (see the module docstring); () for no id."""
    key = normalize_id(message_id, fmt)
    if not key:
        return ()
    if fmt != "auto":
        return (key,)
    if key.isdigit() and key.isascii():
        # printed in decimal, given in hex; or printed in hex (its digits are hex digits too), given
        # in decimal (an id below 10 is the same all three ways: once)
        return tuple(dict.fromkeys((key, format(int(key), "x"), str(int(key, 16)))))
    if _HEX.fullmatch(key):  # printed in hex, given in decimal (it has a letter: never the same)
        return key, str(int(key, 16))
    return (key,)


def receipt_facts(operator: str, text: str, tlvs: Mapping, fmt: str = "auto",
                  number: str = "") -> ReceiptFacts | None:
    """A receipt from its text and the TLVs of its PDU (``number``: its ``source_addr``, the phone
    it is about); None when it carries no id at all."""
    fields = parse_receipt_text(text) if text else {}
    raw_id = str(tlvs.get("receipted_message_id") or "").strip() or fields.get("id", "")
    keys = keys_for_receipt(raw_id, fmt)
    if not keys:
        return None
    state = tlvs.get("message_state")
    state = state if isinstance(state, int) else None
    stat = fields.get("stat", "")  # upper case (parse_receipt_text)
    outcome = outcome_for(stat, state)
    if state in MESSAGE_STATES and stat not in STAT_OUTCOMES:
        stat = stat or MESSAGE_STATES[state][0]
    err = fields.get("err", "")
    network = tlvs.get("network_error_code")
    if not err and isinstance(network, (bytes, bytearray)):
        err = network.hex()
    if outcome is ReceiptOutcome.ACCEPTED and stat == "ENROUTE" and _reports_an_error(fields, network):
        # still trying after an error (absent subscriber, no coverage): the SMSC buffers it
        outcome = ReceiptOutcome.BUFFERED
    return ReceiptFacts(operator=operator, keys=keys, outcome=outcome, stat=stat, err=err,
                        raw_id=raw_id, number=number)
