"""Checks on the built HTML: every page is there, live outputs are shown, nothing is remote."""

import ast
import re
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from bs4 import BeautifulSoup

from tests.paths import DOCS, every_page, notebook_pages, site_pages
from tests.purenn.test_docstrings import MODULES, public_names
from tests.site.test_extensions import load as load_extension

pytestmark = pytest.mark.built

PAGES = site_pages()
NOTEBOOK_PAGES = notebook_pages()


def read(site: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((site / f"{page}.html").read_text(encoding="utf8"), "html.parser")


def test_the_site_has_pages():
    assert {"index", "intro/what-is-jax", "transforms/vmap", "reference/build-report"} <= set(
        PAGES
    )


@pytest.mark.parametrize("page", PAGES)
def test_every_page_is_built_and_reachable_from_the_navigation(site, page):
    assert (site / f"{page}.html").exists()
    navigation = read(site, "index").select("nav.bd-links a.reference.internal")
    linked = {a["href"].split("#")[0].removesuffix(".html") for a in navigation}
    assert page == "index" or page in linked, f"{page} is not in the sidebar"


def outputs_a_reader_sees(cell) -> list:
    """The outputs of an executed cell that its tags let through to the page."""
    tags = set(cell.metadata.get("tags", []))
    if tags & {"remove-cell", "remove-output"}:
        return []
    return [
        output
        for output in cell.outputs
        if not (output.output_type == "stream" and f"remove-{output.name}" in tags)
        # glue(..., display=False) stores its value in the notebook but shows nothing.
        and "scrapbook" not in output.get("metadata", {})
    ]


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_every_notebook_page_was_executed_and_offers_its_notebook(site, page):
    soup = read(site, page)
    notebook = nbformat.read(site / "_sources" / f"{page}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(cell.execution_count for cell in code_cells)
    # Every cell with an output a reader should see shows it on the page, and no other does.
    expected = sum(bool(outputs_a_reader_sees(cell)) for cell in code_cells)
    assert expected, f"{page} has no visible output"
    assert len(soup.select("div.cell_output")) == expected
    # An error only where the page raises on purpose.
    unplanned = [
        cell.source.splitlines()[0]
        for cell in code_cells
        if any(output.output_type == "error" for output in cell.outputs)
        and "raises-exception" not in cell.metadata.get("tags", [])
    ]
    assert unplanned == [], f"{page}: cells failed without raises-exception: {unplanned}"
    download_links = {a.get("href", "") for a in soup.select(".dropdown-download-buttons a")}
    assert any(href.endswith(f"{Path(page).name}.ipynb") for href in download_links)
    assert any(href.endswith(f"{Path(page).name}.md") for href in download_links)


def test_the_md_download_is_the_page_source(site):
    served = (site / "_sources" / "transforms" / "vmap.md").read_text(encoding="utf8")
    assert served == (DOCS / "transforms" / "vmap.md").read_text(encoding="utf8")


def test_vmap_page_shows_the_seed_output_from_a_live_cell(site):
    outputs = [div.get_text() for div in read(site, "transforms/vmap").select("div.cell_output")]
    assert any("[3 4 5 6 7 8 9]" in text for text in outputs)


GLUE_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")


def glued_values(notebook) -> dict[str, str]:
    """Each value a page glued, as text, read from its executed notebook."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if not record:
                continue
            prefix = record.get("mime_prefix", "")
            text = output["data"].get(prefix + "text/plain", output["data"].get("text/plain"))
            if text is not None:
                values[record["name"]] = str(ast.literal_eval(text))
    return values


def plain_text(text: str) -> str:
    """Whitespace squashed and Sphinx's curly quotes made straight, for comparing prose."""
    for curly, straight in (("\u2018", "'"), ("\u2019", "'"), ("\u201c", '"'), ("\u201d", '"')):
        text = text.replace(curly, straight)
    return " ".join(text.split())


GLUING_PAGES = [
    page for page in NOTEBOOK_PAGES if GLUE_ROLE.search((DOCS / f"{page}.md").read_text("utf8"))
]


def test_most_pages_glue_numbers_into_their_prose():
    assert len(GLUING_PAGES) >= len(NOTEBOOK_PAGES) - 2


@pytest.mark.parametrize("page", GLUING_PAGES)
def test_glued_values_in_the_prose_are_the_executed_notebooks(site, page):
    names = GLUE_ROLE.findall((DOCS / f"{page}.md").read_text(encoding="utf8"))
    values = glued_values(nbformat.read(site / "_sources" / f"{page}.ipynb", as_version=4))
    assert not set(names) - set(values), f"{page} puts values in its prose it never glued"
    # myst-nb renders each {glue:text} role as a span.pasted-text, in the order of the source.
    shown = [plain_text(span.get_text()) for span in read(site, page).select("span.pasted-text")]
    assert shown == [plain_text(values[name]) for name in names]


def test_the_vmap_speedup_is_a_plausible_number(site):
    text = plain_text(read(site, "transforms/vmap").get_text())
    match = re.search(r"vmap was (\d[\d,]*) times faster than the loop", text)
    assert match, "the glued loop/vmap ratio is missing from the vmap page"
    notebook = nbformat.read(site / "_sources" / "transforms" / "vmap.ipynb", as_version=4)
    assert match.group(1) == glued_values(notebook)["loop_over_vmap"]
    assert float(match.group(1).replace(",", "")) > 1, "vmap should beat the Python loop"


def cell_outputs(site, page: str) -> str:
    return " ".join(div.get_text() for div in read(site, page).select("div.cell_output"))


def test_jit_internals_are_shown_live(site):
    for page in ("intro/what-is-jax", "transforms/jit"):
        outputs = cell_outputs(site, page)
        assert "{ lambda" in outputs, f"no jaxpr on {page}"
        assert "stablehlo." in outputs, f"no StableHLO on {page}"
        assert "fusion" in outputs, f"no optimized HLO on {page}"


def test_pmap_page_runs_on_eight_devices(site):
    outputs = cell_outputs(site, "transforms/pmap")
    devices = set(re.findall(r"CpuDevice\(id=(\d+)\)", outputs))
    assert devices == {str(i) for i in range(8)}


def test_composition_table_is_live_and_all_pass(site):
    tables = read(site, "transforms/composing").select("div.cell_output table.composition-table")
    assert len(tables) == 1
    rows = tables[0].select("tbody tr")
    marks = [row.get_text() for row in rows]
    assert len(rows) >= 16 + 3  # every ordered pair and a few triples
    assert all("\u2713" in mark for mark in marks)
    assert not any("\u2717" in mark for mark in marks)


FIGURE_PAGES = [
    "transforms/jit",
    "transforms/grad",
    "transforms/pmap",
    "transforms/composing",
    "science/molecular-dynamics",
    "science/differential-equations",
]


@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_pages_show_their_figures(site, page):
    images = read(site, page).select("div.cell_output img")
    assert images, f"{page} shows no figure"
    for image in images:
        assert (site / Path(page).parent / image["src"]).resolve().is_file()


def test_build_report_shows_every_executed_page_succeeding(site):
    table = read(site, "reference/build-report").find("table")
    assert table is not None
    header = [th.get_text(strip=True) for th in table.select("thead th")]
    rows = [[td.get_text(strip=True) for td in tr.select("td")] for tr in table.select("tbody tr")]
    report = {row[header.index("Document")]: row for row in rows}
    assert sorted(report) == sorted(NOTEBOOK_PAGES)
    failed = [page for page, row in report.items() if row[header.index("Status")] != "\u2705"]
    assert failed == []
    assert all(float(row[header.index("Run Time (s)")]) > 0 for row in report.values())


WARNING = re.compile(r"\b\w*Warning\b")


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_no_page_shows_stderr_or_a_warning(site, page):
    # A warning shown on purpose sits in a cell tagged shows-warning (see the README).
    soup = read(site, page)
    assert soup.select("div.cell_output .stderr") == [], f"{page} shows stderr output"
    notebook = nbformat.read(site / "_sources" / f"{page}.ipynb", as_version=4)
    warned = [
        cell.source.splitlines()[0]
        for cell in notebook.cells
        if cell.cell_type == "code"
        and not {"raises-exception", "shows-warning"} & set(cell.metadata.get("tags", []))
        and any(
            output.output_type == "stream" and WARNING.search(output.text)
            for output in outputs_a_reader_sees(cell)
        )
    ]
    assert warned == [], f"{page}: cells print a warning: {warned}"


def _urls_in_html(soup: BeautifulSoup) -> list[str]:
    urls = []
    for tag, attribute in (("script", "src"), ("link", "href"), ("img", "src"), ("source", "src")):
        urls += [element[attribute] for element in soup.find_all(tag) if element.get(attribute)]
    for style in soup.find_all(style=True):
        urls += re.findall(r"url\(([^)]+)\)", style["style"])
    return urls


def _is_remote(url: str) -> bool:
    url = url.strip("'\" ")
    return url.startswith("//") or urlparse(url).scheme in {"http", "https"}


@pytest.mark.parametrize("page", PAGES)
def test_pages_load_nothing_from_outside_the_site(site, page):
    soup = read(site, page)
    remote = [url for url in _urls_in_html(soup) if _is_remote(url)]
    assert not remote, f"{page} loads {remote}"
    inline_scripts = " ".join(script.get_text() for script in soup.find_all("script"))
    assert not re.search(r"https?://[^\s'\"]*\.(js|css|woff2?)", inline_scripts)


@pytest.mark.parametrize("page", [page for page in PAGES if page != "search"])
def test_every_script_file_waits_for_the_page_except_what_inline_scripts_need(site, page):
    scripts = [script for script in read(site, page).find_all("script") if script.get("src")]
    assert scripts
    blocking = [
        script["src"]
        for script in scripts
        if not {"defer", "async"} & set(script.attrs)
        and not script["src"].split("?")[0].endswith("documentation_options.js")
    ]
    assert blocking == [], f"{page} loads scripts that hold up the first paint: {blocking}"


@pytest.mark.parametrize("page", PAGES)
def test_every_sidebar_fold_has_a_name(site, page):
    folds = read(site, page).select("nav.bd-links details > summary")
    nameless = [str(summary) for summary in folds if not summary.get_text(strip=True)]
    assert folds and nameless == [], f"{page}: sidebar folds without a name: {nameless[:2]}"


def test_stylesheets_and_scripts_reference_no_remote_assets(site):
    offenders = []
    for path in list((site / "_static").rglob("*.css")):
        for url in re.findall(r"url\(([^)]+)\)", path.read_text(encoding="utf8", errors="ignore")):
            if _is_remote(url):
                offenders.append(f"{path.name}: {url}")
        for url in re.findall(r"@import\s+['\"]([^'\"]+)", path.read_text(errors="ignore")):
            if _is_remote(url):
                offenders.append(f"{path.name}: {url}")
    assert not offenders


def test_math_is_typeset_at_build_time(site):
    pages_with_math = [p for p in PAGES if read(site, p).select("div.math, span.math")]
    assert pages_with_math, "no page has math to check"
    for page in PAGES:
        soup = read(site, page)
        assert not [s for s in soup.find_all("script", src=True) if "mathjax" in s["src"].lower()]
        math = soup.select("div.math, span.math")
        assert all(node.select_one(".katex math") for node in math), page
        stylesheets = [link["href"] for link in soup.find_all("link", rel="stylesheet")]
        assert any("katex" in href for href in stylesheets) == bool(math), page


def test_trimmed_stylesheets_parse_as_css(site):
    # The trim's own functions are unit-tested in test_extensions.py; here, its real output.
    lean_stylesheets = load_extension("lean_stylesheets")
    stylesheets = list((site / "_static").rglob("*.css"))
    assert stylesheets
    for stylesheet in stylesheets:
        assert lean_stylesheets.parse_rules(stylesheet.read_text(encoding="utf8")), stylesheet.name


# Each package's reference: an overview page, and a page per module in the folder beside it.
API_OVERVIEW = {"purenn": "reference/api", "tinyjax": "reference/tinyjax"}


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_an_api_page_listing_its_public_names(site, module):
    package, _, short_name = module.partition(".")
    overview_page = API_OVERVIEW[package]
    page_name = f"{overview_page}/{short_name}"
    page = read(site, page_name)
    assert page.find(id=f"module-{module}"), f"{page_name} documents no module"
    missing = [
        name
        for name, _ in public_names()
        if name.startswith(f"{module}.") and page.find(id=name) is None
    ]
    assert not missing, f"{page_name} leaves out {missing}"
    overview = read(site, overview_page)
    folder = overview_page.rsplit("/", 1)[1]
    linked = overview.find("a", href=re.compile(rf"^{folder}/{short_name}\.html"))
    assert linked, f"{page_name} is not linked from {overview_page}"


@pytest.mark.parametrize("page", every_page())
def test_every_page_describes_itself_for_search_results(site, page):
    descriptions = read(site, page).find_all("meta", attrs={"name": "description"})
    assert len(descriptions) == 1, f"{page} has {len(descriptions)} meta descriptions"
    assert len(descriptions[0]["content"]) >= 40, f"{page}: the description says too little"


def test_the_module_index_is_one_flat_list(site):
    # A collapsible group needs a toggle image, which is sized for no screen.
    index = read(site, "py-modindex")
    assert not index.select("img.toggler")
    listed = {code.get_text() for code in index.select("table.modindextable code")}
    assert set(MODULES) <= listed, listed


def test_every_icon_the_pages_use_is_drawn(site):
    # An icon class without a shape in icons.css shows as a filled square.
    icons_css = (DOCS / "_static" / "icons.css").read_text(encoding="utf8")
    drawn = {
        name
        for selectors in re.findall(r"([^{}]+)\{ --jae-icon", icons_css)
        for name in re.findall(r"\.(fa-[a-z0-9-]+)", selectors)
    }
    sizes = {"fa-lg", "fa-fw", "fa-solid", "fa-brands", "fa-regular"}
    used = set()
    for page in site.rglob("*.html"):
        used.update(re.findall(r"\b(fa-[a-z0-9-]+)", page.read_text(encoding="utf8")))
    assert drawn, "icons.css draws no icon: the pattern above no longer matches it"
    assert sorted(used - sizes - drawn) == []
