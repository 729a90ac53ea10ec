"""Receipt texts as real SMSCs print them, what they mean, and the ids they are matched by."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.api import ReceiptOutcome
from connectors.smpp.receipts import (
    keys_for_receipt,
    keys_for_submit,
    normalize_id,
    outcome_for,
    parse_receipt_text,
    receipt_facts,
    understood,
)

D, F, E, A, B, U = (ReceiptOutcome.DELIVERED, ReceiptOutcome.FAILED, ReceiptOutcome.EXPIRED,
                    ReceiptOutcome.ACCEPTED, ReceiptOutcome.BUFFERED, ReceiptOutcome.UNKNOWN)

# --- parse_receipt_text --------------------------------------------------------------------------------
PARSE_CASES = [
    # SMPP 3.4 Appendix B, exactly
    ("id:0A1B2C sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD "
     "err:000 text:hello",
     {"id": "0A1B2C", "sub": "001", "dlvrd": "001", "submit_date": "2401011200",
      "done_date": "2401011201", "stat": "DELIVRD", "err": "000", "text": "hello"}),
    # upper-case keys, spaces after the colons, Text with a capital
    ("ID: 1234567890 SUB: 001 DLVRD: 000 SUBMIT DATE: 2401011200 DONE DATE: 2401011300 "
     "STAT: UNDELIV ERR: 001 Text: Your code is 1234",
     {"id": "1234567890", "sub": "001", "dlvrd": "000", "submit_date": "2401011200",
      "done_date": "2401011300", "stat": "UNDELIV", "err": "001",
      "text": "Your code is 1234"}),
    # no sub/dlvrd, underscores in the dates, lower-case stat
    ("id:abc-123 submit_date:2401011200 done_date:2401011201 stat:delivrd err:0",
     {"id": "abc-123", "submit_date": "2401011200", "done_date": "2401011201",
      "stat": "DELIVRD", "err": "0"}),
    # seconds in the dates (12 digits), two spaces between fields, trailing NUL junk
    ("id:77  sub:001  dlvrd:001  submit date:240101120000  done date:240101120100  "
     "stat:EXPIRED  err:000  text:\x00\x00",
     {"id": "77", "sub": "001", "dlvrd": "001", "submit_date": "240101120000",
      "done_date": "240101120100", "stat": "EXPIRED", "err": "000", "text": ""}),
    # text that itself contains keys: it runs to the end and changes nothing before it
    ("id:5 stat:REJECTD err:042 text:stat:DELIVRD id:9",
     {"id": "5", "stat": "REJECTD", "err": "042", "text": "stat:DELIVRD id:9"}),
    # only id and stat; stuff after the last field
    ("id:00012 stat:ACCEPTD extra=1",
     {"id": "00012", "stat": "ACCEPTD"}),
    # the fields glued with no space at all after "text:"; date with a space inside is kept
    ("id:1 submit date:240101 1200 done date:240101 1201 stat:ENROUTE err:000 text:",
     {"id": "1", "submit_date": "240101 1200", "done_date": "240101 1201", "stat": "ENROUTE",
      "err": "000", "text": ""}),
    # a key glued to a word is not a key ("valid:" is not "id:")
    ("valid:3 id:42 stat:DELIVRD", {"id": "42", "stat": "DELIVRD"}),
    # empty value, then the same key again with a value
    ("id: stat:DELIVRD id:99", {"id": "99", "stat": "DELIVRD"}),
    # no receipt at all
    ("hello world", {}),
    ("", {}),
]


@pytest.mark.parametrize("text, fields", PARSE_CASES)
def test_parse_receipt_text(text, fields):
    assert parse_receipt_text(text) == fields


# --- outcome_for ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stat, state, outcome", [
    ("DELIVRD", None, D),
    ("delivrd", None, D),
    ("DELIVERED", None, D),
    ("UNDELIV", None, F),
    ("REJECTD", None, F),
    ("EXPIRED", None, E),
    ("ACCEPTD", None, A),
    ("ENROUTE", None, A),
    ("DELETED", None, F),  # a definite non-delivery, as Kannel reads it: the next operator may try
    ("UNKNOWN", None, U),
    ("BUFFRED", None, B),
    ("", 1, A),
    ("", 2, D),
    ("", 3, E),
    ("", 4, F),
    ("", 5, F),
    ("", 6, A),
    ("", 7, U),
    ("", 8, F),
    (None, 2, D),
    ("DELIVRD", 5, D),  # the text's stat decides when there is one
    ("GARBLED", 2, D),  # an unknown word: the TLV decides
    ("GARBLED", None, A),  # not understood: changes nothing, the message waits (SPEC §5: unknown is no receipt)
    (" delivrd ", None, D),  # any case and spacing
    ("", 99, A),
    ("", None, A),
])
def test_outcome_for(stat, state, outcome):
    assert outcome_for(stat, state) is outcome
    assert understood(stat, state) is (outcome is not A or (stat or "").strip().upper() in ("ACCEPTD", "ENROUTE")
                                       or state in (1, 6))


# --- ids ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, fmt, key", [
    ("0A1B", "auto", "a1b"),
    ("  0a1b  ", "auto", "a1b"),
    ("000", "auto", "0"),
    ("0", "dec", "0"),
    ("", "auto", ""),
    ("   ", "hex", ""),
    ("00123", "dec", "123"),
    ("ABC", "hex", "abc"),
    ("0A1B", "as-is", "0A1B"),
    (" 0A1B", "as-is", " 0A1B"),
])
def test_normalize_id(raw, fmt, key):
    assert normalize_id(raw, fmt) == key


def _normalize_as_written(raw: str) -> str:
    """``normalize_id`` (auto, hex, dec) as the module docstring says it, one step at a time."""
    value = raw.strip().strip("\x00").strip().lower()
    return (value.lstrip("0") or "0") if value else ""


def _candidates_as_written(raw: str) -> tuple[str, ...]:
    """``keys_for_receipt(raw, "auto")`` one candidate at a time, duplicates dropped."""
    key = _normalize_as_written(raw)
    if not key:
        return ()
    candidates = [key]
    if key.isdigit() and key.isascii():
        candidates.append(format(int(key), "x"))
    if all(c in "0123456789abcdef" for c in key):
        candidates.append(str(int(key, 16)))
    return tuple(dict.fromkeys(candidates))


# ids as SMSCs print them: digits, hex letters of either case, other letters, non-ASCII digits
# and letters, separators, and the padding the normalisation removes (spaces, tabs, NULs)
_IDS = st.text(st.sampled_from("0123456789abcdefABCDEFgxyz-_.É١ \t\x00\u3000"), max_size=10)


@given(_IDS)
def test_ids_normalise_and_yield_candidates_as_the_rules_say(raw):
    """The shortcuts (an id of letters and digits has nothing to strip; a hex id with a letter has
    two candidates) give what the rules give, one step at a time."""
    for fmt in ("auto", "hex", "dec"):
        assert normalize_id(raw, fmt) == _normalize_as_written(raw)
    assert keys_for_receipt(raw, "auto") == _candidates_as_written(raw)


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="receipt_id_format"):
        normalize_id("1", "octal")


@pytest.mark.parametrize("submit_id, receipt_id, fmt, matches", [
    # auto: hex given, decimal printed, and the reverse
    ("1A2B", "6699", "auto", True),
    ("6699", "1a2b", "auto", True),
    ("0000A1B2", "41394", "auto", True),
    ("41394", "0000a1b2", "auto", True),
    # auto: zeros and case never matter
    ("00ABC", "abc", "auto", True),
    ("abc", "000ABC", "auto", True),
    ("12", "0012", "auto", True),
    # auto: same base, a different number
    ("1A2B", "1A2C", "auto", False),
    # hex / dec: no conversion
    ("1A2B", "6699", "hex", False),
    ("1a2b", "001A2B", "hex", True),
    ("6699", "1a2b", "dec", False),
    ("006699", "6699", "dec", True),
    # as-is: exact strings
    ("0A1B", "0A1B", "as-is", True),
    ("0A1B", "0a1b", "as-is", False),
    ("0A1B", "A1B", "as-is", False),
    # non-numeric ids only normalise
    ("Msg-0001", "msg-0001", "auto", True),
    # an empty id never matches anything
    ("", "", "auto", False),
])
def test_submit_key_among_receipt_candidates(submit_id, receipt_id, fmt, matches):
    key = keys_for_submit(submit_id, fmt)
    assert (key in keys_for_receipt(receipt_id, fmt)) is matches


@pytest.mark.parametrize("receipt_id, fmt, candidates", [
    ("6699", "auto", ("6699", "1a2b", "26265")),  # as printed, dec→hex, hex→dec
    ("0A1B", "auto", ("a1b", "2587")),
    ("000", "auto", ("0",)),
    ("1", "auto", ("1",)),
    ("msg-1", "auto", ("msg-1",)),
    ("6699", "hex", ("6699",)),
    ("6699", "dec", ("6699",)),
    ("0A1B", "as-is", ("0A1B",)),
    ("", "auto", ()),
])
def test_receipt_candidates_best_first(receipt_id, fmt, candidates):
    assert keys_for_receipt(receipt_id, fmt) == candidates


# --- receipt_facts ------------------------------------------------------------------------------------
def test_receipt_facts_from_text():
    facts = receipt_facts("telia", "id:00FF sub:001 dlvrd:001 submit date:2401011200 "
                          "done date:2401011201 stat:UNDELIV err:005 text:x", {})
    assert (facts.operator, facts.keys, facts.outcome, facts.stat, facts.err, facts.raw_id) == (
        "telia", ("ff", "255"), F, "UNDELIV", "005", "00FF")
    assert facts.detail == "stat=UNDELIV err=005 id=00FF"


def test_receipt_facts_tlvs_win_and_fill_in():
    facts = receipt_facts("telia", "id:1 stat:DELIVRD", {"receipted_message_id": "ABCD"}, "hex")
    assert (facts.keys, facts.raw_id, facts.outcome) == (("abcd",), "ABCD", D)
    facts = receipt_facts("telia", "", {"receipted_message_id": "9", "message_state": 3,
                                        "network_error_code": b"\x03\x00\x01"})
    assert (facts.keys, facts.outcome, facts.stat, facts.err) == (("9",), E, "EXPIRED", "030001")


@pytest.mark.parametrize("text, tlvs, outcome", [
    ("id:7 stat:ENROUTE err:027", {}, B),             # absent subscriber: the SMSC keeps trying
    ("id:7 stat:enroute err:1", {}, B),
    ("id:7 stat:ENROUTE err:000", {}, A),             # en route, nothing wrong: no change
    ("id:7 stat:ENROUTE", {}, A),
    ("", {"receipted_message_id": "7", "message_state": 1, "network_error_code": b"\x03\x00\x1b"}, B),
    ("", {"receipted_message_id": "7", "message_state": 1, "network_error_code": b"\x03\x00\x00"}, A),
    ("", {"receipted_message_id": "7", "message_state": 1}, A),
    ("id:7 stat:ACCEPTD err:027", {}, A),             # only ENROUTE says "still trying"
    ("id:7 stat:DELIVRD err:027", {}, D),
])
def test_enroute_with_an_error_is_buffered(text, tlvs, outcome):
    """SPEC §5: buffered is the SMSC reporting a temporary failure (phone off, no coverage)."""
    assert receipt_facts("telia", text, tlvs).outcome is outcome


def test_receipt_facts_without_any_id_is_none():
    assert receipt_facts("telia", "stat:DELIVRD err:000", {"message_state": 2}) is None
    assert receipt_facts("telia", "", {"receipted_message_id": ""}) is None


_TOKEN = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=500, deadline=None)
@given(id_=_TOKEN, sub=_TOKEN, dlvrd=_TOKEN, stat=_TOKEN, err=_TOKEN, submit=st.integers(0, 10**10),
       done=st.integers(0, 10**10), text=st.none() | st.text(max_size=30))
def test_the_usual_layout_reads_as_the_general_way_reads_it(id_, sub, dlvrd, stat, err, submit, done, text):
    """The one-match path for SMPP 3.4 Appendix B's layout gives what the key-by-key path gives,
    for any values, those that make it fall back included."""
    from connectors.smpp.receipts import _parse_any

    receipt = f"id:{id_} sub:{sub} dlvrd:{dlvrd} submit date:{submit} done date:{done} stat:{stat} err:{err}"
    if text is not None:
        receipt += " text:" + text
    assert parse_receipt_text(receipt) == _parse_any(receipt)
