"""The component schemas of the OpenAPI document (``SCHEMAS``, ``#/components/schemas/``).

Why a module of its own: these are the shapes of every request body, answer and push, named once
and referred to by ``$ref`` from the operations (``paths``) and the pushes (``webhooks``); the
limits and vocabularies in them are read from the modules that enforce them.
"""

from __future__ import annotations

from policies.callbacks import ALL, FINAL
from smscore.api.openapi._common import (
    _ADDRESS,
    _ERROR,
    _ID,
    _MONEY,
    _MSISDN_PATTERN,
    _NUMBER,
    _STATUS,
    _TIME,
    _array,
    _nullable,
    _obj,
    _ref,
    _string,
)
from smscore.submission import ENCODINGS, MAX_RECIPIENTS, MAX_REFERENCE, SEND_AHEAD_YEARS

# -- schemas ----------------------------------------------------------------------------------------

_EVENT = _obj({
    "at": _TIME,
    "status": _STATUS,
    "operator": _nullable(_string("The operator of this attempt; null before any was tried.")),
    "detail": _string("What happened, e.g. the receipt's `stat=DELIVRD err=000 id=…`, a submit's SMSC ids "
                      "(and, in the admin look-ups only, the attempt's cost), why a message is held."),
    "final": {"type": "boolean", "description": "False for a failed attempt that goes on through another "
                                                "operator (SPEC §5)."},
}, description="One change in a message's history (SPEC §5).")

_SUMMARY_FIELDS = {
    "id": _ID,
    "to": _string("International digits; a reply to an MO goes to the MO's sender as the operator gave it."),
    "from": _string("The sender: alphanumeric, numeric or a shortcode."),
    "text": {"type": "string"},
    "status": _STATUS,
    "parts": {"type": "integer", "minimum": 1},
    "profile": {"type": "string"},
    "reference": _nullable(_string(maxLength=MAX_REFERENCE)),
    "operator": _nullable(_string("The operator of the last attempt.")),
    "cost": {**_MONEY, "description": "To a customer key, what the message costs its account (prepaid: what it "
                                      "was charged; postpaid: its price for its parts; 0 when never sent or a "
                                      "reply). In the admin look-ups, the operators' cost of every attempt, summed."},
    "error": _nullable(_string("Why it failed, for failed and final statuses.")),
    "created_at": _TIME,
    "updated_at": _TIME,
    "send_at": _nullable({**_TIME, "description": "When a scheduled message is due."}),
}
_HISTORY = {"events": _array(_ref("Event"), description="The full history, oldest first.")}
_ACCOUNT_FIELD = {"account": _nullable(_string("The account the message belongs to; null for a reply to an MO "
                                                "routed to no account."))}

_MO_FIELDS = {
    "id": _ID,
    "from": _string("The phone that sent it."),
    "to": _string("The shortcode (or number) it was sent to."),
    "keyword": _string("The keyword it matched, as the config spells it."),
    "text": _string("The whole SMS."),
    "payload": _string("What follows the keyword."),
    "received_at": _TIME,
}

#: an MO as the admin look-ups show it (GET /v1/admin/inbound and its one MO)
_ADMIN_MO_FIELDS = {**_MO_FIELDS,
                    "account": _nullable(_string("null for MO routed to no account.")),
                    "outcome": _string("What routing did: keyword, stop, unknown_keyword, over_cap, no_shortcode."),
                    "operator": _string("The operator it came through."),
                    "note": _string("What is odd about it, e.g. parts missing.")}

_STOP_ENTRY = _obj({
    "number": {"type": "string"},
    "account": _nullable(_string("The account whose stop list it is; null on the do-not-call list.")),
    "list": {"type": "string", "enum": ["stop", "do_not_call"]},
    "added_at": _nullable(_TIME),
    "source": _string("`ops`, `import`, or the stop word that put it there."),
})

_BIND_SESSION = _obj({
    "session": {"type": "string"}, "bound": {"type": "boolean"}, "transmits": {"type": "boolean"},
    "in_flight": {"type": "integer", "minimum": 0}, "reconnect_failures": {"type": "integer", "minimum": 0},
    "since": _nullable({**_TIME, "description": "When the session last became bound or unbound; null: never "
                                                "bound since the gateway started."}),
    "last_error": _nullable(_obj({
        "at": _TIME,
        "reason": _string("`connect failed: …`, `bind refused: …`, `bind not sent: …` or "
                          "`connection lost: …`."),
    }, description="The last thing that went wrong with the session; null: nothing yet (stopping is no error).")),
})

_OWN_STOP_ENTRY = _obj({
    "number": {"type": "string"},
    "list": {"const": "stop"},
    "added_at": _nullable(_TIME),
    "source": _string("`ops`, `import`, or the stop word that put it there."),
}, description="An entry of your account's stop list.")

SCHEMAS = {
    "Error": _ERROR,
    "SendRequest": _obj({
        "to": {"oneOf": [_NUMBER, _array(_NUMBER, minItems=1, maxItems=MAX_RECIPIENTS)],
               "description": f"One number, or a list of 1 to {MAX_RECIPIENTS}: one message each."},
        "text": _string("The text; never truncated: over `max_parts` parts is 422 `text_too_long`.", minLength=1),
        "from": _nullable(_string("A sender of the account's `senders`: alphanumeric (1-11 letters and digits) or "
                                  "numeric (1-15 digits, + allowed). Default: the account's default sender.",
                                  pattern=r"^(\+?[0-9]{1,15}|[A-Za-z0-9]{1,11})$")),
        "profile": _nullable(_string("An operator profile of the config (default: the account's).")),
        "max_parts": _nullable({"type": "integer", "minimum": 1,
                                "description": "At most this many SMS parts (capped by the account's)."}),
        "encoding": {"type": ["string", "null"], "enum": [*ENCODINGS, None], "default": "auto",
                     "description": "auto: GSM 03.38 when every character fits, else UCS-2."},
        "send_at": _nullable(_string(f"When to send (an RFC 3339 date-time with an offset); in the past means "
                                     f"now; at most {SEND_AHEAD_YEARS} years ahead (the same day and time "
                                     f"of the calendar, UTC).",
                                     format="date-time")),
        "callback_url": _nullable(_string("Where this message's status callbacks go (http or https, a host of the "
                                          "account's callback_hosts).", format="uri", maxLength=2048)),
        "callback_statuses": _nullable({
            "description": "Which status events are pushed for these messages (SPEC §12); replaces the "
                           "account's setting.",
            "oneOf": [{"type": "string", "enum": [ALL, FINAL]}, _array(_STATUS)]}),
        "reference": _nullable(_string("Yours, echoed in answers and callbacks.", maxLength=MAX_REFERENCE)),
    }, required=["to", "text"]),
    "Accepted": _obj({"messages": _array(_obj({
        "id": _ID, "to": _NUMBER, "status": _STATUS, "parts": {"type": "integer", "minimum": 1}}))}),
    "Event": _EVENT,
    "MessageSummary": _obj(_SUMMARY_FIELDS, description="A message without its history."),
    "Message": _obj({**_SUMMARY_FIELDS, **_HISTORY}, description="A message with its full history."),
    "MessagePage": _obj({"messages": _array(_ref("MessageSummary")),
                         "next_cursor": _string("Give it back as `cursor`; the cursor you sent when nothing "
                                                "changed since: poll with it forever.", pattern="^[0-9]+$")}),
    "Inbound": _obj(_MO_FIELDS, description="An MO for one of the account's keywords."),
    "InboundPage": _obj({"messages": _array(_ref("Inbound")), "next_cursor": _string(pattern="^[0-9]+$")}),
    "Account": _obj({
        "account": {"type": "string"}, "balance": _MONEY,
        "billing": {"type": "string", "enum": ["prepaid", "postpaid"]}, "paused": {"type": "boolean"},
        "senders": _array({"type": "string"}), "default_sender": _nullable({"type": "string"}),
        "profile": {"type": "string"}, "max_parts": {"type": "integer", "minimum": 1},
        "tps": _nullable({"type": "integer", "description": "API requests per second; null: no limit."}),
        "daily_volume_limit": _nullable({"type": "integer"}),
        "approved_domains": _array({"type": "string"}), "callback_url": _nullable({"type": "string"}),
    }),
    "AdminMessage": _obj({**_SUMMARY_FIELDS, **_ACCOUNT_FIELD}),
    "AdminMessageWithHistory": _obj({**_SUMMARY_FIELDS, **_HISTORY, **_ACCOUNT_FIELD}),
    "AdminMessagePage": _obj({"messages": _array(_ref("AdminMessage")),
                              "next_cursor": _nullable(_string("The last id of a full page; null after the last "
                                                               "page.", pattern="^[0-9a-f]+$"))}),
    "HeldMessage": _obj({**_SUMMARY_FIELDS, **_ACCOUNT_FIELD,
                         "held_at": _nullable(_TIME), "held_because": _nullable({"type": "string"})}),
    "HeldPage": _obj({"messages": _array(_ref("HeldMessage")),
                      "next_cursor": _nullable(_string(pattern="^[0-9a-f]+$"))}),
    "AdminInbound": _obj(_ADMIN_MO_FIELDS),
    "AdminInboundWithHistory": _obj({
        **_ADMIN_MO_FIELDS,
        "events": _array(_obj({"at": _TIME, "status": _string("received, routed, charged, push queued, pushed, "
                                                             "push failed, push abandoned, reply queued, "
                                                             "reply not sent, ..."),
                               "detail": {"type": "string"}}), description="The MO's history, oldest first.")}),
    "AdminInboundPage": _obj({"messages": _array(_ref("AdminInbound")),
                              "next_cursor": _nullable(_string(pattern="^[0-9a-f]+$"))}),
    "AdminAccount": _obj({
        "account": {"type": "string"}, "balance": _MONEY, "paused": {"type": "boolean"},
        "billing": {"type": "string", "enum": ["prepaid", "postpaid"]}, "profile": {"type": "string"},
        "tps": _nullable({"type": "integer"}), "daily_volume_limit": _nullable({"type": "integer"}),
        "sent_today": _nullable({"type": "integer", "description": "Kept only for accounts with a daily limit."}),
        "senders": _array({"type": "string"}), "default_sender": _nullable({"type": "string"}),
    }),
    "AdminAccounts": _obj({"accounts": _array(_ref("AdminAccount"))}),
    "Number": _obj({
        "number": {"type": "string"},
        "messages": _array(_ref("AdminMessage")), "next_cursor": _nullable({"type": "string"}),
        "mo": _array(_ref("AdminInbound")), "mo_next_cursor": _nullable({"type": "string"}),
        "learned": _nullable(_obj({"operator": _nullable({"type": "string"}), "failures": _array(_obj({
            "operator": {"type": "string"}, "at": _TIME,
            "counts": {"type": "boolean", "description": "False once older than 30 days."}}))})),
        "stop_list": _array(_ref("StopEntry")),
        "do_not_call": _nullable(_ref("StopEntry")),
        "consents": _array(_obj({"account": {"type": "string"}, "added_at": _nullable(_TIME)})),
        "block": _obj({
            "basis": _nullable(_string("The prefix whose evidence orders the operators; null: price decides.")),
            "chances": {"type": "object", "additionalProperties": {"type": "number"},
                        "description": "Each operator's chance to deliver at the basis prefix."},
            "evidence": _array(_obj({"prefix": {"type": "string"}, "operator": {"type": "string"},
                                     "delivered": {"type": "number"}, "failed": {"type": "number"}})),
        }),
        "choice": _array(_obj({
            "profile": {"type": "string"},
            "order": _array({"type": "string"}, description="The operators a message of this profile would be "
                            "tried through now, first first."),
            "because": {"type": "string", "enum": ["lookup", "number", "block", "price"],
                        "description": "What put the first there: a look-up's kept answer, the number's own "
                                       "history, its number block's evidence, or price."},
            "prefix": _nullable(_string("The block's prefix when its evidence orders the operators.")),
            "lookup": _nullable(_obj({"reach": _array({"type": "string"}), "at": _TIME},
                                     description="The look-up answer this node keeps for the number.")),
        }), description="Why this operator (SPEC §7), per profile."),
    }),
    "StopEntry": _STOP_ENTRY,
    # the customers' own look-ups (SPEC §14): their account's data only
    "OwnMessagePage": _obj({"messages": _array(_ref("MessageSummary")),
                            "next_cursor": _nullable(_string("The last id of a full page; null after the last "
                                                             "page.", pattern="^[0-9a-f]+$"))}),
    "OwnNumber": _obj({
        "number": {"type": "string"},
        "messages": _array(_ref("MessageSummary"), description="Your messages to the number, newest first."),
        "next_cursor": _nullable(_string(pattern="^[0-9a-f]+$")),
        "mo": _array(_ref("Inbound"), description="MO from the number for your keywords, newest first."),
        "mo_next_cursor": _nullable(_string(pattern="^[0-9a-f]+$")),
        "stop_list": _array(_ref("OwnStopEntry"), description="The number on your stop list (at most one entry)."),
        "consent": _nullable(_obj({"added_at": _nullable(_TIME)},
                                  description="Your consent to send to the number despite the do-not-call list "
                                              "or your stop list.")),
    }, description="What your account has to do with one number."),
    "OwnStopEntry": _OWN_STOP_ENTRY,
    "OwnConsent": _obj({"number": {"type": "string"}, "added_at": _nullable(_TIME)},
                       description="A consent of your account: it may send to the number although the number is "
                                   "on the do-not-call list or your stop list. Not a stop entry: it allows what the "
                                   "lists stop; a stop entry added later withdraws it."),
    "OwnStopPage": _obj({"entries": _array(_ref("OwnStopEntry"), description="Your stop list, by number."),
                         "next_cursor": _nullable(_string("The number of the last entry of a full page.",
                                                          pattern="^[0-9A-Za-z+]{1,64}$")),
                         "consents": _array(_ref("OwnConsent"), description="Your consents, by number."),
                         "consents_next_cursor": _nullable(_string(
                             "The number of the last consent of a full page (give it as `consents_cursor`).",
                             pattern="^[0-9A-Za-z+]{1,64}$"))}),
    "Consent": _obj({"number": {"type": "string"}, "account": {"type": "string"}, "added_at": _nullable(_TIME)},
                    description="An account's consent: it may send to the number although the number is on the "
                                "do-not-call list or the account's stop list (a stop entry added later withdraws it)."),
    "StopPage": _obj({"entries": _array(_ref("StopEntry"), description="Stop-list and do-not-call entries."),
                      "next_cursor": _nullable(_string("`account:number` of the last entry of a full page.")),
                      "consents": _array(_ref("Consent"), description="The accounts' consents, by account then "
                                                                      "number."),
                      "consents_next_cursor": _nullable(_string(
                          "`account:number` of the last consent of a full page (give it as `consents_cursor`)."))}),
    "StopListChange": _obj({
        "numbers": _array(_string(pattern=_MSISDN_PATTERN), minItems=1),
        "account": _nullable(_string("This account's stop list (or consents); absent or null: the do-not-call "
                                     "list of every account.")),
        "remove": {"type": ["boolean", "null"], "default": False, "description": "Remove instead of add."},
        "consent": {"type": ["boolean", "null"], "default": False,
                    "description": "The account's consents (numbers it may send to despite the do-not-call list)."},
    }, required=["numbers"], closed=False),
    "Topup": _obj({"amount": {
        "description": "Added to the balance; negative corrects it; -1,000,000 to 1,000,000 per call. A decimal "
                       "string keeps every digit.",
        "oneOf": [{"type": "number", "minimum": -1_000_000, "maximum": 1_000_000},
                  _string("A decimal, e.g. \"12.50\", \"-3\" or \"+100\" (anything else is 400).",
                          pattern=r"^[+-]?[0-9]+(\.[0-9]+)?$")]}},
        closed=False),
    "Balance": _obj({"balance": _MONEY}),
    "StopListChanged": _obj({"changed": {"type": "integer", "minimum": 0}, "numbers": {"type": "integer", "minimum": 1}}),
    "Paused": _obj({"account": {"type": "string"}, "paused": {"type": "boolean"},
                    "messages": {"type": "integer", "minimum": 0, "description": "Messages paused or resumed."}}),
    "Bind": _obj({
        "operator": {"type": "string"}, "up": {"type": "boolean"}, "host": {"type": "string"},
        "port": {"type": "integer"}, "tls": {"type": "boolean"}, "bind": {"type": "string"},
        "window": {"type": "integer"},
        "binds": {"type": "integer", "minimum": 0, "description":
                  "Sessions this node holds of the operator's binds: its share in a cluster (0 while it "
                  "joins, or when other nodes hold them all)."},
        "tps": _nullable({"type": "number", "description": "This node's part of the operator's tps; null: no limit."}),
        "throttled_for": {"type": "number", "description": "Seconds the operator's throttling still slows it."},
        "paced_at": _nullable({"type": "number", "minimum": 0, "description":
                               "Submits a second the link holds itself to since the SMSC throttled it "
                               "(below its tps; it grows back); null when nothing but the tps paces it."}),
        "queued_parts": {"type": "integer", "minimum": 0, "description":
                         "Parts the link holds for its sessions' windows."},
        "queued_messages": {"type": "integer", "minimum": 0, "description":
                            "Messages this node holds for the operator that no session has taken yet: "
                            "while it is throttled, paced or down, its backlog waits here."},
        "in_flight": {"type": "integer", "minimum": 0, "description": "Submits awaiting their answer, all sessions."},
        "submits_per_second": {"type": "number", "minimum": 0,
                               "description": "submit_sm sent over the last 10 seconds, per second."},
        "sessions": _array(_BIND_SESSION),
    }),
    "Reload": {"oneOf": [
        _obj({"reloaded": {"const": True}, "reconnected": _array({"type": "string"}),
              "added": _array({"type": "string"}), "removed": _array({"type": "string"}),
              "needs_restart": _array(_string("A setting that changed and needs a restart.")),
              "file": _string("The file the gateway read: the one it was started with.")}),
        _obj({"reloaded": {"const": False},
              "errors": _array(_string("One problem of the file, starting with its key path.")),
              "file": _string("The file the gateway read: the one it was started with.")}),
    ]},
    "InjectMo": _obj({"from": _string("The phone's number.", pattern=_ADDRESS),
                      "to": _string("The shortcode (or number).", pattern=_ADDRESS),
                      "text": _string(minLength=1)}, closed=False),
    "Readiness": _obj({
        "ready": {"type": "boolean"},
        "problems": _array(_string("e.g. `store unreachable`, `profile standard: no bound operator`.")),
        "shedding": {"const": "backlog", "description": "Present while new messages are refused (SPEC §15)."},
    }, required=["ready", "problems"]),
    # pushes (webhooks)
    "StatusEvent": _obj({
        "event_id": _string("Unique per event, digits, increasing along a message's history: drop repeats by it.",
                            pattern="^[0-9]+$"),
        "id": _ID, "reference": _nullable({"type": "string"}), "to": {"type": "string"}, "status": _STATUS,
        "operator": _nullable({"type": "string"}), "error": _nullable({"type": "string"}), "at": _TIME,
        "final": {"type": "boolean"},
    }, description="One status change of a message (SPEC §4, §12)."),
    "StatusBatch": _obj({"events": _array(_ref("StatusEvent"), minItems=1)},
                        description="Several status events in one POST (`callback_batch` above 1)."),
    "MoPush": _obj(_MO_FIELDS, description="An MO for a keyword with a `url`."),
    "MoReply": _obj({"reply": _string("The reply SMS to the phone, from the shortcode.")}, closed=False),
    "BalanceNotice": _obj({
        "type": {"const": "balance"}, "account": {"type": "string"}, "balance": _MONEY,
        "threshold": {**_MONEY, "description": "The level crossed: a multiple of 1000, or 500, or 100."},
        "at": _TIME,
    }),
}
