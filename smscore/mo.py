"""MO handling: turn the keyword policy's decision into what the store applies, atomically with
the MO itself (SPEC §6).

``MoRouter.route(mo, spent)`` runs inside the store's transaction that stores a whole MO: it asks
``policies.keywords`` what the MO is, and returns a ``MoRouting``: the MO's account, keyword and
payload, its history events, the premium spend to count, the stop list entries to add, the push job
to the keyword's backend, and the reply SMS (static reply, unknown-keyword reply, stop confirmation,
cap refusal) as MT messages from the shortcode. Storing all of it in one transaction is what makes
an MO routed exactly once, even across a crash.

Replies are MT messages with ``origin = "reply"``: sent through ``[gateway] reply_profile`` from the
shortcode, never charged to the account, and without status callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal

from connectors.smpp import text as sms_text
from policies.admission import parts_allowed
from policies.keywords import Keyword, KeywordRouter, Shortcode
from smscore.model import Event, Message, MoMessage, MoRouting, PushJob, Status, new_message_id, rfc3339

def month_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m")


def mo_push_body(mo: MoMessage) -> dict:
    """The MO push of SPEC §4, also what ``GET /v1/inbound`` lists."""
    return {"id": mo.id, "from": mo.sender, "to": mo.to, "keyword": mo.keyword, "text": mo.text,
            "payload": mo.payload, "received_at": rfc3339(mo.received_at)}


class MoRouter:
    """Builds ``MoRouting`` decisions from the config's shortcodes and keywords (rebuilt on reload)."""

    def __init__(self, config) -> None:
        self.config = config
        self.keywords = KeywordRouter(
            [Shortcode(number=s.number, unknown_keyword_reply=s.unknown_keyword_reply, stop_words=s.stop_words,
                       stop_reply=s.stop_reply, monthly_cap_per_phone=s.monthly_cap_per_phone,
                       cap_reply=s.cap_reply) for s in config.shortcodes.values()],
            [Keyword(shortcode=k.shortcode, keyword=k.keyword, account=k.account, aliases=k.aliases, url=k.url,
                     price=k.price, unavailable_reply=k.unavailable_reply, reply=k.reply) for k in config.keywords])

    def route(self, mo: MoMessage, spent: Callable[[str, str, str], Decimal]) -> MoRouting:
        month = month_of(mo.received_at)
        so_far = spent(mo.to, mo.sender, month) if mo.to in self.config.shortcodes else Decimal(0)
        r = self.keywords.route(mo.to, mo.text, sender=mo.sender, spent_this_month=so_far)
        account = r.keyword.account if r.keyword is not None else (r.accounts[0] if len(r.accounts) == 1 else None)
        routing = MoRouting(outcome=r.kind, account=account, keyword=r.keyword_name, payload=r.payload)
        if r.kind == "keyword":
            routing.events.append(("routed", f"keyword {r.keyword_name} of account {account}"))
            routing.inbox = True
            if r.charge:
                routing.spend = (mo.to, mo.sender, month, r.charge)
                routing.events.append(("charged", f"{r.charge} counted against the monthly cap"))
            if r.forward and r.url:
                mo.account, mo.keyword, mo.payload = account, r.keyword_name, r.payload
                routing.push = PushJob("mo", account, mo.id, r.url, mo_push_body(mo))
                routing.events.append(("push queued", r.url))
        elif r.kind == "stop":
            routing.stop = (r.accounts, mo.sender)
            routing.events.append(("stop", f"{mo.sender} stopped for {', '.join(r.accounts) or 'no account'}"))
        elif r.kind == "unknown_keyword":
            routing.events.append(("unknown keyword", "no keyword of the shortcode matches the first word"))
        elif r.kind == "over_cap":
            routing.events.append(("refused", f"over the monthly cap of {mo.to} for this phone"))
        else:
            routing.events.append(("not routed", f"{mo.to} is not a shortcode of this gateway"))
        if r.reply:
            self.add_reply(routing, mo, r.reply, account, mo.received_at)
        return routing

    def add_reply(self, routing: MoRouting, mo: MoMessage, text: str, account: str | None, at: float) -> None:
        """Queue ``text`` as an SMS to the phone from the shortcode (or record why it cannot go)."""
        reply = self.reply_message(mo, text, account, at)
        if isinstance(reply, str):
            routing.events.append(("reply not sent", reply))
        else:
            routing.replies.append(reply)
            routing.events.append(("reply queued", f"message {reply.id}"))

    def reply_message(self, mo: MoMessage, text: str, account: str | None, at: float) -> Message | str:
        """The reply as an MT message, or why it cannot be sent."""
        if not text:
            return "the reply is empty"
        encoding = sms_text.choose_encoding(text) if _encodable(text) else None
        if encoding is None:
            return "the reply holds a character no SMS encoding carries"
        parts = sms_text.count_parts(text, encoding)
        most = self.reply_parts(account)
        if parts > most:  # not sent (the MO's history says so): never truncated
            return f"the reply needs {parts} SMS parts; at most {most} are sent"
        m = Message(id=new_message_id(at), account=account or "", to=mo.sender, sender=mo.to, text=text,
                    encoding=encoding.value, parts=parts, profile=self.config.gateway.reply_profile,
                    reference=f"mo:{mo.id}", created_at=at, updated_at=at, origin="reply")
        m.events.append(Event(at=at, status=Status.QUEUED, detail=f"reply to MO {mo.id}"))
        return m

    def reply_parts(self, account: str | None) -> int:
        """The most parts a reply may take: ``[gateway] max_parts_cap``, a hard cap for any account
        (SPEC §3; a backend's answer of 10 parts went out at a cap of 3), and the account's own
        ``max_parts`` when the reply is an account's."""
        owner = self.config.accounts.get(account) if account else None
        return parts_allowed(self.config.gateway.max_parts_cap, owner.max_parts if owner is not None else None)

    def keyword_for(self, shortcode: str, keyword: str):
        for k in self.config.keywords:
            if k.shortcode == shortcode and k.keyword.casefold() == keyword.casefold():
                return k
        return None


def _encodable(text: str) -> bool:
    try:
        sms_text.choose_encoding(text)
    except sms_text.UnencodableText:
        return False
    return True


def _mo_of(job: PushJob) -> MoMessage:
    """The MO a push job carries (its body), as far as a reply needs it."""
    b = job.body
    return MoMessage(id=b["id"], operator="", sender=b["from"], to=b["to"], text=b["text"], received_at=0.0,
                     account=job.account, keyword=b.get("keyword", ""), payload=b.get("payload", ""))


def pushed_reply(router: MoRouter, job: PushJob, text: str | None, note: str | None,
                 now: float) -> tuple[tuple[str, str, str], Message | None] | None:
    """The reply a backend's 2xx answer to an MO push asks for: the MO's history event, and the
    reply (None when it cannot go: the event says why). No reply text: None, or, when the answer
    could not be read as one (``note``: ``{"reply": 5}``, JSON that is not), the event saying so."""
    if not text:
        return None if not note else ((job.subject, "reply not sent", f"the backend's answer: {note}"), None)
    reply = router.reply_message(_mo_of(job), text, job.account, now)
    if isinstance(reply, str):
        return (job.subject, "reply not sent", reply), None
    return (job.subject, "reply queued", f"message {reply.id} (from the backend)"), reply


def unavailable_reply(router: MoRouter, job: PushJob, now: float) -> tuple[tuple[str, str, str], Message | None] | None:
    """The keyword's ``unavailable_reply`` after the first failed push of an MO (SPEC §4), as
    ``pushed_reply``; None when the keyword has none."""
    keyword = router.keyword_for(job.body["to"], job.body.get("keyword", ""))
    if keyword is None or not keyword.unavailable_reply:
        return None
    reply = router.reply_message(_mo_of(job), keyword.unavailable_reply, job.account, now)
    if isinstance(reply, str):
        return (job.subject, "reply not sent", reply), None
    return (job.subject, "unavailable reply queued", f"message {reply.id}"), reply
