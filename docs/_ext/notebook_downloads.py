"""Offer each executed page as its ``.ipynb`` download, with the outputs the reader sees.

myst-nb writes the notebook it parsed; when a page's outputs came from jupyter-cache they
were merged into a copy, so the download takes them from the cache, where every executed run
lives. A page the cache has no run of is reported as a warning, which fails the build (`-W`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from jupyter_cache import get_cache
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def executed_notebook(outdir: Path, pagename: str) -> Path:
    """Where myst-nb writes the notebook it executed for a page, beside the HTML folder.

    >>> executed_notebook(Path("_build/html"), "intro/what").as_posix()
    '_build/jupyter_execute/intro/what.ipynb'
    """
    return outdir.parent / "jupyter_execute" / f"{pagename}.ipynb"


def publish_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Offer the executed notebook of a text page as its ``.ipynb`` download."""
    executed = executed_notebook(Path(app.outdir), pagename)
    if doctree is None or not executed.exists():
        return
    notebook = nbformat.read(executed, as_version=4)
    if app.config.nb_execution_mode == "cache":
        try:
            _, notebook = get_cache(app.config.nb_execution_cache_path).merge_match_into_notebook(
                notebook
            )
        except KeyError:
            logger.warning("no executed notebook in the cache for %s", pagename)
    # Reading a text notebook gives each cell a random id; numbered, two builds write the same.
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the notebook download."""
    # Before the theme builds its header buttons (priority 501), so they see the notebook.
    app.connect("html-page-context", publish_notebook, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
