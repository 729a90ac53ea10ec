"""policies.keywords: the MO keyword routing decision (SPEC §6, §11)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.keywords import (
    Keyword,
    KeywordRouter,
    Route,
    Shortcode,
    fill_template,
)
from smscore.config import parse_config

SENDER = "46701234567"
UNKNOWN = "Unknown service. Check the spelling."
STOPPED = "You will get no more messages from {account}."
CAP = "Monthly limit reached."

PIZZA = Keyword("72550", "PIZZA", "acme", aliases=("PIZA",), url="https://acme.example/sms/mo",
                price=Decimal(10), unavailable_reply="Service not available.")
DEMO = Keyword("72550", "DEMO", "demo", reply="You said: {payload}")
CAFE = Keyword("72550", "Café", "bistro", aliases=("Straße",))  # pull only, free
SHOP_ALL = Keyword("72999", "*", "shop", url="https://shop.example/mo")  # catch-all
SHOP_ORDER = Keyword("72999", "ORDER", "shop", url="https://shop.example/mo", price=Decimal(5))
INFO = Keyword("72000", "INFO", "shop", reply="Open 9-17.")

SHORTCODES = [
    # shared by three accounts, capped at 20 per phone and month
    Shortcode("72550", unknown_keyword_reply=UNKNOWN, stop_words=("STOP", "STOPP"),
              stop_reply=STOPPED, monthly_cap_per_phone=Decimal(20), cap_reply=CAP),
    # dedicated to "shop" with a catch-all, no cap
    Shortcode("72999", unknown_keyword_reply="Empty message."),
    # dedicated to "shop", keywords only
    Shortcode("72000"),
    # no keyword at all
    Shortcode("71000"),
]


@pytest.fixture(scope="module")
def router() -> KeywordRouter:
    return KeywordRouter(SHORTCODES, [PIZZA, DEMO, CAFE, SHOP_ALL, SHOP_ORDER, INFO])


def routed(kind, shortcode, *, keyword=None, payload="", accounts=(), reply=None,
           reply_free=False, charge=Decimal(0), forward=False, url=None) -> Route:
    return Route(kind=kind, shortcode=shortcode, keyword=keyword,
                 keyword_name=keyword.keyword if keyword else "", payload=payload,
                 accounts=accounts, reply=reply, reply_free=reply_free, charge=charge,
                 forward=forward, url=url)


def pizza(payload: str) -> Route:
    return routed("keyword", "72550", keyword=PIZZA, payload=payload, accounts=("acme",),
                  charge=Decimal(10), forward=True, url="https://acme.example/sms/mo")


def cafe(payload: str) -> Route:
    return routed("keyword", "72550", keyword=CAFE, payload=payload, accounts=("bistro",),
                  forward=True)


def unknown(payload: str, shortcode="72550", reply=UNKNOWN) -> Route:
    return routed("unknown_keyword", shortcode, payload=payload, reply=reply, reply_free=True)


def stop(payload: str, accounts, keyword=None, shortcode="72550",
         reply: str | None = "default") -> Route:
    if reply == "default":
        reply = f"You will get no more messages from {', '.join(accounts)}."
    return routed("stop", shortcode, keyword=keyword, payload=payload, accounts=accounts,
                  reply=reply, reply_free=True)


def shop(keyword: Keyword, payload: str, charge=Decimal(0)) -> Route:
    return routed("keyword", "72999", keyword=keyword, payload=payload, accounts=("shop",),
                  charge=charge, forward=True, url="https://shop.example/mo")


ALL_72550 = ("acme", "bistro", "demo")  # sorted, not in config order

CASES = [
    # first word, case-insensitive, keyword and aliases
    ("72550", "PIZZA margherita", pizza("margherita")),
    ("72550", "pizza margherita", pizza("margherita")),
    ("72550", "PiZzA margherita", pizza("margherita")),
    ("72550", "PIZA margherita", pizza("margherita")),
    ("72550", "piza margherita", pizza("margherita")),
    ("72550", "PIZZA", pizza("")),
    ("72550", "café au lait", cafe("au lait")),
    ("72550", "CAFÉ au lait", cafe("au lait")),
    ("72550", "STRASSE 5", cafe("5")),  # casefold, not lower: "Straße" == "STRASSE"
    ("72550", "straße 5", cafe("5")),
    # payload exactness: leading whitespace stripped, the rest kept as sent
    ("72550", "  \t PIZZA  two  spaces \n", pizza("two  spaces \n")),
    ("72550", "PIZZA   ", pizza("")),
    ("72550", "PIZZA\nline 2\n\nline 4", pizza("line 2\n\nline 4")),
    ("72550", "PIZZA\r\nx", pizza("x")),
    ("72550", "PIZZA\u00a0nbsp", pizza("nbsp")),  # any whitespace separates words
    ("72550", "PIZZA\u3000全角 スペース", pizza("全角 スペース")),
    ("72550", "Pizza Å ä ö 😀 ✓ {from}", pizza("Å ä ö 😀 ✓ {from}")),
    ("72550", "PIZZA\u200bzero-width", unknown("")),  # zero-width space joins: one word
    # static reply: free text back, no backend
    ("72550", "demo hello  world", routed(
        "keyword", "72550", keyword=DEMO, payload="hello  world", accounts=("demo",),
        reply="You said: hello  world", forward=True)),
    # punctuation typed right after a word: matched without it ("PIZZA," was an unknown keyword)
    ("72550", "PIZZA, two", pizza("two")),
    ("72550", "pizza!", pizza("")),
    ("72550", "PIZZA.x", unknown("")),  # inside a word: still one word
    # unknown keyword: prefix, later word, empty
    ("72550", "PIZZAS now", unknown("now")),
    ("72550", "PIZZAS, now", unknown("now")),
    ("72550", "I want PIZZA", unknown("want PIZZA")),
    ("72550", "", unknown("")),
    ("72550", " \t\n ", unknown("")),
    ("72550", "*", unknown("")),  # no catch-all on 72550: "*" is just a word
    # stop: bare, any case, with a keyword or an alias, with an unknown word
    ("72550", "STOP", stop("", ALL_72550)),
    ("72550", "stop", stop("", ALL_72550)),
    ("72550", "Stopp", stop("", ALL_72550)),
    ("72550", "  STOP \n", stop("", ALL_72550)),
    ("72550", "STOP PIZZA", stop("PIZZA", ("acme",), PIZZA)),
    ("72550", "stop piza please", stop("piza please", ("acme",), PIZZA)),
    ("72550", "STOP\ndemo", stop("demo", ("demo",), DEMO)),
    ("72550", "STOPP straße", stop("straße", ("bistro",), CAFE)),
    ("72550", "STOP HELLO", stop("HELLO", ALL_72550)),
    ("72550", "STOP STOP", stop("STOP", ALL_72550)),
    ("72550", "STOP INFO", stop("INFO", ALL_72550)),  # INFO is a keyword of another shortcode
    ("72550", "STOP.", stop("", ALL_72550)),
    ("72550", "stop pizza!", stop("pizza!", ("acme",), PIZZA)),
    # dedicated shortcode with a catch-all: every first word goes to "shop"
    ("72999", "hello there", shop(SHOP_ALL, "hello there")),
    ("72999", "  Hello\n there ", shop(SHOP_ALL, "Hello\n there ")),
    ("72999", "PIZZA 1", shop(SHOP_ALL, "PIZZA 1")),  # a keyword of another shortcode
    ("72999", "order 3", shop(SHOP_ORDER, "3", charge=Decimal(5))),  # real keywords first
    ("72999", "* x", shop(SHOP_ALL, "x")),  # "*" typed: an ordinary keyword match
    ("72999", "", unknown("", "72999", "Empty message.")),
    ("72999", "   ", unknown("", "72999", "Empty message.")),
    ("72999", "STOP", stop("", ("shop",), shortcode="72999")),
    ("72999", "STOP hello", stop("hello", ("shop",), shortcode="72999")),
    ("72999", "stop ORDER", stop("ORDER", ("shop",), SHOP_ORDER, shortcode="72999")),
    ("72999", "STOPP", shop(SHOP_ALL, "STOPP")),  # not a stop word of 72999 (default: STOP)
    # dedicated shortcode, keywords only
    ("72000", "info", routed("keyword", "72000", keyword=INFO, accounts=("shop",),
                             reply="Open 9-17.", forward=True)),
    ("72000", "hello", unknown("", "72000", None)),
    ("72000", "PIZZA x", unknown("x", "72000", None)),
    ("72000", "STOP", stop("", ("shop",), shortcode="72000")),
    # a shortcode without keywords: nobody to stop, nothing to say
    ("71000", "STOP", stop("", (), shortcode="71000", reply=None)),
    ("71000", "hello", unknown("", "71000", None)),
    # not a configured shortcode: matched exactly, no normalisation
    ("99999", "PIZZA x", routed("no_shortcode", None, payload="x")),
    ("+72550", "PIZZA x", routed("no_shortcode", None, payload="x")),
    ("", "STOP", routed("no_shortcode", None)),
]


@pytest.mark.parametrize("to, text, expected", CASES)
def test_route(router, to, text, expected):
    assert router.route(to, text, sender=SENDER) == expected


@pytest.mark.parametrize(
    "spent, expected_kind, expected_charge",
    [
        (Decimal(0), "keyword", Decimal(10)),
        (Decimal("9.99"), "keyword", Decimal(10)),
        (Decimal(10), "keyword", Decimal(10)),  # 10 + 10 == 20: equal to the cap is allowed
        (Decimal("10.00"), "keyword", Decimal(10)),
        (Decimal("10.01"), "over_cap", Decimal(0)),
        (Decimal(20), "over_cap", Decimal(0)),
        (Decimal(1000), "over_cap", Decimal(0)),
    ],
)
def test_cap_boundary(router, spent, expected_kind, expected_charge):
    route = router.route("72550", "pizza hawaii", sender=SENDER, spent_this_month=spent)
    assert route.kind == expected_kind
    assert route.charge == expected_charge
    assert route.forward is (expected_kind == "keyword")


def test_over_cap_is_refused_free_and_not_forwarded(router):
    route = router.route("72550", "PIZA hawaii", sender=SENDER, spent_this_month=Decimal(11))
    assert route == routed("over_cap", "72550", keyword=PIZZA, payload="hawaii",
                           accounts=("acme",), reply=CAP, reply_free=True)
    assert route.keyword_name == "PIZZA"


def test_free_keyword_ignores_the_cap(router):
    route = router.route("72550", "cafe", spent_this_month=Decimal(10**6))
    assert route == unknown("")  # "cafe" is not "café"
    route = router.route("72550", "CAFÉ", spent_this_month=Decimal(10**6))
    assert route == cafe("")


def test_no_cap_on_the_shortcode(router):
    route = router.route("72999", "ORDER 1", spent_this_month=Decimal(10**9))
    assert route == shop(SHOP_ORDER, "1", charge=Decimal(5))


def test_cap_arithmetic_is_decimal():
    # 0.2 + 0.1 > 0.3 in floats; in decimals it is equal, hence allowed
    router = KeywordRouter(
        [Shortcode("72550", monthly_cap_per_phone=Decimal("0.3"))],
        [Keyword("72550", "TIP", "acme", price=Decimal("0.1"))],
    )
    assert router.route("72550", "TIP", spent_this_month=Decimal("0.2")).charge == Decimal("0.1")
    assert router.route("72550", "TIP", spent_this_month=Decimal("0.21")).kind == "over_cap"


def test_zero_cap_refuses_every_premium_keyword():
    router = KeywordRouter(
        [Shortcode("72550", monthly_cap_per_phone=Decimal(0), cap_reply="No premium.")],
        [Keyword("72550", "TIP", "acme", price=Decimal("0.01")), Keyword("72550", "FREE", "acme")],
    )
    assert router.route("72550", "tip").reply == "No premium."
    assert router.route("72550", "tip").kind == "over_cap"
    assert router.route("72550", "free").kind == "keyword"
    assert router.route("72550", "free").charge == Decimal(0)


# -- templates


def echo_router(reply: str) -> KeywordRouter:
    return KeywordRouter([Shortcode("72550")], [Keyword("72550", "ECHO", "acme", reply=reply)])


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{text}", "  echo Hello  {World}\n"),  # as received, leading whitespace too
        ("{payload}", "Hello  {World}\n"),  # braces from the phone are not re-read
        ("{from}", SENDER),
        ("{keyword}", "ECHO"),  # the canonical keyword, not as typed
        ("{keyword} from {from}: {payload}", "ECHO from 46701234567: Hello  {World}\n"),
        ("Thanks!", "Thanks!"),
        ("{{literal}} {from}", "{literal} 46701234567"),
        ("{from!r}", "'46701234567'"),
        ("[{from:>13}]", "[  46701234567]"),
        ("{from:d}", SENDER),  # a spec that does not apply to text: the plain value
        ("{account}", "{account}"),  # unknown here: left as written
        ("{nope!r:>3} {}", "{nope!r:>3} {}"),
        ("unbalanced {", "unbalanced {"),  # does not parse: sent as is
        ("unbalanced }", "unbalanced }"),
    ],
)
def test_keyword_reply_template(template, expected):
    route = echo_router(template).route("72550", "  echo Hello  {World}\n", sender=SENDER)
    assert route.reply == expected
    assert route.reply_free is False


def test_unknown_reply_template_uses_the_word_as_typed():
    router = KeywordRouter(
        [Shortcode("72550",
                   unknown_keyword_reply="No {keyword} here ({text}) for {from}/{payload}")],
        [Keyword("72550", "PIZZA", "acme")],
    )
    route = router.route("72550", "pizzaz now", sender=SENDER)
    assert route.reply == "No pizzaz here (pizzaz now) for 46701234567/now"
    assert route.keyword_name == ""


@pytest.mark.parametrize(
    "text, expected",
    [
        ("stop", "46701234567: acme, demo stopped (stop; )"),
        ("STOP piza now", "46701234567: acme stopped (PIZZA; piza now)"),
        ("STOP hello", "46701234567: acme, demo stopped (STOP; hello)"),
    ],
)
def test_stop_reply_template(text, expected):
    router = KeywordRouter(
        [Shortcode("72550", stop_reply="{from}: {account} stopped ({keyword}; {payload})")],
        [Keyword("72550", "PIZZA", "acme", aliases=("PIZA",)),
         Keyword("72550", "DEMO", "demo"), Keyword("72550", "DEMO2", "demo")],
    )
    assert router.route("72550", text, sender=SENDER).reply == expected


def test_cap_reply_template():
    router = KeywordRouter(
        [Shortcode("72550", monthly_cap_per_phone=Decimal(5),
                   cap_reply="{keyword}: limit, {from}")],
        [Keyword("72550", "VOTE", "acme", aliases=("V",), price=Decimal(6))],
    )
    assert router.route("72550", "v 1", sender=SENDER).reply == "VOTE: limit, 46701234567"


def test_fill_template_directly():
    assert fill_template("{a}-{b}-{c}", {"a": "1", "b": "{c}"}) == "1-{c}-{c}"
    assert fill_template("", {"a": "1"}) == ""


@given(st.text(), st.dictionaries(st.sampled_from(["text", "payload", "from", "keyword"]),
                                  st.text()))
def test_fill_template_never_raises(template, values):
    assert isinstance(fill_template(template, values), str)


# -- construction


@pytest.mark.parametrize(
    "keywords, message",
    [
        ([Keyword("72550", "PIZZA", "acme"), Keyword("72550", "pizza", "demo")],
         "'pizza' is already used on shortcode 72550 by keyword 'PIZZA'"),
        ([Keyword("72550", "PIZZA", "acme"), Keyword("72550", "DEMO", "demo", aliases=("Pizza",))],
         "'Pizza' is already used on shortcode 72550 by keyword 'PIZZA'"),
        ([Keyword("72550", "PIZZA", "acme", aliases=("piza", "PIZA"))],
         "'PIZA' is already used on shortcode 72550 by keyword 'PIZZA'"),
        ([Keyword("72550", "PIZZA", "acme", aliases=("pizza",))],
         "'pizza' is already used on shortcode 72550 by keyword 'PIZZA'"),
        ([Keyword("72550", "stop", "acme")], "'stop' is a stop word of shortcode 72550"),
        ([Keyword("72550", "X", "acme", aliases=("Stopp",))],
         "'Stopp' is a stop word of shortcode 72550"),
        ([Keyword("72551", "PIZZA", "acme")], "keyword 'PIZZA': unknown shortcode 72551"),
    ],
)
def test_router_refuses(keywords, message):
    with pytest.raises(ValueError) as info:
        KeywordRouter([Shortcode("72550", stop_words=("STOP", "STOPP"))], keywords)
    assert str(info.value) == message


def test_router_refuses_a_shortcode_twice():
    with pytest.raises(ValueError) as info:
        KeywordRouter([Shortcode("72550"), Shortcode("72550")], [])
    assert str(info.value) == "shortcode 72550 is configured twice"


def test_same_word_on_two_shortcodes():
    router = KeywordRouter([Shortcode("72550"), Shortcode("72551")],
                           [Keyword("72550", "PIZZA", "acme"), Keyword("72551", "pizza", "demo")])
    assert router.route("72550", "PIZZA").accounts == ("acme",)
    assert router.route("72551", "PIZZA").accounts == ("demo",)
    assert router.route("72551", "PIZZA").keyword_name == "pizza"


def test_iterables_are_consumed_once():
    router = KeywordRouter((s for s in SHORTCODES[:1]), (k for k in [PIZZA, DEMO]))
    assert router.route("72550", "STOP").accounts == ("acme", "demo")


def test_decisions_are_frozen(router):
    route = router.route("72550", "PIZZA")
    with pytest.raises(dataclasses.FrozenInstanceError):
        route.kind = "stop"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PIZZA.price = Decimal(0)  # type: ignore[misc]


def test_built_from_the_config(tmp_path: Path):
    """The config accepts "*" (a keyword is any one word), and maps field by field."""
    config = parse_config("""
[operators.sim]
type = "simulated"
[profiles.standard]
operators = ["sim"]
[accounts.acme]
api_keys = ["k1"]
secret = "s"
[accounts.demo]
api_keys = ["k2"]
[[shortcodes]]
number = "72550"
unknown_keyword_reply = "Unknown service."
stop_words = ["STOP", "STOPP"]
monthly_cap_per_phone = 20
[[shortcodes]]
number = "72999"
[[keywords]]
shortcode = "72550"
keyword = "PIZZA"
aliases = ["PIZA"]
account = "acme"
url = "https://acme.example/sms/mo"
price = 10
[[keywords]]
shortcode = "72550"
keyword = "DEMO"
account = "demo"
reply = "You said: {payload}"
[[keywords]]
shortcode = "72999"
keyword = "*"
account = "demo"
""", path=tmp_path / "gateway.toml")
    router = KeywordRouter(
        [Shortcode(**{f.name: getattr(s, f.name) for f in dataclasses.fields(Shortcode)})
         for s in config.shortcodes.values()],
        [Keyword(**{f.name: getattr(k, f.name) for f in dataclasses.fields(Keyword)})
         for k in config.keywords],
    )
    assert router.route("72550", "piza 1", spent_this_month=Decimal(10)).charge == Decimal(10)
    assert router.route("72550", "piza 1", spent_this_month=Decimal(11)).reply == CAP
    assert router.route("72550", "Demo hi", sender=SENDER).reply == "You said: hi"
    assert router.route("72550", "STOP").reply == STOPPED.format(account="acme, demo")
    assert router.route("72999", "anything at all").accounts == ("demo",)
    assert router.route("72999", "anything at all").payload == "anything at all"


# -- properties

WHITESPACE = st.sampled_from([" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\x1c"])


@given(
    to=st.sampled_from(["72550", "72999", "72000", "71000", "99999"]) | st.text(max_size=6),
    text=st.text(),
    sender=st.text(max_size=20),
    spent=st.decimals(allow_nan=False, allow_infinity=False),
)
def test_route_never_raises(router, to, text, sender, spent):
    route = router.route(to, text, sender=sender, spent_this_month=spent)
    assert route.kind in ("keyword", "unknown_keyword", "stop", "over_cap", "no_shortcode")
    assert route.forward is (route.kind == "keyword")
    assert route.reply_free is (route.kind in ("unknown_keyword", "stop", "over_cap"))
    assert route.charge == (route.keyword.price if route.kind == "keyword" else Decimal(0))
    assert text.endswith(route.payload)
    assert route.payload == route.payload.lstrip()
    if route.kind == "no_shortcode":
        assert (route.shortcode, route.accounts, route.reply) == (None, (), None)
    else:
        assert route.shortcode == to


@given(
    case=st.lists(st.booleans(), min_size=5, max_size=5),
    before=st.lists(WHITESPACE, max_size=3).map("".join),
    between=st.lists(WHITESPACE, min_size=1, max_size=3).map("".join),
    payload=st.text().map(str.lstrip),
)
def test_keyword_any_case_payload_exact(router, case, before, between, payload):
    word = "".join(c.upper() if up else c.lower() for c, up in zip("pizza", case))
    route = router.route("72550", before + word + between + payload, sender=SENDER)
    assert route == pizza(payload)


@given(word=st.from_regex(r"\S{1,40}", fullmatch=True), payload=st.text().map(str.lstrip))
def test_any_config_word_routes_as_itself(word, payload):
    if word.casefold() == "stop":
        word = word + "x"
    router = KeywordRouter([Shortcode("72550")], [Keyword("72550", word, "acme")])
    route = router.route("72550", f"{word} {payload}")
    assert (route.kind, route.keyword_name, route.payload) == ("keyword", word, payload)
