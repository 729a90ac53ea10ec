"""The console's Binds page (SPEC §14) in headless Chromium, through a real `smsgw run`: the Pace
column says why an operator goes no faster than it does (a back-off after the SMSC refused, the cap
a link holds itself to while the SMSC keeps throttling it, its tps, no bind on this node, or
nothing), with the figure the admin API shows. Fixtures and helpers: tests/e2e/test_console.py."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import Browser
from tests.e2e.conftest import SIM_CONFIG
from tests.e2e.test_console import ADMIN, admin_get, checked, start
from tests.harness.net import http
from tests.harness.waiting import wait_until

#: sim_a and sim_b with no limit, sim_tps with one, and sim_slow, whose SMSC takes 1 submit a second
#: and throttles the rest: the slow account's only operator
PACING = SIM_CONFIG + """
[operators.sim_tps]
type = "simulated"
tps = 50
[operators.sim_slow]
type = "simulated"
throttle_tps = 1
receipt_delay = "50ms"
[profiles.slow]
operators = ["sim_slow"]
[accounts.slow]
api_keys = ["slow-key"]
senders = ["SLOW"]
profile = "slow"
"""


def cells(b, column: str = "Pace") -> dict[str, str]:
    """The cell of ``column`` of each row of the Operators table, by operator."""
    return {tr.find_element("css selector", 'td[data-label="Operator"]').text:
            tr.find_element("css selector", f'td[data-label="{column}"]').text
            for tr in b.css("main tbody tr") if tr.find_elements("css selector", f'td[data-label="{column}"]')}


def test_binds_say_why_an_operator_goes_slow(tmp_path):
    """10 messages at once to an SMSC that takes 1 a second: it throttles 9, then 8 of them again
    after the back-off, and the link caps itself near 0.9 a second while the backlog lasts (some
    seconds): the Pace column says so with the API's figure, and what paces the others (a tps,
    nothing); Queued messages shows the backlog the node holds for it (the link's Queued parts
    showed 0 all along)."""
    gw = start(tmp_path, PACING)
    b = None
    try:
        def slow():
            return next(o for o in admin_get(gw, "/v1/admin/binds")["operators"] if o["operator"] == "sim_slow")

        b = Browser(gw.url)
        b.sign_in(ADMIN)
        status, body = http("POST", gw.url + "/v1/messages",
                            {"to": [f"467030000{i:02d}" for i in range(10)], "text": "Paced"}, key="slow-key")
        assert status == 202, body
        wait_until(lambda: slow()["paced_at"] is not None, 30, what="sim_slow capped after throttling")
        b.go("#/binds")

        def capped_as_the_api_says():
            paced = slow()["paced_at"]
            shown = re.fullmatch(r"capped at (\d+\.\d)/s after throttling", cells(b).get("sim_slow", ""))
            return paced is not None and shown and float(shown[1]) == pytest.approx(paced, abs=0.05)

        b.wait(capped_as_the_api_says, what="sim_slow's pace: capped at the API's paced_at")
        pace = cells(b)
        assert (pace["sim_a"], pace["sim_b"], pace["sim_tps"]) == ("no limit", "no limit", "tps limit: 50/s"), pace

        def backlog_shown():
            # what the cap holds back waits in the node, not in the link's queue (Queued parts)
            shown = cells(b, "Queued messages").get("sim_slow", "")
            return shown.isdigit() and 0 < int(shown) <= 10 and slow()["queued_messages"] > 0

        b.wait(backlog_shown, what="sim_slow's backlog in Queued messages, as the API's queued_messages")
        checked(b, "binds-paced")
        # a back-off lasts a second or two after a refusal: its wording through the page's own function
        said = b.driver.execute_async_script("""
            const [cases, done] = arguments;
            import("./ops.js").then((ops) => done(cases.map(ops.pace)), (e) => done(String(e)));""",
            [{"binds": 1, "throttled_for": 0.72, "paced_at": 0.9, "tps": None},
             {"binds": 1, "throttled_for": 2.0, "paced_at": None, "tps": 5},
             {"binds": 0, "throttled_for": 0.0, "paced_at": None, "tps": None}])  # a node of a cluster that joins
        assert said == ["backing off for 0.8 s after the SMSC refused, then capped at 0.9/s",
                        "backing off for 2.0 s after the SMSC refused", "no bind on this node (its cluster share)"], said
        assert b.errors() == []
    finally:
        if b is not None:
            b.close()
        gw.stop()
