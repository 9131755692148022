"""Browser tests: Playwright drives Debian's chromium against pytest-django's
live server. Screenshots go to test-artifacts/."""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import need

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Where the page screenshots go (`SCREENSHOT_DIR` to collect them elsewhere).
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or ARTIFACTS)
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser(monkeypatch):
    # One Playwright per test: its sync API switches greenlets, and the
    # database connection seen by the test's teardown must be the test's own.
    need("chromium", bool(shutil.which(CHROMIUM) or Path(CHROMIUM).exists()))
    # Playwright's sync API runs an event loop in this thread; the ORM calls of
    # the test are still synchronous and safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield instance
        instance.close()
        # Queries made while Playwright ran used a connection of their own; close it.
        connections.close_all()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shoot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
