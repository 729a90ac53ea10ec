"""The store contract, continued: receipts that come before their submit's response (SPEC §8:
still matched), also when the SMSC gave the id to an earlier message that has ended, and receipts
for an id the SMSC gave to two messages waiting for theirs (``policies.receipts``); checked on every
store (see ``tests.store_contract``)."""

from __future__ import annotations

from twisted.internet.defer import gatherResults

from connectors.api import ReceiptOutcome
from smscore.model import Status
from smscore.store.rules import EARLY_RECEIPT_WINDOW
from tests.store_contract import make_message, receipt


async def check_receipt_before_submit_response(store):
    m = make_message()
    await store.accept([m], "gw1", 1030.0)
    assert await store.apply_receipt(receipt("early"), 1001.0) is None
    ts = await store.record_submit(m.id, "cheap", ["early"], 1002.0)
    assert [e.status for t in ts for e in t.events] == [Status.SUBMITTED, Status.DELIVERED]
    assert (await store.get(m.id)).status is Status.DELIVERED


async def check_an_early_receipt_for_an_smsc_id_used_before_is_the_new_message_s(store):
    """The SMSC restarted and gives ids from the start again: the receipt for the new message
    comes before its submit's response and names an id an ended message had. It changes nothing
    of that one and is the new message's once its response is stored (an audit saw it lost: the
    new message ended ``unknown`` after receipt_timeout)."""
    old, new = make_message(to="46701234561"), make_message(to="46701234562", at=1005.0)
    await store.accept([old, new], "gw1", 1030.0)
    await store.record_submit(old.id, "cheap", ["50000"], 1001.0)
    await store.apply_receipt(receipt("50000"), 1002.0)
    again = await store.apply_receipt(receipt("50000"), 1010.0)  # the new message's, early
    assert again is not None and not again.changed
    ts = await store.record_submit(new.id, "cheap", ["50000"], 1011.0)
    assert [e.status for t in ts for e in t.events] == [Status.SUBMITTED, Status.DELIVERED]
    assert (await store.get(new.id)).status is Status.DELIVERED
    assert [e.status for e in (await store.get(old.id)).events] == [Status.QUEUED, Status.SUBMITTED, Status.DELIVERED]


async def check_a_receipt_held_long_before_a_submit_is_not_that_submit_s(store):
    """A receipt sent again for an ended message is held too, in case it is the next message's;
    the SMSC giving the id to a message much later must not see it ended by that old receipt."""
    old, new = make_message(to="46701234561"), make_message(to="46701234562", at=1005.0)
    await store.accept([old, new], "gw1", 1030.0)
    await store.record_submit(old.id, "cheap", ["7"], 1001.0)
    await store.apply_receipt(receipt("7"), 1002.0)
    await store.apply_receipt(receipt("7"), 1003.0)  # sent again
    later = 1003.0 + EARLY_RECEIPT_WINDOW + 1
    ts = await store.record_submit(new.id, "cheap", ["7"], later)
    assert [e.status for t in ts for e in t.events] == [Status.SUBMITTED]
    assert (await store.get(new.id)).status is Status.SUBMITTED
    t = await store.apply_receipt(receipt("7", stat="UNDELIV"), later + 1)  # its own receipt finds it
    assert t.message.id == new.id


async def check_an_smsc_id_given_to_two_waiting_messages_goes_by_the_receipts_number(store):
    """An SMSC that counts its ids from 1 again after a restart gives the id of a message still
    waiting for its receipt to a new one: each receipt goes to the message sent to the number it
    names, however the SMSC writes it (until schema 15 the newer took both, and the older never
    learned its outcome); a receipt that names no number goes to the newer, as before."""
    old, new, third = (make_message(to="46701234561"), make_message(to="46701234562", at=1005.0),
                       make_message(to="46701234563", at=1006.0))
    await store.accept([old, new, third], "gw1", 1030.0)
    await store.record_submit(old.id, "cheap", ["9"], 1001.0)
    await store.record_submit(new.id, "cheap", ["9"], 1006.0)
    t = await store.apply_receipt(receipt("9", number="0701234561"), 1007.0)  # the older's, national form
    assert t.message.id == old.id
    assert [(await store.get(m.id)).status for m in (old, new)] == [Status.DELIVERED, Status.SUBMITTED]
    t = await store.apply_receipt(receipt("9", number="+46701234562"), 1008.0)
    assert t.message.id == new.id and (await store.get(new.id)).status is Status.DELIVERED
    # queued together (one batch of a writer, or in either order on several): the receipt that
    # names the older message's number is its own, whether the newer's submit was stored first
    await store.record_submit(third.id, "cheap", ["12"], 1009.0)
    fourth = make_message(to="46701234564", at=1010.0)
    await store.accept([fourth], "gw1", 1030.0)
    _, t = await gatherResults([store.record_submit(fourth.id, "cheap", ["12"], 1011.0),
                                store.apply_receipt(receipt("12", number="46701234563"), 1012.0)])
    assert t.message.id == third.id
    t = await store.apply_receipt(receipt("12"), 1013.0)  # no number: the newest still waiting
    assert t.message.id == fourth.id
    assert [(await store.get(m.id)).status for m in (third, fourth)] == [Status.DELIVERED, Status.DELIVERED]


async def check_a_receipt_held_for_another_number_is_not_a_newer_message_s(store):
    """A receipt sent again for an ended message that names the message's number is that message's,
    not held for the next message the SMSC gives its id: that one, sent to another number within
    the window, is delivered by its own receipt only."""
    old, new = make_message(to="46701234561"), make_message(to="46701234562", at=1005.0)
    await store.accept([old, new], "gw1", 1030.0)
    await store.record_submit(old.id, "cheap", ["8"], 1001.0)
    await store.apply_receipt(receipt("8", number="46701234561"), 1002.0)
    await store.apply_receipt(receipt("8", number="46701234561"), 1003.0)  # sent again: held
    ts = await store.record_submit(new.id, "cheap", ["8"], 1010.0)  # within the window, another number
    assert [e.status for t in ts for e in t.events] == [Status.SUBMITTED]
    t = await store.apply_receipt(receipt("8", stat="UNDELIV", outcome=ReceiptOutcome.FAILED,
                                          number="46701234562"), 1011.0)
    assert t.message.id == new.id and [e.status for e in t.events][:1] == [Status.FAILED]


CHECKS = [v for k, v in sorted(globals().items()) if k.startswith("check_")]
