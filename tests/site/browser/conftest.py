"""A real Chromium (Debian's) against the built site, served on 127.0.0.1 as a static host does."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from benchmarks._local_site import CHROMIUM_FLAGS, chromium, serve


@pytest.fixture(scope="session")
def base_url(site) -> Iterator[str]:
    with serve(site) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    try:
        executable = chromium()
    except FileNotFoundError as missing:
        pytest.fail(str(missing))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS)
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Visit:
    """What one page load did: its problems are collected, not raised, so tests can report all."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return (
            [f"console: {message}" for message in self.console_errors]
            + [f"failed: {url}" for url in self.failed_requests]
            + [f"left the site: {url}" for url in self.blocked_requests]
        )


def _open_context(browser: Browser, mode: str | None, width: int) -> BrowserContext:
    context = browser.new_context(viewport={"width": width, "height": 900})
    if mode is not None:
        # The theme reads the reader's choice from localStorage before it paints.
        context.add_init_script(f"window.localStorage.setItem('mode', '{mode}');")
    return context


@pytest.fixture
def visit(browser, base_url) -> Iterator:
    contexts: list[BrowserContext] = []

    def open_page(
        path: str,
        *,
        mode: str | None = "light",
        width: int = 1280,
        stylesheets: Path | None = None,
    ) -> Visit:
        """Load ``path``; ``mode=None`` is a first-time reader who never chose a colour mode.

        With ``stylesheets``, each stylesheet of the site is served from that folder instead
        (a copy of ``_static`` with the same names), and everything else from the site.
        """
        context = _open_context(browser, mode, width)
        contexts.append(context)
        page = context.new_page()
        record = Visit(page)

        def stay_on_this_machine(route, request: Request) -> None:
            url = urlparse(request.url)
            replacement = (
                stylesheets / url.path.split("/_static/", 1)[1]
                if stylesheets is not None and "/_static/" in url.path
                else None
            )
            if replacement is not None and url.path.endswith(".css") and replacement.is_file():
                route.fulfill(path=str(replacement), content_type="text/css")
            elif request.url.startswith(("data:", "blob:")) or url.hostname == "127.0.0.1":
                route.continue_()
            else:
                record.blocked_requests.append(request.url)
                route.abort()

        page.route("**/*", stay_on_this_machine)
        page.on(
            "console",
            lambda message: (
                record.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: record.console_errors.append(str(error)))
        page.on("requestfailed", lambda request: record.failed_requests.append(request.url))
        page.on(
            "response",
            lambda response: (
                record.failed_requests.append(f"{response.status} {response.url}")
                if response.status >= 400
                else None
            ),
        )
        page.goto(f"{base_url}/{path}", wait_until="load")
        page.wait_for_load_state("networkidle")
        return record

    yield open_page
    for context in contexts:
        context.close()
