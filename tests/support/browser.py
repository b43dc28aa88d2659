"""A real headless Chromium for the console tests: the OS's browser and its chromedriver,
driven by selenium (no browser download: `.ci/run` installs the OS packages when missing).

`unavailable()` says why no browser can be had (the tests skip, saying so); `Browser` wraps
one driver for the whole test session with the waits and screenshots the tests use.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Screenshots land here (data/ is not committed); VARCO_SCREENSHOTS moves them.
CITY_TZ = "Europe/Rome"  # the demo city's (examples/demo.toml)
SCREENSHOTS = Path(os.environ.get("VARCO_SCREENSHOTS", ROOT / "data" / "screenshots"))
WAIT_S = 10.0


def _first(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    for name in names:
        found = shutil.which(name) or (
            name if os.path.isabs(name) and os.access(name, os.X_OK) else None
        )
        if found:
            return found
    return None


def chromium() -> str | None:
    return _first(
        "VARCO_CHROMIUM", "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"
    )


def chromedriver() -> str | None:
    return _first("VARCO_CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver")


def unavailable() -> str | None:
    """Why the console's browser tests cannot run here (None: they can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if chromium() is None:
        return "no Chromium (apt-get install chromium chromium-driver, or set VARCO_CHROMIUM)"
    if chromedriver() is None:
        return "no chromedriver (apt-get install chromium-driver, or set VARCO_CHROMEDRIVER)"
    return None


class Browser:
    """One headless Chromium; `base` is the server the current test talks to."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = chromium() or ""
        for arg in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1280,860",
            "--lang=it-IT",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # The browser keeps the city's time, as an operator's in Italy does: the pages' "today"
        # (the transit search's day, the violations' range) is the city's day, also when the
        # machine's clock (UTC) is still on the day before.
        service = Service(chromedriver() or "", env=dict(os.environ, TZ=CITY_TZ))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(WAIT_S)
        self.base = ""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def quit(self) -> None:
        self.driver.quit()

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def fresh(self, base: str) -> None:
        """A new test: its server, no cookie or stored language from an earlier one."""
        self.base = base
        self.open("/console/static/app.css")  # a page on the origin, to clear its storage
        self.driver.delete_all_cookies()
        self.driver.execute_script("localStorage.clear()")
        self.driver.get_log("browser")  # read, so that the next test starts with none

    # -- finding and waiting ---------------------------------------------------------------

    def wait(self, css: str, text: str | None = None, timeout: float = WAIT_S) -> Any:
        """The first visible element matching `css` (containing `text`), once there is one."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        def found(driver: Any) -> Any:
            try:
                for el in driver.find_elements("css selector", css):
                    if el.is_displayed() and (text is None or text in el.text):
                        return el
            except StaleElementReferenceException:
                return False
            return False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(found)
        except Exception as exc:
            self.shot("failed-wait")
            raise AssertionError(
                f"no visible {css!r}{f' with {text!r}' if text else ''}; "
                f"page says: {self.text('main')[:600]!r}; console: {self.console_errors()}"
            ) from exc

    def gone(self, css: str, text: str, timeout: float = WAIT_S) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            lambda d: all(text not in el.text for el in d.find_elements("css selector", css))
        )

    def text(self, css: str) -> str:
        return "\n".join(el.text for el in self.driver.find_elements("css selector", css))

    def fill(self, label: str, value: str, within: str = "main") -> Any:
        """Type into the control whose <label> reads `label` (found as a person would)."""
        control = self.labelled(label, within)
        control.clear()
        control.send_keys(value)
        return control

    def labelled(self, label: str, within: str = "main") -> Any:
        """The control a visible <label> reading `label` names (waits for it to appear)."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        def found(driver: Any) -> Any:
            try:
                for el in driver.find_elements("css selector", f"{within} label"):
                    if el.text.strip() == label and el.is_displayed():
                        return driver.find_element("id", el.get_attribute("for"))
            except StaleElementReferenceException:
                return False
            return False

        try:
            return WebDriverWait(self.driver, WAIT_S, poll_frequency=0.05).until(found)
        except Exception as exc:
            raise AssertionError(
                f"no label {label!r} in {within}: {self.text(within)[:400]!r}"
            ) from exc

    def click(self, css: str, text: str | None = None) -> None:
        self.wait(css, text).click()

    def keys(self, keys: str) -> None:
        """Keys sent to the element that has focus, as a person at the keyboard would."""
        self.driver.switch_to.active_element.send_keys(keys)

    def focused(self) -> Any:
        return self.driver.switch_to.active_element

    def console_errors(self) -> list[str]:
        """The browser console's errors since the last call (a CSP refusal shows up here),
        but for the API's own 4xx answers, which Chromium logs too (`GET /v1/session` is 401
        before sign-in)."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE"
            and not ("/v1/" in entry["message"] and "status of 4" in entry["message"])
        ]

    def downloads(self, directory: Path) -> None:
        """Downloads go to `directory` (headless Chromium otherwise refuses them)."""
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(directory)}
        )

    def shot(self, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path
