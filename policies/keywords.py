"""MO keyword routing (SPEC §6, §11): what to do with one MO on a shortcode, as a pure decision.

Theory of operation. The core hands `KeywordRouter.route()` the facts of one MO — the number it
was sent to, its text, who sent it and what that phone spent on premium keywords this calendar
month — and gets back a `Route` that says everything the core must do: which accounts are
concerned, whether to push or pull the MO to the account's backend, the SMS to send back (and
whether it is a free one), and what to count against the phone's monthly cap. The router stores
nothing, sends nothing and reads no clock.

The rules, in the order they are applied:

1. `to` is not a configured shortcode → "no_shortcode" (the core logs and stores it; no reply).
2. The first word of the text — words are separated by any whitespace (`str.isspace`, the same
   whitespace the config's "one word" check uses), leading whitespace is ignored — is compared
   case-insensitively (`str.casefold`) with the shortcode's stop words and keywords/aliases; a
   word that matches none of them as typed is compared again without the punctuation typed
   right after it (`.,;:!?`: "PIZZA, two", "STOP."), and the payload is still what follows it.
   The payload is what follows the first word, leading whitespace removed, the rest kept
   exactly (inner spaces, newlines, trailing whitespace). Empty or whitespace-only text →
   "unknown_keyword".
3. A stop word → "stop". If the second word is a keyword or alias of this shortcode, only that
   keyword's account is concerned; otherwise (nothing, or an unknown word) every account with a
   keyword on the shortcode, sorted, and one `stop_reply` with `{account}` = their names joined
   by ", ". A shortcode with no keyword at all has nobody to stop: accounts () and no reply.
4. A keyword or alias → "keyword", unless its `price` > 0 and the shortcode has a
   `monthly_cap_per_phone` and `spent_this_month + price` exceeds it (equal is allowed): then
   "over_cap" with the shortcode's `cap_reply`, not forwarded, nothing charged.
5. A catch-all: a keyword (or alias) written "*" — the config accepts it, being one word —
   matches any first word on its shortcode that is neither a stop word nor another keyword; its
   payload is then the whole text (leading whitespace removed), as the first word was not a
   keyword. This is how a shortcode dedicated to one account takes every MO. Typed literally,
   "*" is an ordinary keyword match. Empty text is still "unknown_keyword". A stop's second word
   is matched against real keywords only: "STOP HELLO" on a shortcode with a catch-all stops
   every account there.
6. Anything else → "unknown_keyword" with the shortcode's `unknown_keyword_reply` (may be None).

Replies are `str.format`-style templates, as the config validates them (`{{` is a literal brace):
`{text}` the MO text as received, `{payload}`, `{from}` the sender, `{keyword}` the canonical
keyword (for an unknown keyword or a stop without one: the first word as typed), and `{account}`
in `stop_reply`. Filling never raises: an unknown placeholder is left as written, a format spec
that does not apply inserts the plain value, and a template that does not parse is sent as is.
Values are inserted, never re-read as templates.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

__all__ = ["CATCH_ALL", "Keyword", "KeywordRouter", "Route", "RouteKind", "Shortcode",
           "fill_template"]

#: A keyword (or alias) written so matches any first word on its shortcode (rule 5).
CATCH_ALL = "*"

RouteKind = Literal["keyword", "unknown_keyword", "stop", "over_cap", "no_shortcode"]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Shortcode:
    """A number MOs arrive on (`[[shortcodes]]`); defaults as in the config."""

    number: str
    unknown_keyword_reply: str | None = None
    stop_words: tuple[str, ...] = ("STOP",)
    stop_reply: str = "You will get no more messages from {account}."
    monthly_cap_per_phone: Decimal | None = None
    cap_reply: str = "Monthly limit reached."


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword and its aliases on a shortcode, rented by an account (`[[keywords]]`).
    `unavailable_reply` is carried for the core (sent when a push fails); routing ignores it."""

    shortcode: str
    keyword: str
    account: str
    aliases: tuple[str, ...] = ()
    url: str | None = None
    price: Decimal = _ZERO
    unavailable_reply: str | None = None
    reply: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """The decision for one MO; see the module docstring for each kind.

    `accounts`: the accounts concerned (the keyword's; for a bare stop every account on the
    shortcode, sorted). `reply`: the filled SMS to send to the phone, or None. `reply_free`: True
    for the free replies (unknown keyword, stop confirmation, cap refusal), False otherwise.
    `charge`: the premium price to add to the phone's monthly spend (only for an accepted
    "keyword"). `forward`: push/pull the MO to the account's backend. `url`: the push target, set
    only when `forward` is (None = pull only)."""

    kind: RouteKind
    shortcode: str | None
    keyword: Keyword | None
    keyword_name: str
    payload: str
    accounts: tuple[str, ...]
    reply: str | None
    reply_free: bool
    charge: Decimal
    forward: bool
    url: str | None


@dataclass(frozen=True, slots=True)
class _Table:
    """One shortcode, precomputed for routing."""

    shortcode: Shortcode
    words: Mapping[str, Keyword]  # casefolded keyword/alias -> Keyword
    stop_words: frozenset[str]  # casefolded
    accounts: tuple[str, ...]  # every account with a keyword here, sorted


class KeywordRouter:
    """Routes MOs by first word, per shortcode. Built once from the configuration (rebuild on
    reload); refuses what the config refuses: a shortcode twice, a keyword on an unknown
    shortcode, the same word (casefolded) twice on a shortcode, a keyword that is a stop word."""

    def __init__(self, shortcodes: Iterable[Shortcode], keywords: Iterable[Keyword]) -> None:
        codes: dict[str, Shortcode] = {}
        for shortcode in shortcodes:
            if shortcode.number in codes:
                raise ValueError(f"shortcode {shortcode.number} is configured twice")
            codes[shortcode.number] = shortcode
        words: dict[str, dict[str, Keyword]] = {number: {} for number in codes}
        stops = {number: frozenset(w.casefold() for w in s.stop_words)
                 for number, s in codes.items()}
        for keyword in keywords:
            if keyword.shortcode not in codes:
                raise ValueError(f"keyword {keyword.keyword!r}: unknown shortcode "
                                 f"{keyword.shortcode}")
            table = words[keyword.shortcode]
            for word in (keyword.keyword, *keyword.aliases):
                folded = word.casefold()
                if folded in stops[keyword.shortcode]:
                    raise ValueError(f"{word!r} is a stop word of shortcode {keyword.shortcode}")
                if folded in table:
                    raise ValueError(f"{word!r} is already used on shortcode {keyword.shortcode} "
                                     f"by keyword {table[folded].keyword!r}")
                table[folded] = keyword
        self._tables = {
            number: _Table(
                shortcode=shortcode,
                words=words[number],
                stop_words=stops[number],
                accounts=tuple(sorted({k.account for k in words[number].values()})),
            )
            for number, shortcode in codes.items()
        }

    def route(self, to: str, text: str, *, sender: str = "",
              spent_this_month: Decimal = _ZERO) -> Route:
        """The decision for an MO of `text` from `sender` to `to`."""
        parts = text.split(None, 1)
        first = parts[0] if parts else ""
        payload = parts[1] if len(parts) > 1 else ""
        table = self._tables.get(to)
        if table is None:
            return _route("no_shortcode", None, payload=payload)
        shortcode = table.shortcode
        values = {"text": text, "payload": payload, "from": sender, "keyword": first}
        folded = _as_known(first.casefold(), table)

        if first and folded in table.stop_words:
            second = payload.split(None, 1)
            target = table.words.get(_as_known(second[0].casefold(), table)) if second else None
            if target is not None:
                accounts: tuple[str, ...] = (target.account,)
                values["keyword"] = target.keyword
            else:
                accounts = table.accounts
            reply = None
            if accounts:
                reply = fill_template(shortcode.stop_reply,
                                      {**values, "account": ", ".join(accounts)})
            return _route("stop", shortcode.number, keyword=target, payload=payload,
                          accounts=accounts, reply=reply, reply_free=True)

        keyword = table.words.get(folded) if first else None
        if keyword is None and first:
            keyword = table.words.get(CATCH_ALL)
            if keyword is not None:
                payload = values["payload"] = text.lstrip()
        if keyword is None:
            reply = _fill_optional(shortcode.unknown_keyword_reply, values)
            return _route("unknown_keyword", shortcode.number, payload=payload, reply=reply,
                          reply_free=True)

        values["keyword"] = keyword.keyword
        accounts = (keyword.account,)
        cap = shortcode.monthly_cap_per_phone
        if keyword.price > 0 and cap is not None and spent_this_month + keyword.price > cap:
            return _route("over_cap", shortcode.number, keyword=keyword, payload=payload,
                          accounts=accounts, reply=fill_template(shortcode.cap_reply, values),
                          reply_free=True)
        return _route("keyword", shortcode.number, keyword=keyword, payload=payload,
                      accounts=accounts, reply=_fill_optional(keyword.reply, values),
                      charge=keyword.price, forward=True, url=keyword.url)


#: what a phone's user may type right after a word ("PIZZA, two", "STOP.")
_TRAILING = ".,;:!?"


def _as_known(word: str, table: _Table) -> str:
    """``word`` (case-folded) as the shortcode knows it: as typed, else without the punctuation
    typed after it, when that is a stop word or a keyword; else as typed."""
    if word in table.stop_words or word in table.words:
        return word
    bare = word.rstrip(_TRAILING)
    return bare if bare and (bare in table.stop_words or bare in table.words) else word


def _route(kind: RouteKind, shortcode: str | None, *, keyword: Keyword | None = None,
           payload: str, accounts: tuple[str, ...] = (), reply: str | None = None,
           reply_free: bool = False, charge: Decimal = _ZERO, forward: bool = False,
           url: str | None = None) -> Route:
    return Route(kind=kind, shortcode=shortcode, keyword=keyword,
                 keyword_name=keyword.keyword if keyword is not None else "", payload=payload,
                 accounts=accounts, reply=reply, reply_free=reply_free, charge=charge,
                 forward=forward, url=url)


def _fill_optional(template: str | None, values: Mapping[str, str]) -> str | None:
    return None if template is None else fill_template(template, values)


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """`template` with each `{name}` in `values` replaced, `str.format`-style; never raises."""
    formatter = string.Formatter()
    try:
        pieces = list(formatter.parse(template))
    except ValueError:
        return template
    out = []
    for literal, name, spec, conversion in pieces:
        out.append(literal)
        if name is None:
            continue
        if name not in values:
            out.append("{" + name + ("!" + conversion if conversion else "")
                       + (":" + spec if spec else "") + "}")
            continue
        value = values[name]
        try:
            converted = formatter.convert_field(value, conversion) if conversion else value
            out.append(format(converted, spec or ""))
        except (ValueError, TypeError):
            out.append(value)
    return "".join(out)
