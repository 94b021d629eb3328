"""Typeset math at build time with KaTeX, so pages ship HTML and MathML instead of a script.

KaTeX's JavaScript runs inside QuickJS (an embedded engine from PyPI), once per build. A
formula KaTeX cannot parse is reported as a warning naming the page, the line and the LaTeX,
which fails the build (`-W`). Pages with math link KaTeX's stylesheet and fonts; pages
without math load nothing for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import quickjs
from docutils import nodes
from sphinx.application import Sphinx
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

KATEX_SOURCE = Path(__file__).parent / "katex" / "katex.min.js"
STYLESHEET = "katex/katex.min.css"
logger = logging.getLogger(__name__)


def make_typesetter() -> Callable[[str, bool], str]:
    """Load KaTeX into a fresh QuickJS context; return ``typeset(latex, display) -> html``."""
    context = quickjs.Context()
    context.eval(KATEX_SOURCE.read_text(encoding="utf8"))

    def typeset(latex: str, display: bool) -> str:
        options = {"displayMode": display, "throwOnError": True, "output": "htmlAndMathml"}
        call = f"katex.renderToString({json.dumps(latex)}, {json.dumps(options)})"
        return context.eval(call)

    return typeset


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the build-time KaTeX renderer as ``katex_prerender``."""
    typesetters: list[Callable[[str, bool], str]] = []

    def typeset(node: nodes.Element, latex: str, display: bool) -> str:
        if not typesetters:  # KaTeX loads once, and only in builds that meet math
            typesetters.append(make_typesetter())
        try:
            return typesetters[0](latex, display)
        except quickjs.JSException as error:
            logger.warning("KaTeX cannot typeset %r: %s", latex, error, location=node)
            return f"<code>{nodes.Text(latex).astext()}</code>"

    def visit_inline(self: Any, node: nodes.math) -> None:
        html = typeset(node, node.astext(), display=False)
        self.body.append(f'<span class="math notranslate nohighlight">{html}</span>')
        raise nodes.SkipNode

    def visit_block(self: Any, node: nodes.math_block) -> None:
        self.body.append(self.starttag(node, "div", CLASS="math notranslate nohighlight"))
        if node["number"]:
            number = get_node_equation_number(self, node)
            self.body.append(f'<span class="eqno">({number})')
            self.add_permalink_ref(node, _("Link to this equation"))
            self.body.append("</span>")
        latex = node.astext()
        if not node.get("nowrap"):
            parts = [part for part in latex.split("\n\n") if part.strip()]
            if len(parts) > 1:  # several equations in one block, aligned like Sphinx does
                latex = "\\begin{aligned}" + "\\\\".join(parts) + "\\end{aligned}"
        html = typeset(node, latex, display=True)
        # A wide formula scrolls sideways; keyboard users need to be able to focus it to do so.
        html = html.replace(
            '<span class="katex-display">', '<span class="katex-display" tabindex="0">', 1
        )
        self.body.append(html)
        self.body.append("</div>\n")
        raise nodes.SkipNode

    def link_stylesheet(
        app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
    ) -> None:
        if 'class="katex' in context.get("body", ""):
            app.add_css_file(STYLESHEET)

    app.add_html_math_renderer("katex_prerender", (visit_inline, None), (visit_block, None))
    app.connect("html-page-context", link_stylesheet)
    # A parallel write forks workers that each typeset their own pages: KaTeX keeps no state
    # between formulas, and a stylesheet added while a page is written goes on that page only.
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
