"""Diagrams drawn by Graphviz at build time, each an SVG image with the alt text it was given.

A page writes a diagram as a ``graphviz`` directive (``sphinx.ext.graphviz``) with an ``:alt:``
that says what it shows. Sphinx puts SVG diagrams in an ``<object>``, whose fallback text a
screen reader does not announce as the image's name; here each becomes an ``<img>`` instead,
named by its alt text and loaded lazily like every other image. A diagram without ``:alt:``
fails the build, and so does a machine without Graphviz's ``dot``, with how to install it.
"""

from __future__ import annotations

import shutil
from html import escape
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.ext.graphviz import GraphvizError, graphviz, render_dot
from sphinx.util import logging
from sphinx.writers.html5 import HTML5Translator

logger = logging.getLogger(__name__)


def visit_graphviz_as_image(translator: HTML5Translator, node: graphviz) -> None:
    """Write the diagram as ``<img src="....svg" alt="...">``."""
    alt = node.get("alt", "").strip()
    if not alt:
        logger.warning(
            "a diagram has no alt text: give its graphviz directive an `:alt:` option that "
            "says what the diagram shows",
            location=node,
        )
    try:
        image_path, svg_file = render_dot(translator, node["code"], node["options"], "svg")
    except GraphvizError as error:
        logger.warning("Graphviz could not draw a diagram: %s", error, location=node)
        raise nodes.SkipNode from error
    classes = " ".join(["graphviz", *node.get("classes", [])])
    width, height = svg_size(svg_file)
    # The size lets the browser keep the diagram's space before the lazily loaded image
    # arrives, so the text below it does not jump.
    translator.body.append(
        f'<img src="{image_path.as_posix()}" alt="{escape(alt)}" class="{classes}" '
        f'width="{width}" height="{height}" />\n'
    )
    raise nodes.SkipNode


def svg_size(svg_file: str | Path | IO[str]) -> tuple[int, int]:
    """The width and height in CSS pixels of an SVG that Graphviz drew (it writes points).

    >>> from io import StringIO
    >>> svg_size(StringIO('<svg xmlns="http://www.w3.org/2000/svg" width="75pt" height="30pt"/>'))
    (100, 40)
    """
    root = ElementTree.parse(svg_file).getroot()
    return tuple(
        round(float(root.get(side).removesuffix("pt")) * 96 / 72) for side in ("width", "height")
    )


def require_dot(app: Sphinx) -> None:
    """Stop at once, with the fix, when Graphviz is not installed."""
    if app.builder.format == "html" and shutil.which(app.config.graphviz_dot) is None:
        raise ExtensionError(
            f"Graphviz's `{app.config.graphviz_dot}` was not found, and the site's diagrams "
            "are drawn with it at build time. Install it (Debian: `apt-get install graphviz`) "
            "and run the build again."
        )


def setup(app: Sphinx) -> dict[str, Any]:
    """Register Graphviz diagrams drawn as accessible SVG images."""
    app.setup_extension("sphinx.ext.graphviz")
    app.add_node(graphviz, override=True, html=(visit_graphviz_as_image, None))
    app.connect("builder-inited", require_dot)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
