"""A real browser for the tests: headless Chromium driven by Selenium (Debian's `chromium` and
`chromium-driver`), with screenshots kept as test artifacts."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.support.project import ROOT

needs_chromium = pytest.mark.skipif(
    shutil.which("chromedriver") is None,
    reason="chromium-driver is not installed (`make test` installs it via apt)")

# Where screenshots stay after the session (CI keeps the folder).
ARTIFACTS = Path(os.environ.get("LATENTLAB_TEST_ARTIFACTS", ROOT / "test-artifacts"))


@contextlib.contextmanager
def chromium(profile: Path, width: int = 1600, height: int = 1000):
    """A headless Chromium with its own profile folder; the driver logs the browser console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}",
                 "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or ""
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver) -> str:
    return driver.execute_script("return document.body ? document.body.innerText : ''")


def wait_for_text(driver, *texts: str, timeout: float = 300) -> str:
    """The page's text once it shows every one of ``texts`` (a single-page app renders after
    its API calls answer: however long a busy machine takes, up to ``timeout``); on timeout
    the test fails with what the page showed."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.5).until(
            lambda d: all(t in page_text(d) for t in texts))
    except TimeoutException:
        shown = page_text(driver)
        missing = [t for t in texts if t not in shown]
        pytest.fail(f"the page never showed {missing}; it showed:\n{shown[:3000]}", pytrace=False)
    return page_text(driver)


def keep_screenshot(driver, name: str) -> Path:
    """A PNG of the page under ARTIFACTS (``name`` made a file name)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    assert driver.save_screenshot(str(path)), path
    return path
