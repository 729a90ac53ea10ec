"""How long a reply to an MO may be (``smscore.mo.MoRouter.reply_message``): SPEC §3 calls
``max_parts_cap`` a hard cap for any account, and a backend's answer of 10 parts went out at a
cap of 3. A reply too long is not sent, never truncated, and the MO's history says why."""

from __future__ import annotations

from smscore.model import Message, MoMessage
from smscore.mo import MoRouter
from tests.config_rig import BASE, parse

CONFIG = BASE + """
[gateway]
max_parts_cap = 3
[accounts.acme]
api_keys = ["k1"]
max_parts = 2
[accounts.wide]
api_keys = ["k2"]
max_parts = 3
"""

MO = MoMessage(id="mo1", operator="sim", sender="46701234567", to="72550", text="PIZZA", received_at=1000.0)


def reply(account, parts: int):
    return MoRouter(parse(CONFIG)).reply_message(MO, "x" * (153 * parts), account, 1000.0)


def test_a_reply_is_held_to_its_accounts_max_parts_and_never_past_the_cap():
    assert isinstance(reply("acme", 2), Message) and reply("acme", 2).parts == 2
    assert reply("acme", 3) == "the reply needs 3 SMS parts; at most 2 are sent"
    assert reply("wide", 3).parts == 3
    assert reply("wide", 4) == "the reply needs 4 SMS parts; at most 3 are sent"
    assert reply(None, 3).sender == "72550"  # a stop or help reply: the cap alone
    assert reply(None, 10) == "the reply needs 10 SMS parts; at most 3 are sent"
    assert reply("gone", 4) == "the reply needs 4 SMS parts; at most 3 are sent"  # an account a reload removed
