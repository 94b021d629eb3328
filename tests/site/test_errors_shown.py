"""Errors a page shows on purpose: each names the exception it raises, raises it, and shows it.

A cell tagged ``raises-exception`` declares, in its ``raises`` metadata, the qualified name of
the exception JAX (or Python) raises there. The build lets such a cell raise anything, or
nothing; these tests hold it to its word, on the executed notebook and on the page.
"""

import importlib

import nbformat
import pytest
from bs4 import BeautifulSoup

from tests.paths import notebook_pages

pytestmark = pytest.mark.built

NOTEBOOK_PAGES = notebook_pages()
RAISES_TAG = "raises-exception"


def resolve(qualified_name: str) -> type[BaseException]:
    """The exception class a ``raises`` entry names: ``TypeError`` or ``jax.errors.X``."""
    module_name, _, class_name = qualified_name.rpartition(".")
    module = importlib.import_module(module_name or "builtins")
    found = getattr(module, class_name, None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise LookupError(f"{qualified_name!r} does not name an exception class")
    return found


def raising_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code" and RAISES_TAG in cell.metadata.get("tags", [])
    ]


def error_names(cell: nbformat.NotebookNode) -> list[str]:
    return [out.ename for out in cell.get("outputs", []) if out.output_type == "error"]


def test_the_name_check_finds_classes_and_refuses_what_is_not_one():
    import jax

    assert resolve("TypeError") is TypeError
    assert resolve("jax.errors.TracerBoolConversionError") is jax.errors.TracerBoolConversionError
    with pytest.raises(LookupError):
        resolve("jax.numpy.zeros")
    with pytest.raises(ModuleNotFoundError):
        resolve("jax.no_such_module.Error")


def test_some_pages_show_errors_on_purpose(site):
    notebooks = [nbformat.read(site / "_sources" / f"{p}.ipynb", 4) for p in NOTEBOOK_PAGES]
    assert sum(len(raising_cells(nb)) for nb in notebooks) >= 13


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_every_error_shown_is_the_one_its_cell_names(site, page):
    notebook = nbformat.read(site / "_sources" / f"{page}.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and error_names(cell):
            assert RAISES_TAG in cell.metadata.get("tags", []), f"{page}: untagged error"
    cells = raising_cells(notebook)
    soup = BeautifulSoup((site / f"{page}.html").read_text(encoding="utf8"), "html.parser")
    shown = soup.select(f"div.cell.tag_{RAISES_TAG}")
    assert len(shown) == len(cells), f"{page}: a cell that raises on purpose is hidden"
    for cell, div in zip(cells, shown, strict=True):
        first_line = cell.source.splitlines()[0]
        declared = cell.metadata.get("raises")
        assert declared, f"{page}: {first_line!r} is tagged {RAISES_TAG} but names no `raises`"
        expected = resolve(declared).__name__
        raised = error_names(cell)
        assert raised == [expected], f"{page}: {first_line!r} raised {raised}, not {expected}"
        output = div.select_one("div.cell_output")
        assert output is not None and f"{expected}:" in output.get_text(), (
            f"{page}: {first_line!r} does not show {expected} to the reader"
        )
