"""The web console (SPEC §14) in headless Chromium, through a real `smsgw run`.

A person's path through it: sign in with the admin key; find a message by number; open its
timeline and see each attempt (a failover number: sim_a, then sim_b); see the number's timeline;
approve a held message; pause and resume an account; top one up; add to the stop list; see binds and
MO. Then a customer's key: only its own account, whatever the page asks for. Every page is saved as
a PNG (tests/e2e/browser.SHOTS), at 1280x800 and some on a phone's 390x844, and every page is
checked for unlabelled controls and JavaScript errors.
"""

from __future__ import annotations

import pytest

from tests.e2e.browser import DESKTOP, PHONE, Browser
from tests.e2e.conftest import DEMO_CONFIG
from tests.harness.net import free_port, http
from tests.harness.processes import GatewayProcess
from tests.harness.waiting import wait_until

CONFIG = DEMO_CONFIG + """
[accounts.shop]
api_keys = ["shop-key"]
senders = ["SHOP"]
billing = "prepaid"
balance = 100
prices = {{ "default" = 0.5 }}
daily_volume_limit = 2
[accounts.other]
api_keys = ["other-key"]
senders = ["OTHER"]
[[keywords]]
shortcode = "72550"
keyword = "NEWS"
account = "other"
"""

ADMIN = "ops-key"
FAILOVER = "46709990001"   # sim_a cannot reach 4670999…: delivered by sim_b on the second attempt
SHARED = "46701234567"     # demo and other both send here


def start(folder, config=CONFIG):
    http_port = free_port()
    (folder / "gw.toml").write_text(config.format(http=http_port, metrics=free_port()))
    return GatewayProcess(folder / "gw.toml", http_port, folder / "gw.log").start()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = start(tmp_path_factory.mktemp("console"))
    yield gw
    gw.stop()


@pytest.fixture
def own_gateway(tmp_path):
    """A gateway of its own, for a test whose data would crowd the shared one's first pages."""
    gw = start(tmp_path)
    yield gw
    gw.stop()


def send(gw, key, to, text):
    status, body = http("POST", gw.url + "/v1/messages", {"to": to, "text": text}, key=key)
    assert status == 202, body
    return body["messages"][0]["id"]


def admin_get(gw, path):
    status, body = http("GET", gw.url + path, key=ADMIN)
    assert status == 200, body
    return body


@pytest.fixture(scope="module")
def seeded(gateway):
    """Messages of three accounts: demo's delivered and failed-over ones, shop's third message held
    for approval (daily limit 2), other's to the number demo sends to too; and one MO for demo."""
    ids = {"plain": send(gateway, "demo-key", SHARED, "Hello from demo"),
           "failover": send(gateway, "demo-key", FAILOVER, "Ported number test"),
           "other": send(gateway, "other-key", SHARED, "Other's private text")}
    shop = [send(gateway, "shop-key", "4670555000" + str(i), f"Shop offer {i}") for i in range(3)]
    ids["held"] = shop[2]
    status, body = http("POST", gateway.url + "/v1/admin/operators/sim_a/mo",
                        {"from": SHARED, "to": "72550", "text": "DEMO hello console"}, key=ADMIN)
    assert status == 202, body
    wait_until(lambda: admin_get(gateway, f"/v1/admin/messages/{ids['failover']}")["status"] == "delivered",
             30, what="the failover message delivered through sim_b")
    assert admin_get(gateway, f"/v1/admin/messages/{ids['held']}")["status"] == "pending_approval"
    return ids


@pytest.fixture
def admin(gateway, seeded):
    b = Browser(gateway.url)
    b.sign_in(ADMIN)
    yield b
    assert b.errors() == []
    b.close()


def checked(b, name):
    """Save the page as ``name``.png; it must have no unlabelled control."""
    assert b.unlabelled() == [], name
    return b.shot(name)


def test_an_operator_finds_a_message_by_number_and_sees_each_attempt(gateway, seeded, admin):
    b = admin
    b.wait_text("Ported number test")  # the log, newest first, every account
    assert "Other's private text" in b.text() and "Shop offer 2" in b.text()
    checked(b, "messages")
    b.one("#f-number").send_keys(FAILOVER)
    b.button("Filter").click()
    b.wait(lambda: "Hello from demo" not in b.text(), what="the filter applied")
    assert "Ported number test" in b.text()
    b.one(f'a[href="#/message/{seeded["failover"]}"]').click()
    b.wait_text("Attempts")
    page = b.text()
    assert "2: sim_a → sim_b" in page, page
    assert "delivered" in page and "0.30" in page  # both attempts cost: 0.10 + 0.20
    checked(b, "message-timeline")
    b.one(f'a[href="#/number/{FAILOVER}"]').click()
    b.wait_text("Learned operator")
    assert "sim_b" in b.one("dl.facts").text  # learned: sim_b delivers this number
    assert "standard: sim_b → sim_a (its own history)" in b.text()  # why the next one goes there
    checked(b, "number")


def test_the_log_is_live(gateway, seeded, admin):
    b = admin
    b.wait_text("Ported number test")
    send(gateway, "demo-key", "46701111222", "Arrived while watching")
    b.wait_text("Arrived while watching", timeout=20)  # no reload: the page polls


def test_an_operator_approves_a_held_message(gateway, seeded, admin):
    b = admin
    b.go("#/approvals")
    b.wait_text("Shop offer 2")
    checked(b, "approvals")
    b.button(f"Approve {seeded['held']}").click()
    b.wait_text(f"Approved {seeded['held']}")
    b.wait(lambda: "Shop offer 2" not in b.text(), what="the approved message leaves the queue")
    assert admin_get(gateway, f"/v1/admin/messages/{seeded['held']}")["status"] != "pending_approval"


def test_the_approvals_page_says_why_messages_wait_and_what_refuse_does(gateway, seeded, admin):
    held = send(gateway, "other-key", "46705550100", "Sale today at https://shop.example/sale")  # no approved domain
    assert admin_get(gateway, f"/v1/admin/messages/{held}")["status"] == "pending_approval"
    b = admin
    b.go("#/approvals")
    b.wait_text("Sale today")
    assert "link to shop.example is outside the approved domains" in b.text()
    intro = b.one("main h1 + p").text
    assert "approved_domains" in intro and "daily volume limit" in intro, intro  # both reasons to wait
    b.button(f"Refuse {held}").click()
    b.wait_text(f"Refused {held}")
    refused = admin_get(gateway, f"/v1/admin/messages/{held}")["status"]
    assert refused == "stopped" and f"as {refused}" in intro and "rejected" not in intro, intro


def test_an_operator_pauses_resumes_and_tops_up_an_account(gateway, seeded, admin):
    b = admin
    b.go("#/accounts")
    b.button("Pause demo").click()
    b.wait_text("Paused demo")
    b.button("Resume demo")  # the row now offers to resume
    assert admin_get(gateway, "/v1/admin/accounts/demo")["paused"] is True
    checked(b, "accounts")
    b.button("Resume demo").click()
    b.wait_text("Resumed demo")
    b.button("Pause demo")
    assert admin_get(gateway, "/v1/admin/accounts/demo")["paused"] is False
    before = admin_get(gateway, "/v1/admin/accounts/shop")["balance"]
    b.one('input[aria-label="Top-up amount for shop"]').send_keys("25")
    b.button("Top up").click()
    b.wait_text("Topped up shop by 25")
    assert admin_get(gateway, "/v1/admin/accounts/shop")["balance"] == pytest.approx(before + 25)


def balance_cell(b, account):
    row = b.wait(lambda: next((tr for tr in b.css("main tbody tr")
                               if tr.find_element("css selector", 'td[data-label="Account"]').text == account), None),
                 what=f"the row of {account}")
    return row.find_element("css selector", 'td[data-label="Balance"]').text


def test_a_balance_shows_every_decimal_the_api_holds(gateway, seeded, admin):
    from decimal import Decimal

    b = admin
    b.go("#/accounts")
    before = Decimal(str(admin_get(gateway, "/v1/admin/accounts/shop")["balance"]))
    b.one('input[aria-label="Top-up amount for shop"]').send_keys("0.00001")
    b.button("Top up").click()
    b.wait_text("Topped up shop by 0.00001")
    after = Decimal(str(admin_get(gateway, "/v1/admin/accounts/shop")["balance"]))
    assert after == before + Decimal("0.00001")
    b.wait(lambda: Decimal(balance_cell(b, "shop")) == after, what=f"the balance {after} shown")
    assert str(after) in b.text()  # the notice's "now …" too
    customer = Browser(gateway.url)
    try:
        customer.sign_in("shop-key")
        customer.go("#/accounts")
        customer.wait(lambda: Decimal(customer.one("dl.facts dd").text) == after, what=f"the balance {after}")
    finally:
        customer.close()


def test_a_top_up_says_what_it_did_a_negative_one_corrects_and_0_is_not_sent(gateway, seeded, admin):
    from decimal import Decimal

    def balance():
        return Decimal(str(admin_get(gateway, "/v1/admin/accounts/shop")["balance"]))

    b = admin
    b.go("#/accounts")
    before = balance()
    b.one('input[aria-label="Top-up amount for shop"]').send_keys("-5")
    b.button("Top up").click()
    b.wait_text("Balance of shop lowered by 5")
    assert "Topped up" not in b.one("#notice").text
    assert balance() == before - 5
    field = b.one('input[aria-label="Top-up amount for shop"]')
    field.clear()
    field.send_keys("0")
    b.button("Top up").click()
    b.wait_text("Balance of shop not changed: the amount is 0")
    assert balance() == before - 5


def test_binds_stop_list_and_mo(gateway, seeded, admin):
    b = admin
    b.go("#/binds")
    b.wait(lambda: b.text().count("up") >= 2 and "sim_b" in b.text(), what="both operators")
    checked(b, "binds")
    b.go("#/stoplist")
    b.one("#f-numbers").send_keys("46700000099")
    b.one("#f-account").send_keys("demo")
    b.button("Apply").click()
    b.wait_text("46700000099")
    assert any(e["number"] == "46700000099" and e["account"] == "demo"
               for e in admin_get(gateway, "/v1/admin/stoplist?number=46700000099")["entries"])
    checked(b, "stoplist")
    b.go("#/inbound")
    b.wait_text("DEMO hello console")
    checked(b, "mo")


def table_text(b, caption: str) -> str:
    """The text of the table whose caption starts with ``caption`` ("" when there is none)."""
    return next((t.text for t in b.css("table") if t.find_element("css selector", "caption").text.startswith(caption)),
                "")


def test_the_stop_list_shows_consents_apart_from_its_entries(gateway, seeded, admin):
    from selenium.webdriver.support.ui import Select

    b = admin
    b.go("#/stoplist")
    b.one("#f-numbers").send_keys("46700000077")
    b.one("#f-account").send_keys("demo")
    Select(b.one("#f-change")).select_by_visible_text("record consent (account)")
    b.button("Apply").click()
    b.wait_text("Stop list: consent 46700000077")
    b.wait(lambda: "46700000077" in table_text(b, "1 consent"), what="the consent listed")
    assert "demo" in table_text(b, "1 consent")
    assert "46700000077" not in table_text(b, "Stop list")  # a consent is not a stop entry
    checked(b, "stoplist")
    status, _ = http("POST", gateway.url + "/v1/admin/stoplist",
                     {"numbers": ["46700000078"], "account": "other", "consent": True}, key=ADMIN)
    assert status == 200
    customer = Browser(gateway.url)
    try:
        customer.sign_in("demo-key")
        customer.go("#/stoplist")
        customer.wait_text("46700000077")
        assert "46700000078" not in customer.text()  # other's consent
        assert customer.unlabelled() == []
        customer.shot("customer-stoplist")
        assert customer.errors() == []
    finally:
        customer.close()


def test_an_invalid_number_keeps_the_form_to_try_again(gateway, seeded, admin):
    b = admin
    b.go("#/number/abc")
    b.wait_text("invalid_number")
    field = b.one("#f-number")
    assert field.get_attribute("value") == "abc"
    checked(b, "number-invalid")
    field.clear()
    field.send_keys(FAILOVER)
    b.button("Look up").click()
    b.wait_text("Learned operator")
    b.go("#/stoplist?number=abc")
    b.wait_text("invalid_number")
    field = b.one("#f-number")
    field.clear()
    field.send_keys("46700000099")
    b.button("Filter").click()
    b.wait(lambda: "invalid_number" not in b.text() and b.css("#f-numbers"), what="the filtered stop list")


def test_a_customer_sees_its_own_account_only(gateway, seeded):
    b = Browser(gateway.url)
    try:
        b.sign_in("demo-key")
        b.wait_text("Hello from demo")
        page = b.text()
        assert "account demo" in page
        assert "Other's private text" not in page and "Shop offer" not in page
        nav = b.one("#nav").text
        assert "Approvals" not in nav and "Binds" not in nav
        checked(b, "customer-messages")
        b.go(f"#/number/{SHARED}")
        b.wait_text("Stop list")
        page = b.text()
        assert "Hello from demo" in page and "DEMO hello console" in page
        assert "Other's private text" not in page and "Learned operator" not in page
        checked(b, "customer-number")
        b.go(f"#/message/{seeded['other']}")  # another account's id: as if it did not exist
        b.wait_text("No such message")
        b.go("#/binds")
        b.wait_text("This page does not exist for this key")
        b.go("#/accounts")
        b.wait_text("Balance")
        assert "shop" not in b.text()
        checked(b, "customer-account")
        assert b.errors() == []
    finally:
        b.close()


def test_a_wrong_key_is_refused_and_the_keyboard_signs_in(gateway, seeded):
    from selenium.webdriver.common.keys import Keys

    b = Browser(gateway.url)
    try:
        b.open()
        b.one("input[name=key]").send_keys("not-a-key", Keys.ENTER)
        b.wait_text("This key is not accepted")
        checked(b, "sign-in-refused")
        key = b.one("input[name=key]")
        key.clear()
        key.send_keys(ADMIN, Keys.ENTER)  # no mouse: type and press Enter
        b.wait_text("Ported number test")
    finally:
        b.close()


def test_the_messages_of_one_request_show_ids_that_differ(gateway, seeded):
    status, body = http("POST", gateway.url + "/v1/messages",
                        {"to": ["46702000001", "46702000002", "46702000003"], "text": "One request, three numbers"},
                        key="demo-key")
    assert status == 202, body
    ids = [m["id"] for m in body["messages"]]
    for size in (DESKTOP, PHONE):
        b = Browser(gateway.url, size=size)
        try:
            b.sign_in(ADMIN)
            b.wait_text("One request, three numbers")
            assert [b.one(f'a[href="#/message/{mid}"]').text for mid in ids] == ids, size  # each one whole
            assert b.cut_off() == [], size
        finally:
            b.close()


def test_on_a_phone(gateway, seeded):
    long_text = "A long offer " + "with many words that go on and on " * 8 + "Supercalifragilistic" * 4
    send(gateway, "demo-key", "46701111333", long_text)
    b = Browser(gateway.url, size=PHONE)
    try:
        b.sign_in(ADMIN)
        b.wait_text("Ported number test")
        b.wait_text("A long offer")
        assert not b.overflows()
        assert b.sideways_boxes() == []  # each row a card as wide as the screen
        assert b.cut_off() == []  # the long text ends in an ellipsis inside its card
        checked(b, "phone-messages")
        b.go(f"#/message/{seeded['failover']}")
        b.wait_text("sim_a → sim_b")
        assert not b.overflows()
        checked(b, "phone-message-timeline")
        assert b.errors() == []
    finally:
        b.close()


def test_the_message_log_offers_more_only_when_there_is_more(own_gateway):
    """The look-ups' next_cursor follows every full page, an exactly full last one too: 50
    messages (one full page) offer nothing more, 51 do."""
    def more_offered(b):
        return any(e.is_displayed() for e in b.css("button") if e.text == "Load more")

    status, _ = http("POST", own_gateway.url + "/v1/messages",
                     {"to": [f"467012{i:05d}" for i in range(50)], "text": "Bulk"}, key="demo-key")
    assert status == 202
    b = Browser(own_gateway.url)
    try:
        b.sign_in(ADMIN)
        b.go("#/messages")
        b.wait(lambda: len(b.css('td[data-label="Text"]')) == 50, what="a full page of 50")
        assert not more_offered(b)  # exactly 50: nothing more to load
        send(own_gateway, "demo-key", "46701299999", "The 51st")
        b.driver.refresh()
        b.wait(lambda: b.css('td[data-label="Text"]') and b.css('td[data-label="Text"]')[0].text == "The 51st",
               what="the 51st on top")
        assert more_offered(b), "Load more, for the 51st message"
        b.button("Load more").click()
        b.wait(lambda: len(b.css('td[data-label="Text"]')) == 51, what="all 51")
        assert not more_offered(b) and b.errors() == []
    finally:
        b.close()


def test_the_mo_page_offers_more_only_when_there_is_more(own_gateway):
    """A customer's /v1/inbound gives a cursor after every page, the last one too; the admin list
    one after every full page: 1, 50 (one full page) and 51 MO, for both keys."""
    def mo(i):
        status, body = http("POST", own_gateway.url + "/v1/admin/operators/sim_a/mo",
                            {"from": "46701234999", "to": "72550", "text": f"NEWS {i:02d}"}, key=ADMIN)
        assert status == 202, body

    def more_offered(b):
        return any(e.is_displayed() for e in b.css("button") if e.text == "Load more")

    def page(b, first, last):
        """The MO page again, until it shows ``first`` (the top row) and ``last`` (the bottom)."""
        b.driver.refresh()
        def shown():
            texts = [r.text for r in b.css('td[data-label="Text"]')]
            return texts and (texts[0], texts[-1]) == (first, last)

        b.wait(shown, what=f"MO {first} to {last}")

    mo(0)
    customer, admin = Browser(own_gateway.url), Browser(own_gateway.url)
    try:
        customer.sign_in("other-key")
        customer.go("#/inbound")
        admin.sign_in(ADMIN)
        admin.go("#/inbound")
        for b in (customer, admin):
            page(b, "NEWS 00", "NEWS 00")
            assert not more_offered(b)  # one MO: nothing more to load
        for i in range(1, 50):
            mo(i)
        page(customer, "NEWS 00", "NEWS 49")  # oldest first
        page(admin, "NEWS 49", "NEWS 00")  # newest first
        for b in (customer, admin):
            assert not more_offered(b)  # a full page of 50, and no 51st
        mo(50)
        for b, first, last, rest in ((customer, "NEWS 00", "NEWS 49", "NEWS 50"),
                                     (admin, "NEWS 50", "NEWS 01", "NEWS 00")):
            page(b, first, last)
            assert more_offered(b), "Load more, for the 51st MO"
            b.button("Load more").click()
            b.wait_text(rest)
            b.wait(lambda: not more_offered(b), what="Load more gone after the last MO")
            assert b.errors() == []
    finally:
        customer.close()
        admin.close()
