"""Page fixes for readers who use assistive technology.

- myst-nb labels the toggle of a hidden code cell "Toggle hidden content", while the words on
  screen are "Show code cell source". A reader who operates the page by voice says what they
  see, which then matches no control (WCAG 2.5.3, label in name). Without the label, the
  toggle's name is its visible text.
- The theme's sidebar folds the pages under a page (the API's modules, say) behind a chevron
  whose ``<summary>`` holds no text, so a screen reader announces a nameless control. Each
  gets a name read to screen readers only: the section it opens. The theme builds the
  sidebar inside its own template function, with no event for its HTML, so the site's
  override of the sidebar template (``docs/_templates/sbt-sidebar-nav.html``) renders the
  theme's template and hands the result to ``name_sidebar_folds``.
"""

from __future__ import annotations

from typing import Any

from bs4 import BeautifulSoup
from sphinx.application import Sphinx

LABEL_HIDING_VISIBLE_TEXT = '<summary aria-label="Toggle hidden content">'


def name_toggles_by_their_text(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Let each hidden-cell toggle be named by the text it shows."""
    body = context.get("body", "")
    if LABEL_HIDING_VISIBLE_TEXT in body:
        context["body"] = body.replace(LABEL_HIDING_VISIBLE_TEXT, "<summary>")


def name_sidebar_toggles(sidebar: BeautifulSoup) -> BeautifulSoup:
    """Give each textless fold of ``sidebar`` a screen-reader name: the pages it shows.

    >>> sidebar = BeautifulSoup(
    ...     '<li><a href="api.html">API</a><details><summary></summary></details></li>',
    ...     "html.parser",
    ... )
    >>> name_sidebar_toggles(sidebar).summary
    <summary><span class="visually-hidden">Pages under API</span></summary>
    """
    for summary in sidebar.select("li > details > summary"):
        link = summary.parent.find_previous_sibling("a")
        if link is None or summary.get_text(strip=True):
            continue
        name = sidebar.new_tag("span", attrs={"class": "visually-hidden"})
        name.string = f"Pages under {link.get_text(strip=True)}"
        summary.insert(0, name)
    return sidebar


def name_sidebar_folds(sidebar_html: str) -> str:
    """The sidebar's HTML with a screen-reader name in each fold that shows no text.

    The override of the theme's sidebar template (``docs/_templates/sbt-sidebar-nav.html``)
    calls this on what the theme's template wrote.

    >>> fold = '<li><a href="api.html">API</a><details><summary></summary></details></li>'
    >>> "Pages under API</span></summary>" in name_sidebar_folds(fold)
    True
    """
    return str(name_sidebar_toggles(BeautifulSoup(sidebar_html, "html.parser")))


def offer_sidebar_naming(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Give the sidebar template the function that names its folds."""
    context["name_sidebar_folds"] = name_sidebar_folds


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the page fixes."""
    app.connect("html-page-context", name_toggles_by_their_text)
    app.connect("html-page-context", offer_sidebar_naming)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
