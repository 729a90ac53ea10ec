"""The customers' own look-ups (SPEC §14): what the web console shows a customer key — its
messages found by status, number and time, one number's timeline, its stop list and consents.

Why apart from ``lookups`` (the admin ones): the rule here is the account boundary, not the
filters. Every handler starts with ``customer_account`` (401 without a valid key) and puts the
key's own account into the store query itself, never as a filter the caller could leave out; what
the store gives back about a number that belongs to no account or to others (the learned
operator, block evidence, the do-not-call list, other accounts' stop entries and consents) is
dropped here, so a customer learns nothing of anyone else, not even that it exists. Reading the
parameters, paging and rendering are ``lookups``' own (one way to do each thing): newest first,
paged by the last id of a full page.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from twisted.internet.defer import gatherResults

from smscore.api.auth import customer_account
from smscore.api.inputs import id_cursor, known, page_limit, query
from smscore.api.lookups import (both_lists, consent_entry, msisdn_param, next_cursor, status_param, stop_entry,
                                 time_filter)
from smscore.api.render import render_for_customer
from smscore.errors import ApiError
from smscore.model import rfc3339
from smscore.store.lookups import MessageQuery, MoQuery

#: the stop list's cursor: the last number of a full page (the account is always the key's own)
_STOP_CURSOR = re.compile(r"^[0-9A-Za-z+]{1,64}$")


def search_messages(gw, request):
    """``GET /v1/messages/search?status=&to=&since=&until=&cursor=&limit=``: the account's
    messages newest first, as ``GET /v1/messages`` lists them (no history, no account)."""
    account = customer_account(gw.config, request)
    params = query(request)
    known(params, {"status", "to", "since", "until", "cursor", "limit"})
    to = params.get("to")
    q = MessageQuery(account=account.name, status=status_param(params),
                     to=msisdn_param(to, "to") if to is not None else None,
                     since=time_filter(params, "since"), until=time_filter(params, "until"))
    before, limit = id_cursor(params), page_limit(params)
    d = gw.store.find_messages(q, before, limit)
    d.addCallback(lambda ms: (200, {"messages": [render_for_customer(m, account, events=False) for m in ms],
                                    "next_cursor": next_cursor(ms, limit)}))
    return d


def number(gw, request, raw: str):
    """``GET /v1/numbers/{number}?cursor=&mo_cursor=&limit=``: the account's MT to the number and
    MO from it (each newest first, each paged by its own cursor), its own stop-list entry for it
    and its own consent."""
    from smscore.mo import mo_push_body

    account = customer_account(gw.config, request)
    params = query(request)
    known(params, {"cursor", "mo_cursor", "limit"})
    msisdn = msisdn_param(unquote(raw), "number")
    before, mo_before, limit = id_cursor(params), id_cursor(params, "mo_cursor"), page_limit(params)
    d = gatherResults([gw.store.find_messages(MessageQuery(account=account.name, to=msisdn), before, limit),
                       gw.store.find_mo(MoQuery(account=account.name, sender=msisdn), mo_before, limit),
                       gw.store.number_facts(msisdn)], consumeErrors=True)
    d.addErrback(lambda f: f.value.subFailure)

    def body(got):
        mts, mos, facts = got
        consents = [at for name, at in facts.consents if name == account.name]
        return 200, {
            "number": msisdn,
            "messages": [render_for_customer(m, account, events=False) for m in mts],
            "next_cursor": next_cursor(mts, limit),
            "mo": [mo_push_body(mo) for mo in mos], "mo_next_cursor": next_cursor(mos, limit),
            "stop_list": [stop_entry(e, with_account=False) for e in facts.stop if e.account == account.name],
            "consent": {"added_at": rfc3339(consents[0])} if consents else None,
        }

    return d.addCallback(body)


def stoplist(gw, request):
    """``GET /v1/stoplist?number=&cursor=&consents_cursor=&limit=``: the account's stop list by
    number, and its consents likewise, each paged by its own cursor: the last number of a full page."""
    account = customer_account(gw.config, request)
    params = query(request)
    known(params, {"number", "cursor", "consents_cursor", "limit"})
    msisdn = params.get("number")
    msisdn = msisdn_param(msisdn, "number") if msisdn is not None else None
    return both_lists(gw, number=msisdn, account=account.name, after=_after(params, "cursor", account),
                      consents_after=_after(params, "consents_cursor", account), limit=page_limit(params),
                      entry=lambda e: stop_entry(e, with_account=False),
                      consent=lambda c: consent_entry(c, with_account=False), cursor=lambda e: e.number)


def _after(params: dict[str, str], field: str, account) -> tuple[str, str] | None:
    """Where a page of the account's own list starts: after (account, the cursor's number)."""
    if not params.get(field):
        return None
    if not _STOP_CURSOR.match(params[field]):
        raise ApiError(400, "invalid_request",
                       f"{field} must be a value from {field.replace('cursor', 'next_cursor')}.", field)
    return account.name, params[field]


# -- routes -----------------------------------------------------------------------------------------
_NUMBER = re.compile(r"^/v1/numbers/([^/]{1,64})$")
_LISTS = {"/v1/messages/search": search_messages, "/v1/stoplist": stoplist}


def handler_for(path: str):
    """The ``GET`` handler ``(gw, request)`` of ``path`` when it is one of these look-ups, else None
    (the router answers 405 to other methods)."""
    handler = _LISTS.get(path)
    if handler is not None:
        return handler
    match = _NUMBER.match(path)
    if match:
        return lambda gw, request: number(gw, request, match.group(1))
    return None
