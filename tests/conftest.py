"""Fixtures shared by every suite."""

from __future__ import annotations

import os

import pytest

from tests.support import CHROMIUM, CHROMIUM_ARGS, require_service


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the run, driven by Playwright."""
    require_service(os.path.exists(CHROMIUM), f"Chromium not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) and page per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
