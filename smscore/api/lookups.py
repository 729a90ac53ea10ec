"""The admin look-ups of SPEC §14: any account's messages, MO, numbers, accounts, the approval
queue and the stop list, for ops answering "where is my message to 4670…?" without SQL.

The router checks the admin key before calling any of these (401 without one, 403 for a
customer's key). Lists are newest first and paged by id: ``next_cursor`` is the last id of a full
page (null when the page was the last), given back as ``cursor``; ids sort by creation time, so
pages never repeat nor skip a message, whatever arrives meanwhile. Each handler reads and checks
every parameter first (400 naming it), then asks the store once or a few times in parallel.

The parameter readers and renderers without a leading underscore (``msisdn_param``,
``status_param``, ``time_filter``, ``next_cursor``, ``stop_entry``, ``consent_entry``, ``both_lists``)
are shared with the customers' own look-ups (``customer_lookups``), so both read and page the same way.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from twisted.internet.defer import gatherResults

from smscore.api.inputs import id_cursor, known, page_limit, query, time_param
from smscore.api.render import render_message
from smscore.errors import ApiError
from smscore.model import Status, rfc3339
from smscore.store.lookups import MessageQuery, MoQuery
from smscore.store.rules import DO_NOT_CALL, day_of

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_STOP_CURSOR = re.compile(r"^([A-Za-z0-9_*-]{1,64}):([0-9A-Za-z+]{1,64})$")


# -- reading parameters -----------------------------------------------------------------------------
def msisdn_param(value: str, field: str) -> str:
    """A number normalized as ``POST /v1/messages`` does (422 ``invalid_number`` otherwise)."""
    from policies.numbers import InvalidNumber, normalize_msisdn

    try:
        return normalize_msisdn(value)
    except InvalidNumber as exc:
        raise ApiError(422, "invalid_number", str(exc), field) from None


def _name(params: dict[str, str], field: str) -> str | None:
    """An account, keyword or operator name to filter on (any name: a removed account's messages
    stay findable)."""
    value = params.get(field)
    if value is not None and not _NAME.match(value):
        raise ApiError(400, "invalid_request", f"{field} must be a name (letters, digits, _ . -).", field)
    return value


def status_param(params: dict[str, str]) -> str | None:
    """``status``: a message status of SPEC §5, else 400 naming it."""
    status = params.get("status")
    if status is not None and status not in {s.value for s in Status}:
        raise ApiError(400, "invalid_request", f"Unknown status {status!r}.", "status")
    return status


def time_filter(params: dict[str, str], field: str) -> float | None:
    """An optional time bound (RFC 3339 or a date) as epoch seconds; None when absent."""
    return time_param(params, field, None) if field in params else None


def next_cursor(items, limit: int) -> str | None:
    """The cursor after a page: its last id when full (there may be more), else None."""
    return items[-1].id if len(items) == limit else None


# -- rendering ------------------------------------------------------------------------------------
def _message(m, events: bool = False) -> dict:
    """A message as ops see it: a reply to a help or stop word belongs to no account (null, as an
    MO routed to none shows it), where the store keeps ""."""
    return {**render_message(m, events=events), "account": m.account or None}


def _mo(mo) -> dict:
    """An MO as ``GET /v1/inbound`` lists it, with what ops need besides: the account it was routed
    to (null when none), what routing did with it, the operator it came through, its note."""
    from smscore.mo import mo_push_body

    return {**mo_push_body(mo), "account": mo.account, "outcome": mo.outcome, "operator": mo.operator,
            "note": mo.note}


def _held(m) -> dict:
    """A held message with why and since when (its last ``pending_approval`` event)."""
    held = [e for e in m.events if e.status is Status.PENDING_APPROVAL]
    return {**_message(m), "held_at": rfc3339(held[-1].at) if held else None,
            "held_because": held[-1].detail if held else None}


def stop_entry(e, with_account: bool = True) -> dict:
    """A stop-list entry as ops see it; ``with_account=False`` for a customer, who only ever sees
    its own list (so the account says nothing) and never the do-not-call list."""
    do_not_call = e.account == DO_NOT_CALL
    out = {"number": e.number, "account": None if do_not_call else e.account,
           "list": "do_not_call" if do_not_call else "stop", "added_at": rfc3339(e.added_at), "source": e.source}
    if not with_account:
        del out["account"]
    return out


def consent_entry(e, with_account: bool = True) -> dict:
    """A consent (the account may send to the number despite the do-not-call list), apart from
    the stop entries: it allows what they stop. ``with_account=False`` for the account itself."""
    out = {"number": e.number, "account": e.account, "added_at": rfc3339(e.added_at)}
    if not with_account:
        del out["account"]
    return out


def both_lists(gw, *, number, account, after, consents_after, limit: int, entry, consent, cursor):
    """A stop-list answer: a page of stop entries and a page of consents, each after its own
    cursor (``after``, ``consents_after``), rendered by ``entry`` and ``consent``; each list's
    next cursor is ``cursor(its last)`` when its page is full, else null."""
    d = gatherResults([gw.store.stoplist_entries(number=number, account=account, after=after, limit=limit),
                       gw.store.consent_entries(number=number, account=account, after=consents_after, limit=limit)],
                      consumeErrors=True)
    d.addErrback(lambda f: f.value.subFailure)
    d.addCallback(lambda got: (200, {
        "entries": [entry(e) for e in got[0]],
        "next_cursor": cursor(got[0][-1]) if len(got[0]) == limit else None,
        "consents": [consent(c) for c in got[1]],
        "consents_next_cursor": cursor(got[1][-1]) if len(got[1]) == limit else None}))
    return d


# -- endpoints --------------------------------------------------------------------------------------
def messages(gw, request):
    """``GET /v1/admin/messages?account=&status=&to=&operator=&since=&until=&cursor=&limit=``."""
    params = query(request)
    known(params, {"account", "status", "to", "operator", "since", "until", "cursor", "limit"})
    to = params.get("to")
    q = MessageQuery(account=_name(params, "account"), status=status_param(params),
                     to=msisdn_param(to, "to") if to is not None else None, operator=_name(params, "operator"),
                     since=time_filter(params, "since"), until=time_filter(params, "until"))
    before, limit = id_cursor(params), page_limit(params)
    d = gw.store.find_messages(q, before, limit)
    d.addCallback(lambda ms: (200, {"messages": [_message(m) for m in ms], "next_cursor": next_cursor(ms, limit)}))
    return d


def message(gw, request, message_id: str):
    """``GET /v1/admin/messages/{id}``: any account's message with its whole history."""
    known(query(request), set())
    d = gw.store.get(message_id)

    def found(m):
        if m is None:
            raise ApiError(404, "not_found", "No such message.")
        return 200, _message(m, events=True)

    return d.addCallback(found)


def mo_message(gw, request, mo_id: str):
    """``GET /v1/admin/inbound/{id}``: any MO with its history, where ops see what became of it:
    its push (pushed, failed, abandoned) and its reply (queued, or not sent and why)."""
    known(query(request), set())
    d = gw.store.get_mo(mo_id)

    def found(mo):
        if mo is None:
            raise ApiError(404, "not_found", "No such MO.")
        return 200, {**_mo(mo), "events": [{"at": rfc3339(e.at), "status": e.status, "detail": e.detail}
                                           for e in mo.events]}

    return d.addCallback(found)


def number(gw, request, raw: str):
    """``GET /v1/admin/numbers/{number}?cursor=&mo_cursor=&limit=``: the number's MT (any account)
    and MO, newest first, each paged by its own cursor; what SmartConfirm learned about it; its
    stop-list entries, do-not-call entry and consents."""
    params = query(request)
    known(params, {"cursor", "mo_cursor", "limit"})
    msisdn = msisdn_param(unquote(raw), "number")
    before, mo_before, limit = id_cursor(params), id_cursor(params, "mo_cursor"), page_limit(params)
    d = gatherResults([gw.store.find_messages(MessageQuery(to=msisdn), before, limit),
                       gw.store.find_mo(MoQuery(sender=msisdn), mo_before, limit),
                       gw.store.number_facts(msisdn)], consumeErrors=True)
    d.addErrback(lambda f: f.value.subFailure)
    d.addCallback(lambda got: (200, {**_number_body(msisdn, *got, limit, gw.clock.seconds()),
                                     "choice": _choice(gw, msisdn, got[2])}))
    return d


def _choice(gw, msisdn: str, facts) -> list[dict]:
    """Per profile, where a message to the number would go now and why (``Routing.explain``): a
    look-up's kept answer, the number's own history, its block, or price; with ``lookup``, that
    answer (the operators that reach it, when it came) when one is kept."""
    from policies.learning import failed_lately
    from smscore.model import Message

    now = gw.clock.seconds()
    learned = facts.learned
    looked = gw.pipeline.number_lookup.kept(msisdn) if gw.pipeline.number_lookup is not None else None
    out = []
    for profile in sorted(gw.pipeline.routing.profiles):
        probe = Message(id="", account="", to=msisdn, sender="", text="", encoding="gsm7", parts=1,
                        profile=profile, created_at=now, updated_at=now,
                        preferred=learned.operator if learned else None,
                        recent_failures=failed_lately(learned, now) if learned else (),
                        block=tuple(facts.block), reach=looked[0] if looked else None)
        options = gw.pipeline.routing.options(probe, gw.pipeline.links)
        out.append({"profile": profile, **gw.pipeline.routing.explain(probe, options, now),
                    "lookup": None if looked is None else {"reach": sorted(looked[0]), "at": rfc3339(looked[1])}})
    return out


def _number_body(msisdn: str, mts, mos, facts, limit: int, now: float) -> dict:
    from policies.learning import DECAY

    learned = facts.learned
    dnc = [e for e in facts.stop if e.account == DO_NOT_CALL]
    return {
        "number": msisdn,
        "messages": [_message(m) for m in mts], "next_cursor": next_cursor(mts, limit),
        "mo": [_mo(mo) for mo in mos], "mo_next_cursor": next_cursor(mos, limit),
        "learned": None if learned is None else {
            "operator": learned.operator,
            "failures": [{"operator": op, "at": rfc3339(at), "counts": now - at < DECAY}
                         for op, at in sorted(learned.failures.items(), key=lambda kv: -kv[1])]},
        "stop_list": [stop_entry(e) for e in facts.stop if e.account != DO_NOT_CALL],
        "do_not_call": stop_entry(dnc[0]) if dnc else None,
        "consents": [{"account": account, "added_at": rfc3339(at)} for account, at in facts.consents],
        "block": _block(msisdn, facts.block, now),
    }


def _block(msisdn: str, rows, now: float) -> dict:
    """What the numbers around it taught (SPEC §7, policies.blocks), for "why this operator": the
    prefix the order comes from (None: not enough evidence, price decides), each operator's chance
    to deliver there, and the aged counts at every prefix, longest first."""
    from policies import blocks

    evidence = blocks.index(rows)
    basis = blocks.basis(evidence, msisdn, now)
    aged = sorted((t.aged(now) for t in rows), key=lambda t: (-len(t.prefix), t.operator))
    return {
        "basis": basis,
        "chances": ({} if basis is None else
                    {op: round(p, 4) for op, p in blocks.delivery_chances(
                        evidence, basis, sorted({t.operator for t in rows if t.prefix == basis}), now).items()}),
        "evidence": [{"prefix": t.prefix, "operator": t.operator, "delivered": round(t.delivered, 3),
                      "failed": round(t.failed, 3)} for t in aged],
    }


def accounts(gw, request):
    """``GET /v1/admin/accounts``: every configured account, by name (a config's worth: one page)."""
    known(query(request), set())
    d = gw.store.account_states(day_of(gw.clock.seconds()))
    d.addCallback(lambda states: (200, {"accounts": [_account(gw.config, name, states.get(name))
                                                      for name in sorted(gw.config.accounts)]}))
    return d


def account(gw, request, name: str):
    """``GET /v1/admin/accounts/{name}``: 404 for an account the config does not have."""
    known(query(request), set())
    if name not in gw.config.accounts:
        raise ApiError(404, "not_found", f"There is no account {name!r}.")
    d = gw.store.account_states(day_of(gw.clock.seconds()))
    d.addCallback(lambda states: (200, _account(gw.config, name, states.get(name))))
    return d


def _account(config, name: str, state) -> dict:
    """An account as its config and the store tell it. ``sent_today`` is the UTC day's count the
    daily volume limit uses, kept only for accounts that have a limit (else null)."""
    from decimal import Decimal

    a = config.accounts[name]
    limited = a.daily_volume_limit is not None
    return {"account": name, "balance": state.balance if state else Decimal(0),
            "paused": state.paused if state else False, "billing": a.billing, "profile": a.profile,
            "tps": a.tps or None, "daily_volume_limit": a.daily_volume_limit,
            "sent_today": (state.sent_today if state else 0) if limited else None,
            "senders": list(a.senders), "default_sender": a.default_sender}


def approvals(gw, request):
    """``GET /v1/admin/approvals?account=&cursor=&limit=``: messages in ``pending_approval``, newest
    first, each with why it is held and since when."""
    params = query(request)
    known(params, {"account", "cursor", "limit"})
    q = MessageQuery(account=_name(params, "account"), status=Status.PENDING_APPROVAL.value)
    before, limit = id_cursor(params), page_limit(params)
    d = gw.store.find_messages(q, before, limit, events=True)
    d.addCallback(lambda ms: (200, {"messages": [_held(m) for m in ms], "next_cursor": next_cursor(ms, limit)}))
    return d


def inbound(gw, request):
    """``GET /v1/admin/inbound?account=&keyword=&from=&cursor=&limit=``: MO of every account (and
    those routed to none: stop words, unknown keywords), newest first."""
    params = query(request)
    known(params, {"account", "keyword", "from", "cursor", "limit"})
    sender = params.get("from")
    q = MoQuery(account=_name(params, "account"), keyword=_name(params, "keyword"),
                sender=msisdn_param(sender, "from") if sender is not None else None)
    before, limit = id_cursor(params), page_limit(params)
    d = gw.store.find_mo(q, before, limit)
    d.addCallback(lambda mos: (200, {"messages": [_mo(mo) for mo in mos], "next_cursor": next_cursor(mos, limit)}))
    return d


def stoplist(gw, request):
    """``GET /v1/admin/stoplist?number=&account=&cursor=&consents_cursor=&limit=``: stop-list
    entries by account then number (``account=*``: the do-not-call list), and every account's
    consents likewise, each paged by its own cursor, ``account:number`` of its last."""
    params = query(request)
    known(params, {"number", "account", "cursor", "consents_cursor", "limit"})
    account = params.get("account")
    if account is not None and account != DO_NOT_CALL:
        account = _name(params, "account")
    msisdn = params.get("number")
    msisdn = msisdn_param(msisdn, "number") if msisdn is not None else None
    after, consents_after = _stop_cursor(params, "cursor"), _stop_cursor(params, "consents_cursor")
    return both_lists(gw, number=msisdn, account=account, after=after, consents_after=consents_after,
                      limit=page_limit(params), entry=stop_entry, consent=consent_entry,
                      cursor=lambda e: f"{e.account}:{e.number}")


def _stop_cursor(params: dict[str, str], field: str) -> tuple[str, str] | None:
    """``account:number`` of the last entry of the page before (None when absent), else 400."""
    if not params.get(field):
        return None
    match = _STOP_CURSOR.match(params[field])
    if match is None:
        raise ApiError(400, "invalid_request",
                       f"{field} must be a value from {field.replace('cursor', 'next_cursor')}.", field)
    return match.groups()



# -- routes -----------------------------------------------------------------------------------------
_MESSAGE = re.compile(r"^/v1/admin/messages/([0-9a-f]{1,64})$")
_NUMBER = re.compile(r"^/v1/admin/numbers/([^/]{1,64})$")
_ACCOUNT = re.compile(r"^/v1/admin/accounts/([A-Za-z0-9_-]{1,64})$")
_MO = re.compile(r"^/v1/admin/inbound/([0-9a-f]{1,64})$")
_LISTS = {"/v1/admin/messages": messages, "/v1/admin/accounts": accounts, "/v1/admin/approvals": approvals,
          "/v1/admin/inbound": inbound, "/v1/admin/stoplist": stoplist}
_ONES = ((_MESSAGE, message), (_NUMBER, number), (_ACCOUNT, account), (_MO, mo_message))


def route(gw, request, path: str):
    """The answer of the ``GET`` look-up at ``path`` (the admin key already checked), or None when
    ``path`` is not one (the router goes on)."""
    handler = _LISTS.get(path)
    if handler is not None:
        return handler(gw, request)
    for pattern, handler in _ONES:
        match = pattern.match(path)
        if match:
            return handler(gw, request, match.group(1))
    return None
