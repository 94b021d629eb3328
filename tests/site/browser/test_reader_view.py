"""Every output is there to read, and the stylesheet trim changes no element's box."""

import pytest

from tests.paths import SITE, every_page, notebook_pages

pytestmark = pytest.mark.browser

PHONE_WIDTH = 375
UNTRIMMED_STYLESHEETS = SITE.with_name(f"{SITE.name}-untrimmed-css")

# Each cell output with text, outside a fold the reader has not opened, in a box shorter than
# one line of that text: its text block, the output, or any box around it up to the cell.
OUTPUTS_SHORTER_THAN_A_LINE = """() => {
    const tooShort = [];
    for (const output of document.querySelectorAll("div.cell_output")) {
        if (output.closest("details:not([open])") || !output.innerText.trim()) continue;
        const text = output.querySelector("pre") || output;
        const style = getComputedStyle(text);
        const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
        const boxes = [text];
        for (let box = text; box && !box.matches("div.cell"); box = box.parentElement) {
            boxes.push(box.parentElement);
        }
        const height = Math.min(...boxes.map((box) => box.getBoundingClientRect().height));
        if (height < line) {
            tooShort.push(`${height.toFixed(1)} px < ${line.toFixed(1)} px: `
                + output.innerText.trim().slice(0, 50));
        }
    }
    return tooShort;
}"""

# Every element's box, once every image has loaded (lazy ones too) and the fonts are in.
ELEMENT_BOXES = """async () => {
    for (const img of document.images) {
        img.loading = "eager";
        if (!img.complete) {
            await new Promise((done) => {
                img.addEventListener("load", done, {once: true});
                img.addEventListener("error", done, {once: true});
            });
        }
    }
    await document.fonts.ready;
    return [...document.body.querySelectorAll("*")].map((element) => {
        const box = element.getBoundingClientRect();
        const name = element.tagName.toLowerCase()
            + (element.id ? "#" + element.id : "")
            + [...element.classList].slice(0, 2).map((c) => "." + c).join("");
        return [name, box.x, box.y, box.width, box.height];
    });
}"""


@pytest.mark.parametrize("width", [1280, PHONE_WIDTH])
@pytest.mark.parametrize("page", notebook_pages())
def test_every_output_shows_at_least_a_line_of_its_text(visit, page, width):
    loaded = visit(f"{page}.html", width=width)
    assert loaded.page.evaluate(OUTPUTS_SHORTER_THAN_A_LINE) == []


def test_the_untrimmed_stylesheets_are_kept_beside_the_site(site):
    kept = {path.relative_to(UNTRIMMED_STYLESHEETS) for path in UNTRIMMED_STYLESHEETS.rglob("*")}
    served = {path.relative_to(site / "_static") for path in (site / "_static").rglob("*.css")}
    assert served and served <= kept


@pytest.mark.parametrize(("width", "mode"), [(PHONE_WIDTH, "light"), (1280, "dark")])
@pytest.mark.parametrize("page", every_page())
def test_the_stylesheet_trim_moves_no_element(visit, site, page, width, mode):
    trimmed = visit(f"{page}.html", width=width, mode=mode).page.evaluate(ELEMENT_BOXES)
    untrimmed = visit(
        f"{page}.html", width=width, mode=mode, stylesheets=UNTRIMMED_STYLESHEETS
    ).page.evaluate(ELEMENT_BOXES)
    assert [name for name, *_ in trimmed] == [name for name, *_ in untrimmed]
    moved = [
        (mine[0], [round(v) for v in mine[1:]], [round(v) for v in theirs[1:]])
        for mine, theirs in zip(trimmed, untrimmed, strict=True)
        if any(abs(a - b) > 1 for a, b in zip(mine[1:], theirs[1:], strict=True))
    ]
    assert moved[:5] == [], f"{len(moved)} elements sit elsewhere with the trimmed stylesheets"
