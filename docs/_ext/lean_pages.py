"""Keep every page light: what a page does not use, it does not load.

- The theme's stylesheet embeds an icon web font and ~4,000 icon rules; the site draws the
  few icons it shows itself (``_static/icons.css``), so those rules and fonts are removed from
  the built stylesheet.
- sphinx-design's stylesheet and script are only linked from pages that use its components.
- Images in cell outputs load lazily, so a page with many figures costs little until read.
- Script files run deferred, after the page is parsed, so none holds up the first paint. The
  exceptions: ``documentation_options.js``, which the inline settings after it extend, and
  the search page, whose own search scripts call ``doctools.js`` as soon as they load.
- Stylesheets lose the rules whose classes or ids appear in no page and in no script (most of
  Bootstrap's utilities, for one). Scripts are scanned word by word, so a class a script adds
  at run time keeps its rules.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.builders.html._assets import _JavaScript

THEME_STYLESHEET = Path("_static") / "styles" / "pydata-sphinx-theme.css"
ICON_FONT_FOLDER = Path("_static") / "vendor" / "fontawesome"
ICON_CLASS = re.compile(r"\.(?:fa|fas|fab|far|fa-[a-z0-9-]+)(?![a-z0-9-])")
IMG_WITHOUT_LOADING = re.compile(r"<img(?![^>]*\sloading=)")
SELECTOR_NAME = re.compile(r"[.#]((?:\\.|[A-Za-z0-9_-])+)")
COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
LICENSE_NOTICE = re.compile(r"/\*!.*?\*/", re.DOTALL)
GROUPING_AT_RULES = ("@media", "@supports", "@layer", "@container")
NEEDED_BY_INLINE_SCRIPTS = {"_static/documentation_options.js"}


def split_rules(css: str) -> list[str]:
    """Split a stylesheet into its top-level rules and at-rules, keeping nested blocks whole."""
    rules, depth, start, quote = [], 0, 0, ""
    for index, char in enumerate(css):
        if quote:
            quote = "" if char == quote and css[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                rules.append(css[start : index + 1])
                start = index + 1
        elif char == ";" and depth == 0:
            rules.append(css[start : index + 1])
            start = index + 1
    rules.append(css[start:])
    return rules


def is_icon_font_rule(rule: str) -> bool:
    """True for the icon font's own rules: its @font-face, and rules that only style icons."""
    head = rule.split("{", 1)[0].strip()
    if head.startswith("@font-face"):
        return "Font Awesome" in rule
    if head.startswith("@") or "{" not in rule:
        return False
    selectors = [s.strip() for s in head.split(",")]
    if all(ICON_CLASS.search(s) for s in selectors):
        return True
    body = rule.split("{", 1)[1]
    # Custom properties that exist only to feed the icon font.
    return bool(re.fullmatch(r"\s*(--fa[\w-]*:[^;]*;?\s*)+}\s*", body))


def trim_stylesheet(css: str, used: set[str], *, icon_font: bool = False) -> str:
    """Drop unused rules (and, with ``icon_font``, the icon font's) from ``css``.

    Comments are removed first, since a rule's text is split at commas and braces and a
    comment cut in two would swallow the rest of the file; license notices (``/*! ... */``)
    are kept at the top.
    """
    notices = dict.fromkeys(LICENSE_NOTICE.findall(css))
    rules = split_rules(COMMENT.sub("", css))
    if icon_font:
        rules = [rule for rule in rules if not is_icon_font_rule(rule)]
    return "".join(f"{notice}\n" for notice in notices) + purge_unused_rules("".join(rules), used)


def names_in_use(outdir: Path) -> set[str]:
    """Every class and id in the built pages, and every word in the site's scripts."""
    names: set[str] = set()
    for page in outdir.rglob("*.html"):
        html = page.read_text(encoding="utf8", errors="ignore")
        for classes in re.findall(r'class="([^"]*)"', html):
            names.update(classes.split())
        names.update(re.findall(r'id="([^"]*)"', html))
    for script in outdir.rglob("*.js"):
        names.update(re.findall(r"[A-Za-z0-9_-]+", script.read_text(errors="ignore")))
    return names


def purge_unused_rules(css: str, used: set[str]) -> str:
    """Drop the selectors of ``css`` that name a class or id outside ``used``."""

    def selector_in_use(selector: str) -> bool:
        selector = re.sub(r"\([^)]*\)", "", selector)  # the insides of :not(), :is(), ...
        return all(name.replace("\\", "") in used for name in SELECTOR_NAME.findall(selector))

    kept = []
    for rule in split_rules(css):
        if "{" not in rule:
            kept.append(rule)
            continue
        head, body = rule.split("{", 1)
        if head.strip().startswith(GROUPING_AT_RULES):
            inner = purge_unused_rules(body.rsplit("}", 1)[0], used)
            if inner.strip():
                kept.append(f"{head}{{{inner}}}")
        elif head.strip().startswith("@"):
            kept.append(rule)
        elif selectors := [s for s in head.split(",") if selector_in_use(s)]:
            kept.append(",".join(selectors) + "{" + body)
    return "".join(kept)


def trim_theme_assets(app: Sphinx, exception: Exception | None) -> None:
    """After an HTML build, drop the icon font and every unused rule from the stylesheets.

    Every build starts from the original stylesheets (see forget_trimmed_stylesheets), so a
    page added later gets the rules it needs.
    """
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    shutil.rmtree(outdir / ICON_FONT_FOLDER, ignore_errors=True)
    used = names_in_use(outdir)
    for stylesheet in (outdir / "_static").rglob("*.css"):
        css = stylesheet.read_text(encoding="utf8")
        is_theme = stylesheet == outdir / THEME_STYLESHEET
        stylesheet.write_text(trim_stylesheet(css, used, icon_font=is_theme), encoding="utf8")


def forget_trimmed_stylesheets(app: Sphinx) -> None:
    """Remove last build's trimmed stylesheets, so every extension copies its original again.

    Some extensions copy their stylesheet only when the destination is absent, and warn
    (failing a `-W` build) when it holds other content, as a trimmed copy does.
    """
    static = Path(app.outdir) / "_static"
    if app.builder.format == "html" and static.is_dir():
        for stylesheet in static.rglob("*.css"):
            stylesheet.unlink()


def trim_page(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Unlink sphinx-design from pages without its components; defer scripts; lazy images."""
    body = context.get("body", "")
    # In place: these lists are the builder's own, which it restores after each page.
    css_files, script_files = context.get("css_files", []), context.get("script_files", [])
    if "sd-" not in body:
        css_files[:] = [css for css in css_files if "sphinx-design" not in str(css)]
        script_files[:] = [js for js in script_files if "design-tabs" not in str(js)]
    if templatename != "search.html":
        script_files[:] = [deferred(js) for js in script_files]
    if body:
        context["body"] = IMG_WITHOUT_LOADING.sub('<img loading="lazy" decoding="async"', body)


def deferred(script: _JavaScript) -> _JavaScript:
    """The same script, deferred, if it is a file that no inline script needs at once.

    >>> deferred(_JavaScript("_static/doctools.js")).attributes
    {'defer': 'defer'}
    >>> deferred(_JavaScript("_static/documentation_options.js")).attributes
    {}
    """
    name = str(script.filename or "")
    attributes = script.attributes
    if not name or name in NEEDED_BY_INLINE_SCRIPTS or {"async", "defer"} & attributes.keys():
        return script
    return _JavaScript(script.filename, priority=script.priority, **attributes, defer="defer")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the page-trimming hooks."""
    app.add_css_file("icons.css")
    app.connect("html-page-context", trim_page)
    app.connect("builder-inited", forget_trimmed_stylesheets, priority=100)
    app.connect("build-finished", trim_theme_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
