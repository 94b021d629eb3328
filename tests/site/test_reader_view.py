"""What a reader sees in the built HTML: described figures, real links, no build plumbing."""

import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.paths import every_page, notebook_pages, teaching_pages

pytestmark = pytest.mark.built

EVERY_PAGE = every_page()
NOTEBOOK_PAGES = notebook_pages()
TEACHING_PAGES = teaching_pages()

PLACEHOLDER_HOST = re.compile(
    r"^(?:[\w-]+\.)*example\.(?:org|com|net)$|^(?:localhost|127\.\d+\.\d+\.\d+)$"
)
GLUE_CALL = re.compile(r"\bglue\s*\(")
PRIVATE_NAME = re.compile(
    r"\bjax\._src\b"
    r"|\b(?:purenn|tinyjax)(?:\.\w+)*\._\w"
    r"|\bfrom\s+(?:jax|purenn|tinyjax)[\w.]*\s+import\s+\(?[^\n]*\b_[A-Za-z]\w*"
)
FILE_OR_HASH = re.compile(r"/|\\|\.(?:png|svg|jpe?g|gif|webp)\b|[0-9a-f]{16}", re.IGNORECASE)
LONGEST_TRACEBACK = 20
DIAGRAM_PAGES = {
    "intro/what-is-jax": "the pipeline from Python to an executable",
    "transforms/vmap": "in_axes and out_axes",
    "transforms/grad": "jvp as a column, vjp as a row",
    "nn/build-your-own-transform": "the frame stack",
    "nn/multi-process": "processes, devices and the coordinator",
    "core/pytrees": "a network's parameters as a tree",
    "core/random": "split as a chain, fold_in as a fan",
    "core/control-flow": "scan's carry from one step to the next",
    "core/sharp-bits": "asynchronous dispatch",
    "core/debugging": "a debug callback from device to host",
    "scratch/tracing": "the interpreter stack",
    "scratch/forward-mode": "primals and tangents through a program",
    "scratch/vmap": "the batch axis through a program",
    "scratch/jit": "Python to tinyjax's IR to XLA",
    "scratch/reverse-mode": "linearise, then transpose",
    "scratch/composing": "the pairs of transforms",
    "advanced/custom-derivatives": "custom_vjp's forward and backward passes",
    "advanced/memory": "what the backward pass keeps, with and without remat",
    "advanced/sharding": "what each device holds in three parallel layouts",
    "advanced/export": "export, serialize, reload in another process",
}


def read(site: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((site / f"{page}.html").read_text(encoding="utf8"), "html.parser")


def code_a_reader_sees(soup: BeautifulSoup) -> list[str]:
    """The code of every cell on the page, shown or folded (removed cells are not in it)."""
    return [div.get_text() for div in soup.select("div.cell div.cell_input")]


def test_the_checks_below_have_pages_to_check():
    assert len(TEACHING_PAGES) >= 15
    assert set(TEACHING_PAGES) <= set(NOTEBOOK_PAGES)


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_no_page_links_a_placeholder_host(site, page):
    soup = read(site, page)
    targets = [a.get("href", "") for a in soup.find_all("a")]
    targets += [tag.get("src", "") for tag in soup.find_all(["img", "script", "iframe"])]
    hosts = {re.sub(r"^[a-z]+://([^/:]+).*", r"\1", t) for t in targets if "://" in t}
    assert sorted(host for host in hosts if PLACEHOLDER_HOST.match(host)) == []


def describes(alt: str) -> bool:
    """Alt text that says something: words, not a file name, a path or a hash."""
    return len(alt.split()) >= 3 and not FILE_OR_HASH.search(alt)


def test_the_alt_text_check_tells_a_description_from_a_file_name():
    assert describes("Loss against step: it falls, then flattens.")
    assert not describes("")
    assert not describes("../_images/2bbd24ac6826e892761e1471b4e6d272.png")
    assert not describes("2bbd24ac6826e892761e1471b4e6d2724cd7bebba4")
    assert not describes("figure")


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_every_figure_says_what_it_shows(site, page):
    images = read(site, page).select("main img")
    undescribed = [img.get("src") for img in images if not describes(img.get("alt", ""))]
    assert undescribed == [], f"{page}: images without a description in their alt text"


@pytest.mark.parametrize(("page", "subject"), DIAGRAM_PAGES.items())
def test_diagrams_are_drawn_at_build_time(site, page, subject):
    diagrams = read(site, page).select("main img.graphviz")
    assert diagrams, f"{page} has no diagram of {subject}"
    for diagram in diagrams:
        assert (
            diagram["src"].endswith(".svg")
            and (site / page).parent.joinpath(diagram["src"]).resolve().is_file()
        )


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_no_glue_call_in_the_code_a_reader_sees(site, page):
    cells = [code for code in code_a_reader_sees(read(site, page)) if GLUE_CALL.search(code)]
    assert cells == [], f"{page}: move these glue calls into cells tagged remove-cell"


def test_the_private_name_check_finds_private_names():
    for code in (
        "from jax._src import clusters",
        "import jax._src.core",
        "from purenn import _transform",
        "from purenn._transform import transform",
        "from purenn.frames import _FRAMES",
        "purenn._transform.current_frame()",
    ):
        assert PRIVATE_NAME.search(code), code
    for code in ("from purenn import transform", "jax.tree_util.tree_map", "x._value = 1"):
        assert not PRIVATE_NAME.search(code), code


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_no_private_name_in_the_code_a_reader_sees(site, page):
    found = [
        match.group(0)
        for code in code_a_reader_sees(read(site, page))
        for match in PRIVATE_NAME.finditer(code)
    ]
    assert found == [], f"{page} teaches private names"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_an_error_shows_its_message_not_a_wall_of_traceback(site, page):
    soup = read(site, page)
    lengths = [
        len(div.get_text().strip().splitlines()) for div in soup.select("div.output.traceback")
    ]
    assert all(length <= LONGEST_TRACEBACK for length in lengths), (page, lengths)


@pytest.mark.parametrize("page", TEACHING_PAGES)
def test_every_lesson_links_the_jax_documentation_by_its_address(site, page):
    links = [
        a
        for a in read(site, page).select("main a.reference.external")
        if a.get("href", "").startswith("https://docs.jax.dev/")
    ]
    assert any(a.get_text().strip() == a["href"] for a in links), (
        f"{page} does not link the JAX documentation page on its topic by plain URL"
    )


def test_the_build_report_lists_every_library_the_pages_run(site):
    report = " ".join(
        div.get_text() for div in read(site, "reference/build-report").select("div.cell_output")
    )
    for package in ("jax", "jaxlib", "optax", "flax", "dm-haiku", "numpy", "sphinx"):
        assert re.search(rf"^{re.escape(package)}\s+\d+\.\d+", report, re.MULTILINE), package
