"""Every page, as a reader's browser gets it."""

from urllib.parse import urlparse

import nbformat
import pytest
from myst_nb.core.read import read_myst_markdown_notebook

from tests.paths import DOCS, SITE, every_page, notebook_pages, site_pages

pytestmark = pytest.mark.browser

PAGES = site_pages()
EVERY_PAGE = every_page()
PHONE_WIDTH = 375


def html_path(page: str) -> str:
    return f"{page}.html"


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_page_loads_cleanly_and_stays_on_the_site(visit, page):
    loaded = visit(html_path(page), mode=None)
    assert loaded.problems() == []


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_every_image_loads(visit, page):
    loaded = visit(html_path(page))
    # Lazy images only load near the viewport: scroll each into view first.
    broken = loaded.page.evaluate(
        """async () => {
            const broken = [];
            for (const img of document.images) {
                img.loading = "eager";
                img.scrollIntoView();
                if (!img.complete) {
                    await new Promise((done) => {
                        img.addEventListener("load", done, {once: true});
                        img.addEventListener("error", done, {once: true});
                    });
                }
                if (img.naturalWidth === 0) broken.push(img.currentSrc || img.src);
            }
            return broken;
        }"""
    )
    assert broken == []


def pages_with_math() -> list[str]:
    """The pages whose built HTML has math (none before the site is built)."""
    return [
        page
        for page in PAGES
        if (SITE / f"{page}.html").is_file()
        and 'class="math' in (SITE / f"{page}.html").read_text(encoding="utf8")
    ]


MATH_PAGES = pages_with_math()


def test_the_site_has_math_to_check(site):
    assert MATH_PAGES, "no page has math, so the math test below checks nothing"


@pytest.mark.parametrize("page", MATH_PAGES)
def test_math_is_rendered(visit, page):
    loaded = visit(html_path(page))
    report = loaded.page.evaluate(
        """() => {
            const nodes = [...document.querySelectorAll('div.math, span.math')];
            const box = (el) => el && el.getBoundingClientRect();
            return {
                count: nodes.length,
                // KaTeX's HTML is what a sighted reader sees: it must take up space.
                unrendered: nodes.filter((node) => {
                    const html = box(node.querySelector('.katex-html'));
                    return !html || html.width === 0 || html.height === 0;
                }).map((node) => node.textContent.slice(0, 60)),
                // The MathML copy is for screen readers only: present, but not drawn.
                mathml_shown: nodes.filter((node) => {
                    const mathml = box(node.querySelector('.katex-mathml'));
                    return !mathml || mathml.width > 1 || mathml.height > 1;
                }).map((node) => node.textContent.slice(0, 60)),
                // Display math may scroll sideways, but never loses its top or bottom.
                clipped: [...document.querySelectorAll('.katex-display')]
                    .filter((el) => el.scrollHeight > el.clientHeight)
                    .map((el) => el.textContent.slice(0, 60)),
            };
        }"""
    )
    assert report["count"] > 0
    assert report["unrendered"] == []
    assert report["mathml_shown"] == []
    assert report["clipped"] == []


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_no_horizontal_overflow_on_a_phone(visit, page):
    loaded = visit(html_path(page), width=PHONE_WIDTH)
    scroll_width = loaded.page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE_WIDTH


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_nothing_moves_while_the_page_loads(visit, page):
    loaded = visit(html_path(page), mode=None, width=PHONE_WIDTH)
    shifts = loaded.page.evaluate(
        """() => new Promise((done) => {
            new PerformanceObserver((list) => done(list.getEntries().map(
                (shift) => [shift.value, shift.sources.map((s) => s.node?.nodeName).join(" ")]
            ))).observe({type: "layout-shift", buffered: true});
            setTimeout(() => done([]), 500);
        })"""
    )
    # A tenth is where Lighthouse stops calling a page stable; a font swap costs about 0.002.
    assert sum(value for value, _ in shifts) < 0.01, shifts


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_first_paint_has_the_readers_colours(browser, base_url, scheme):
    # The theme's scripts are deferred. Before they run (block them, as a slow connection
    # does) the page must already be in the reader's colour scheme, with the colours it has
    # once they ran.
    def colours(block_scripts: bool) -> tuple[str, str, str]:
        context = browser.new_context(color_scheme=scheme)
        try:
            page = context.new_page()
            if block_scripts:
                page.route("**/*.js", lambda route: route.abort())
            page.goto(f"{base_url}/{html_path('transforms/vmap')}", wait_until="load")
            return page.evaluate(
                """() => [document.documentElement.dataset.theme,
                          getComputedStyle(document.body).backgroundColor,
                          getComputedStyle(document.querySelector("h1")).color]"""
            )
        finally:
            context.close()

    before_scripts = colours(block_scripts=True)
    assert before_scripts[0] == scheme
    assert before_scripts == colours(block_scripts=False)


@pytest.mark.parametrize("width", [PHONE_WIDTH, 1280])
def test_the_theme_layout_is_styled(visit, width):
    page = visit(html_path("transforms/vmap"), width=width).page
    # Unstyled, the print-only copy of the title and contents shows, and the header's
    # buttons stack into a column.
    assert not page.locator("#jb-print-docs-body").is_visible()
    header = page.locator(".bd-header-article").bounding_box()
    assert header is not None and header["height"] < 100


def test_search_finds_the_vmap_page(visit):
    loaded = visit("search.html?q=vmap")
    results = loaded.page.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=15_000)
    hrefs = [results.nth(i).get_attribute("href") for i in range(results.count())]
    assert any("transforms/vmap.html" in href for href in hrefs), hrefs


def test_copy_button_puts_the_cell_code_on_the_clipboard(visit):
    loaded = visit(html_path("transforms/vmap"))
    page = loaded.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    cell = page.locator("div.cell_input").first
    expected = cell.locator("pre").inner_text()
    cell.hover()
    cell.locator("button.copybtn").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == expected.strip()
    # And it is the code of the page's first shown cell, as its source has it.
    source = (DOCS / "transforms/vmap.md").read_text(encoding="utf8")
    shown = [
        cell.source
        for cell in read_myst_markdown_notebook(source).cells
        if cell.cell_type == "code"
        and not {"remove-cell", "remove-input"} & set(cell.metadata.get("tags", []))
    ]
    assert copied.strip() == shown[0].strip()


def test_dark_mode_switch_changes_the_theme(visit):
    loaded = visit(html_path("index"), mode="light")
    page = loaded.page
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    light_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.locator("button.theme-switch-button:visible").first.click()
    page.locator("button.theme-change-button[data-mode=dark]:visible").first.click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.evaluate("window.localStorage.getItem('mode')") == "dark"
    dark_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_background != light_background


@pytest.mark.parametrize("page", notebook_pages())
def test_downloads_are_the_notebook_and_the_source(visit, base_url, page):
    loaded = visit(html_path(page))
    links = loaded.page.locator(".dropdown-download-buttons a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    notebook_href = next(h for h in hrefs if h.endswith(".ipynb"))
    source_href = next(h for h in hrefs if h.endswith(".md"))
    here = f"{base_url}/{page}.html"
    notebook = loaded.page.request.get(_join(here, notebook_href))
    assert notebook.ok
    downloaded = nbformat.reads(notebook.text(), as_version=4)
    nbformat.validate(downloaded)
    # The same code, cell for cell, as the page's source, and with the outputs of its run.
    source_text = (DOCS / f"{page}.md").read_text(encoding="utf8")
    expected = [
        cell.source
        for cell in read_myst_markdown_notebook(source_text).cells
        if cell.cell_type == "code"
    ]
    code = [cell for cell in downloaded.cells if cell.cell_type == "code"]
    assert [cell.source for cell in code] == expected
    assert all(cell.execution_count for cell in code)
    assert any(cell.outputs for cell in code), f"the {page} notebook has no outputs"
    source = loaded.page.request.get(_join(here, source_href))
    assert source.ok
    assert source.text() == (DOCS / f"{page}.md").read_text(encoding="utf8")


def test_the_sidebar_reaches_every_page(visit, base_url):
    loaded = visit(html_path("index"))
    hrefs = loaded.page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "links => links.map((a) => a.href)"
    )
    reached = {href.removeprefix(base_url + "/").split("#")[0] for href in hrefs}
    missing = [page for page in PAGES if page != "index" and f"{page}.html" not in reached]
    assert missing == []


def _join(page_url: str, href: str) -> str:
    from urllib.parse import urljoin

    return urljoin(page_url, href)


def test_the_404_page_works_from_any_depth(browser, base_url, site):
    # A host answers a missing address with 404.html's content and status 404, at that
    # address; the page's own links and assets must still resolve from there.
    deep = "/transforms/no/such/page.html"
    not_found = (site / "404.html").read_text(encoding="utf8")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    failed: list[str] = []

    def host(route, request):
        if urlparse(request.url).path == deep:
            route.fulfill(status=404, body=not_found, content_type="text/html")
        else:
            route.continue_()

    page.route("**/*", host)
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on(
        "response",
        lambda response: (
            failed.append(f"{response.status} {response.url}")
            if response.status >= 400 and urlparse(response.url).path != deep
            else None
        ),
    )
    try:
        page.goto(base_url + deep, wait_until="load")
        page.wait_for_load_state("networkidle")
        assert page.get_by_role("heading", name="Page not found").is_visible()
        assert failed == []
        # Every stylesheet it links was loaded and parsed, and every image drawn.
        loaded = page.evaluate(
            """() => ({
                links: document.querySelectorAll('link[rel="stylesheet"]').length,
                sheets: [...document.styleSheets].filter((s) => s.href).length,
                images: [...document.images].map((img) => img.naturalWidth),
            })"""
        )
        assert loaded["links"] > 0 and loaded["sheets"] == loaded["links"]
        assert loaded["images"] and 0 not in loaded["images"]
        # Its link home leads to the map.
        page.get_by_role("link", name="map of the site").click()
        page.wait_for_load_state("load")
        assert urlparse(page.url).path == "/index.html"
    finally:
        context.close()
