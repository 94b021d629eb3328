"""A real Chromium (Debian's) against the built site, served on 127.0.0.1 as a static host does."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from benchmarks._local_site import CHROMIUM_FLAGS, chromium, serve

BROWSER_TESTS = Path(__file__).resolve().parent


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


def load(
    browser: Browser,
    base_url: str,
    path: str,
    *,
    mode: str | None = "light",
    width: int = 1280,
    stylesheets: Path | None = None,
) -> Visit:
    """Load ``path`` in a context of its own; ``mode=None`` is a reader who never chose one.

    With ``stylesheets``, each stylesheet of the site is served from that folder instead
    (a copy of ``_static`` with the same names), and everything else from the site.
    """
    page = _open_context(browser, mode, width).new_page()
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


@pytest.fixture
def visit(browser, base_url) -> Iterator:
    """A fresh load of a page, for a test that clicks, scrolls or watches the page load."""
    visits: list[Visit] = []

    def open_page(path: str, **how) -> Visit:
        visits.append(load(browser, base_url, path, **how))
        return visits[-1]

    yield open_page
    for record in visits:
        record.page.context.close()


# A worker keeps this many shared pages open; the browser tests run page by page (see
# pytest_collection_modifyitems), so the views of one page are all reused before it goes.
SHARED_VIEWS = 4


@pytest.fixture(scope="session")
def _shared_views(browser) -> Iterator[OrderedDict]:
    views: OrderedDict = OrderedDict()
    yield views
    for record in views.values():
        record.page.context.close()


@pytest.fixture
def view(browser, base_url, _shared_views) -> Callable[..., Visit]:
    """A page as loaded, shared by the tests that only read it (they must not change it).

    Loading the page is most of what a check that only reads the layout or runs axe costs,
    so each page is loaded once per colour mode and width for all of those checks.
    """

    def open_shared(path: str, *, mode: str = "light", width: int = 1280) -> Visit:
        key = (path, mode, width)
        if key in _shared_views:
            _shared_views.move_to_end(key)
        else:
            _shared_views[key] = load(browser, base_url, path, mode=mode, width=width)
            while len(_shared_views) > SHARED_VIEWS:
                _shared_views.popitem(last=False)[1].page.context.close()
        shared = _shared_views[key]
        shared.page.evaluate("window.scrollTo(0, 0)")  # boxes are measured from the top
        return shared

    return open_shared


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests page by page, and keep each page's tests on one worker."""

    def page_of(item: pytest.Item) -> str | None:
        callspec = getattr(item, "callspec", None)
        return callspec.params.get("page") if callspec is not None else None

    for item in items:
        if item.path.is_relative_to(BROWSER_TESTS) and page_of(item) is not None:
            item.add_marker(pytest.mark.xdist_group(f"page-{page_of(item)}"))
    order = {page: n for n, page in enumerate(dict.fromkeys(filter(None, map(page_of, items))))}
    browser_items = [i for i in items if i.path.is_relative_to(BROWSER_TESTS)]
    by_page = sorted(browser_items, key=lambda item: order.get(page_of(item), -1))
    slots = iter(by_page)
    items[:] = [next(slots) if i.path.is_relative_to(BROWSER_TESTS) else i for i in items]
