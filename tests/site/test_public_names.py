"""Pages import only public names, in every cell: the ones a reader sees and the hidden checks.

A page that reaches into ``purenn._transform`` or ``jax._src`` breaks when that private code
moves, and teaches a reader to do the same. The built-HTML check in test_reader_view covers
the code a reader sees; this one reads the page sources, so hidden cells count too.
"""

from pathlib import Path

import jupytext
import pytest

from tests.site.test_reader_view import PRIVATE_NAME

pytestmark = pytest.mark.sources

DOCS = Path(__file__).resolve().parents[2] / "docs"
NOTEBOOKS = sorted(
    path
    for path in DOCS.rglob("*.md")
    if "_build" not in path.parts and "```{code-cell}" in path.read_text()
)


def private_names(path: Path) -> list[str]:
    notebook = jupytext.read(path, fmt="md:myst")
    return [
        f"cell {index}: {match.group(0)}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for match in PRIVATE_NAME.finditer(cell.source)
    ]


def test_the_pages_are_found():
    assert len(NOTEBOOKS) >= 20, [path.name for path in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: str(path.relative_to(DOCS)))
def test_no_cell_imports_a_private_name(path):
    assert private_names(path) == [], f"{path.relative_to(DOCS)} imports private names"


def test_the_check_reads_hidden_cells(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "---\nfile_format: mystnb\nkernelspec:\n  name: python3\n  display_name: Python 3\n"
        "---\n\n# A page\n\n"
        "```{code-cell} ipython3\n:tags: [remove-cell]\n\nfrom purenn import _transform\n```\n"
    )
    assert private_names(page) == ["cell 1: from purenn import _transform"]
