"""Mark every output that holds a timing, so two builds can be compared byte for byte.

A code cell that measures time carries the tag ``timing`` (``TIMING_TAG``); myst-nb renders it
as the class ``tag_timing`` on the cell. A value such a cell glues, pasted into prose with
``{glue:text}``, gets the class ``timing`` here. Everything else on a page must come out the
same in every build, and ``benchmarks/reproducible.py`` checks that it does, skipping only
these outputs.

The glued values lose their cell when myst-nb extracts them, so the cells they came from are
read from the executed notebook that jupyter-cache keeps.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from jupyter_cache import get_cache
from myst_nb.ext.glue.roles import PasteTextRole
from nbformat import NotebookNode
from sphinx.application import Sphinx
from sphinx.config import Config

TIMING_TAG = "timing"
# The class of a glued value that a timing cell computed.
TIMING_CLASS = "timing"


def timing_glue_keys(notebook: NotebookNode) -> set[str]:
    """The names glued by the cells tagged ``timing`` in an executed notebook.

    >>> import nbformat.v4 as nbf
    >>> glued = nbf.new_output(
    ...     "display_data", data={"text/plain": "'3 ms'"},
    ...     metadata={"scrapbook": {"name": "first_call"}})
    >>> timed = nbf.new_code_cell("...", outputs=[glued], metadata={"tags": ["timing"]})
    >>> other = nbf.new_code_cell("...", outputs=[glued], metadata={"tags": []})
    >>> sorted(timing_glue_keys(nbf.new_notebook(cells=[timed])))
    ['first_call']
    >>> timing_glue_keys(nbf.new_notebook(cells=[other]))
    set()
    """
    keys = set()
    for cell in notebook.cells:
        if TIMING_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook:
                keys.add(scrapbook["name"])
    return keys


def executed_timing_keys(document: nodes.document, cache_path: str) -> set[str]:
    """The timing cells' glue names of the page being read, looked up once per page."""
    if "timing_glue_keys" not in document:
        keys: set[str] = set()
        renderer = document.get("nb_renderer")
        if renderer is not None:
            try:
                _, executed = get_cache(cache_path).merge_match_into_notebook(
                    renderer.renderer.nb_client.notebook
                )
            except KeyError:
                # Not in the cache: the page failed, and its error already fails the build.
                executed = None
            if executed is not None:
                keys = timing_glue_keys(executed)
        document["timing_glue_keys"] = keys
    return document["timing_glue_keys"]


class PasteTimedText(PasteTextRole):
    """``{glue:text}``, with the class ``timing`` on a value that a timing cell glued."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        pasted, messages = super().run()
        key = self.text.rsplit(":", 1)[0] if ":" in self.text else self.text
        config = self.document.settings.env.config
        if config.nb_execution_mode == "cache" and key in executed_timing_keys(
            self.document, config.nb_execution_cache_path
        ):
            for node in pasted:
                if isinstance(node, nodes.Element):
                    node["classes"].append(TIMING_CLASS)
        return pasted, messages


def replace_glue_text_role(app: Sphinx, config: Config) -> None:
    """Put ``PasteTimedText`` in place of myst-nb's ``{glue:text}``."""
    app.add_role_to_domain("glue", "text", PasteTimedText(), override=True)


def setup(app: Sphinx) -> dict[str, Any]:
    """Replace myst-nb's ``{glue:text}`` role with the one that marks timings."""
    # myst-nb registers the glue domain in its own setup, which may come after this one;
    # config-inited comes after every extension's setup.
    app.connect("config-inited", replace_glue_text_role)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
