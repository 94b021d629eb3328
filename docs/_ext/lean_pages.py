"""Keep every page light: what a page does not use, it does not load, and what it loads waits.

- sphinx-design's stylesheet and script are only linked from pages that use its components,
  and Graphviz's stylesheet only from pages with a diagram.
- Images in cell outputs load lazily, so a page with many figures costs little until read.
- Script files run deferred, after the page is parsed, so none holds up the first paint. The
  exceptions: ``documentation_options.js``, which the inline settings after it extend, and
  the search page, whose own search scripts call ``doctools.js`` as soon as they load.
"""

from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx

IMG_WITHOUT_LOADING = re.compile(r"<img(?![^>]*\sloading=)")
STATIC = "_static/"
NEEDED_BY_INLINE_SCRIPTS = {"_static/documentation_options.js"}


def should_defer(filename: str, attributes: dict[str, str]) -> bool:
    """Whether a page's script (its ``filename``, or "" inline) can wait until it is parsed.

    An inline script cannot, nor a file that an inline script needs at once, nor a script
    that already chose how to load.

    >>> should_defer("_static/doctools.js", {})
    True
    >>> should_defer("_static/documentation_options.js", {})
    False
    >>> should_defer("", {"body": "var x = 1;"}), should_defer("_static/a.js", {"async": "async"})
    (False, False)
    """
    return (
        filename.startswith(STATIC)
        and filename not in NEEDED_BY_INLINE_SCRIPTS
        and not {"async", "defer"} & attributes.keys()
    )


def is_addable(filename: str) -> bool:
    """Whether ``app.add_js_file`` can name this script again: a URL, or a file in _static.

    >>> is_addable("_static/doctools.js"), is_addable("https://example.org/a.js")
    (True, True)
    >>> is_addable("searchindex.js")
    False
    """
    return filename.startswith(STATIC) or "://" in filename


def defer_scripts(app: Sphinx, script_files: list[Any]) -> None:
    """Load this page's script files deferred, in the order and priority they had.

    Sphinx offers no way to change how a registered script loads, but a script added while a
    page is written goes on that page only. So every script is taken off the page's list and
    added again in turn, the deferrable ones with ``loading_method="defer"``, which keeps their
    order among the scripts that stay as they were.
    """
    scripts = [(str(script.filename or ""), script) for script in script_files]
    if strays := [name for name, _ in scripts if name and not is_addable(name)]:
        raise ValueError(
            f"cannot defer the scripts of a page that lists {strays[0]!r}, a local file outside "
            f"{STATIC}: register it with app.add_js_file (or html_js_files) instead"
        )
    script_files.clear()
    for filename, script in scripts:
        defer = should_defer(filename, script.attributes)
        app.add_js_file(
            filename.removeprefix(STATIC) or None,
            priority=script.priority,
            loading_method="defer" if defer else None,
            **script.attributes,
        )


def trim_page(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Unlink what a page does not use (sphinx-design, Graphviz); defer scripts; lazy images."""
    body = context.get("body", "")
    # In place: these lists are the builder's own, which it restores after each page.
    css_files, script_files = context.get("css_files", []), context.get("script_files", [])
    if "sd-" not in body:
        css_files[:] = [css for css in css_files if "sphinx-design" not in str(css)]
        script_files[:] = [js for js in script_files if "design-tabs" not in str(js)]
    if 'class="graphviz' not in body:
        css_files[:] = [css for css in css_files if "graphviz.css" not in str(css)]
    if templatename != "search.html":
        defer_scripts(app, script_files)
    if body:
        context["body"] = IMG_WITHOUT_LOADING.sub('<img loading="lazy" decoding="async"', body)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the page-trimming hook."""
    app.connect("html-page-context", trim_page)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
