"""Headless Chromium for the console's tests: Debian's ``chromium`` and ``chromedriver`` (found or
installed by scripts/chromium, which scripts/test runs), driven through selenium.

``Browser`` is the little a test needs on top of selenium's WebDriver: open a console page, wait on
a condition (never a fixed sleep), find by visible text, and save a screenshot under a name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: where the screenshots go: $SMSGW_CONSOLE_SHOTS, else var/console-shots at the top of the checkout
SHOTS = Path(os.environ.get("SMSGW_CONSOLE_SHOTS") or Path(__file__).resolve().parents[2] / "var" / "console-shots")

DESKTOP = (1280, 800)
PHONE = (390, 844)


def _binaries() -> tuple[str, str]:
    """chromium and chromedriver, or skip naming what is missing (under CI=true: fail)."""
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    why = os.environ.get("SMSGW_TEST_CHROMIUM_SKIP") or "chromium and chromedriver are not installed (scripts/chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why}, and CI must test the console in a browser")
    pytest.skip(why)


class Browser:
    """One headless Chromium window on the console at ``base`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, base: str, size=DESKTOP) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        browser, driver = _binaries()
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-first-run", "--disable-extensions", f"--window-size={size[0]},{size[1]}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        self.base = base
        self.size = size
        # the page's viewport exactly this size (the window's would lose some to the browser's frame);
        # a phone's with its touch-screen layout (the page's meta viewport applies)
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600})
        SHOTS.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self.driver.quit()

    def open(self, hash_route: str = "") -> None:
        self.driver.get(f"{self.base}/console/{hash_route}")

    def go(self, hash_route: str) -> None:
        """Another page of the open console (a hash change: no reload, the key stays)."""
        self.driver.execute_script("location.hash = arguments[0]", hash_route)

    def css(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def one(self, selector: str, timeout: float = 15.0):
        return self.wait(lambda: (self.css(selector) or [None])[0], timeout, f"an element {selector!r}")

    def text(self) -> str:
        return self.driver.find_element("tag name", "body").text

    def wait(self, predicate, timeout: float = 15.0, what: str = "condition"):
        """Until ``predicate()`` is true (selenium's WebDriverWait polls it; an exception while the
        page changes under it counts as not yet); the page's text goes into the failure."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                                 ignored_exceptions=(Exception,)).until(lambda _driver: predicate())
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; the page shows:\n"
                                 f"{self.text()[:3000]}") from None

    def wait_text(self, needle: str, timeout: float = 15.0) -> None:
        self.wait(lambda: needle in self.text(), timeout, f"the text {needle!r}")

    def button(self, label: str):
        """The button whose text or aria-label is ``label``."""
        return self.wait(lambda: next((b for b in self.css("button")
                                       if label in (b.text, b.get_attribute("aria-label")) and b.is_displayed()), None),
                         15.0, f"a button {label!r}")

    def sign_in(self, key: str) -> None:
        self.open()
        field = self.one("input[name=key]")
        field.send_keys(key)
        self.button("Sign in").click()
        self.wait(lambda: not self.css("form.signin"), 15, "the sign-in form to go")

    def shot(self, name: str) -> Path:
        """A PNG of the whole page, as tall as its content (at most 4,000 px), as SHOTS/name.png."""
        import base64

        height = self.driver.execute_script(
            "return Math.max(document.documentElement.scrollHeight, arguments[0])", self.size[1])
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": self.size[0], "height": min(height, 4000), "scale": 1}})
        path = SHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def errors(self) -> list[str]:
        """The console's JavaScript errors so far: severe browser log entries, less the refused API
        calls the console expects (a customer's key is refused by /v1/admin/* at sign-in)."""
        return [e["message"] for e in self.driver.get_log("browser")
                if e.get("level") == "SEVERE" and "Failed to load resource" not in e["message"]]

    def unlabelled(self) -> list[str]:
        """Form controls on the page with no accessible name (no label, aria-label or text)."""
        return self.driver.execute_script("""
            return [...document.querySelectorAll('input, select, textarea, button')].filter((el) => {
              if (el.type === 'hidden' || el.closest('[hidden]')) return false;
              if (el.getAttribute('aria-label') || (el.labels && el.labels.length)) return false;
              return !(el.tagName === 'BUTTON' && el.textContent.trim());
            }).map((el) => el.outerHTML.slice(0, 120));""")

    def sideways_boxes(self) -> list[str]:
        """The boxes on the page that scroll sideways (their content wider than they are)."""
        return self.driver.execute_script("""
            return [...document.querySelectorAll('.scroll')].filter((el) => el.scrollWidth > el.clientWidth + 1)
              .map((el) => el.outerHTML.slice(0, 120));""")

    def cut_off(self) -> list[str]:
        """Values in table cells that reach past their cell's right edge, or that are cut short
        with no ellipsis to say so."""
        return self.driver.execute_script("""
            const out = [];
            for (const td of document.querySelectorAll('td')) {
              const edge = td.getBoundingClientRect().right + 1;
              for (const el of td.querySelectorAll('*')) {
                const style = getComputedStyle(el);
                const clipped = el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'visible';
                if (el.getBoundingClientRect().right > edge || (clipped && style.textOverflow !== 'ellipsis')) {
                  out.push(el.outerHTML.slice(0, 120));
                }
              }
            }
            return out;""")

    def overflows(self) -> bool:
        """Whether the page is wider than the window (sideways scrolling of the whole page)."""
        return self.driver.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth + 1")
