"""The parts a reader clicks, presses or resizes, on the trimmed site."""

import pytest

from tests.paths import every_page

pytestmark = pytest.mark.browser

TABLET_WIDTH = 768


def test_the_download_menu_opens_and_its_links_download(visit, base_url):
    page = visit("transforms/vmap.html").page
    menu = page.locator(".dropdown-download-buttons .dropdown-menu")
    assert not menu.is_visible()
    page.get_by_role("button", name="Download this page").click()
    menu.wait_for(state="visible", timeout=5_000)
    links = menu.locator("a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert any(h.endswith("vmap.ipynb") for h in hrefs) and any(
        h.endswith("vmap.md") for h in hrefs
    )
    for href in hrefs:
        if href.endswith((".ipynb", ".md")):
            response = page.request.get(f"{base_url}/transforms/{href}")
            assert response.ok and len(response.body()) > 1000, href


def test_a_hidden_cell_shows_its_code_when_opened(visit):
    page = visit("transforms/jit.html").page
    fold = page.locator("details.hide.above-input").first
    code = fold.locator("div.cell_input pre")
    fold.scroll_into_view_if_needed()
    assert not code.is_visible()
    fold.locator("summary").click()
    code.wait_for(state="visible", timeout=5_000)
    assert code.inner_text().strip()
    box = code.bounding_box()
    assert box is not None and box["height"] > 10


def test_search_results_are_styled_as_a_list_of_links(visit):
    page = visit("search.html?q=vmap").page
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=15_000)
    style = results.first.evaluate(
        """(item) => {
            const css = getComputedStyle(item);
            return {
                bullet: css.listStyleType,
                bodyFont: getComputedStyle(document.body).fontFamily,
                itemFont: css.fontFamily,
                margin: parseFloat(css.marginBottom) + parseFloat(css.paddingBottom),
            };
        }"""
    )
    # The theme's search stylesheet survived the trim: no browser-default bullets, the
    # site's font, and space between results.
    assert style["bullet"] == "none"
    assert style["itemFont"] == style["bodyFont"]
    assert style["margin"] > 0


def test_keyboard_focus_is_visible(visit):
    page = visit("transforms/vmap.html").page
    rings = []
    for _ in range(6):
        page.keyboard.press("Tab")
        rings.append(
            page.evaluate(
                """() => {
                    const el = document.activeElement;
                    if (!el || el === document.body) return null;
                    const css = getComputedStyle(el);
                    return css.outlineStyle !== "none" && parseFloat(css.outlineWidth) > 0
                        || css.boxShadow !== "none";
                }"""
            )
        )
    focused = [ring for ring in rings if ring is not None]
    assert focused and all(focused), rings


@pytest.mark.parametrize("page", every_page())
def test_no_horizontal_overflow_at_tablet_width(visit, page):
    loaded = visit(f"{page}.html", width=TABLET_WIDTH)
    assert loaded.page.evaluate("document.documentElement.scrollWidth") <= TABLET_WIDTH
