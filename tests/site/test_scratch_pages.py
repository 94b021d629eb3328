"""The from-scratch pages show tinyjax as it is and hold it up against JAX."""

import ast
import inspect
import pkgutil
import re

import pytest
from myst_nb.core.read import read_myst_markdown_notebook

import tinyjax
from tests.paths import DOCS, site_pages

pytestmark = pytest.mark.sources

SCRATCH_PAGES = [page for page in site_pages() if page.startswith("scratch/")]
JAX_TRANSFORM = re.compile(
    r"\bjax\.(?:jvp|vmap|jit|grad|vjp|linearize|make_jaxpr|linear_transpose)\("
)
SHOWS_PACKAGE_SOURCE = re.compile(
    r"^```\{literalinclude\} \.\./\.\./src/tinyjax/\w+\.py$|inspect\.getsource\(", re.MULTILINE
)


def package_functions() -> set[str]:
    """The names of the functions and classes the package defines, module by module."""
    names = set()
    for module_info in pkgutil.iter_modules(tinyjax.__path__, "tinyjax."):
        module = __import__(module_info.name, fromlist=["_"])
        for name, value in vars(module).items():
            if (inspect.isfunction(value) or inspect.isclass(value)) and (
                value.__module__ == module.__name__
            ):
                names.add(name)
    return names


def test_the_part_has_its_six_pages():
    assert len(SCRATCH_PAGES) == 6, SCRATCH_PAGES


@pytest.mark.parametrize("page", SCRATCH_PAGES)
def test_each_page_shows_the_package_source_not_a_copy(page):
    text = (DOCS / f"{page}.md").read_text()
    assert SHOWS_PACKAGE_SOURCE.search(text), f"{page} never shows tinyjax's own source"
    # A cell that defines a function the package also defines is a copy that can drift.
    copies = {
        node.name
        for cell in code_cells(text)
        for node in ast.parse(_without_magics(cell)).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in package_functions()
    }
    assert not copies, f"{page} re-defines {sorted(copies)} instead of including them"


@pytest.mark.parametrize("page", SCRATCH_PAGES)
def test_each_page_checks_tinyjax_against_jax_and_links_autodidax(page):
    text = (DOCS / f"{page}.md").read_text()
    cells = "\n".join(code_cells(text))
    assert JAX_TRANSFORM.search(cells), f"{page} never runs the JAX transform it rebuilds"
    assert "assert" in cells
    assert "https://docs.jax.dev/en/latest/autodidax.html" in text


def code_cells(text: str) -> list[str]:
    """The source of each code cell of a MyST notebook, as myst-nb reads it."""
    notebook = read_myst_markdown_notebook(text)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def _without_magics(cell: str) -> str:
    """The cell's Python, IPython magics removed."""
    return "\n".join(line for line in cell.splitlines() if not line.lstrip().startswith("%"))
