"""Trim the built stylesheets to the rules some page or script can use.

- The theme's stylesheet embeds an icon web font and ~4,000 icon rules; the site draws the
  few icons it shows itself (``_static/icons.css``), so those rules and fonts are removed from
  the built stylesheet.
- Stylesheets lose the selectors whose classes or ids appear in no page and in no script (most
  of Bootstrap's utilities, for one). Scripts are scanned word by word, so a class a script
  adds at run time keeps its rules. The stylesheets are read with a real CSS parser
  (tinycss2), so a selector list is split only at its own commas, never at those inside
  ``:is(...)`` or ``:not(...)``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import tinycss2
from sphinx.application import Sphinx
from tinycss2.ast import Node, QualifiedRule

THEME_STYLESHEET = Path("_static") / "styles" / "pydata-sphinx-theme.css"
ICON_FONT_FOLDER = Path("_static") / "vendor" / "fontawesome"
ICON_CLASSES = {"fa", "fas", "fab", "far"}
GROUPING_AT_RULES = {"media", "supports", "layer", "container"}


def selectors_of(rule: QualifiedRule) -> list[list[Node]]:
    """The selectors of a rule's selector list, split at its top-level commas only.

    A comma inside ``:is(...)`` or ``:not(...)`` is part of a function token, not a separator.
    """
    selectors: list[list[Node]] = [[]]
    for token in rule.prelude:
        if token.type == "literal" and token.value == ",":
            selectors.append([])
        else:
            selectors[-1].append(token)
    return selectors


def names_in_selector(selector: list[Node]) -> set[str]:
    """The classes and ids a selector requires, outside its functions (``:not()``, ``:is()``)."""
    names = set()
    for before, token in zip([None, *selector], selector, strict=False):
        if token.type == "ident" and before is not None and before.type == "literal":
            if before.value == ".":
                names.add(token.value)
        elif token.type == "hash" and token.is_identifier:
            names.add(token.value)
    return names


def is_icon_font_rule(rule: Node) -> bool:
    """True for the icon font's own rules: its @font-face, and rules that only style icons."""
    if rule.type == "at-rule":
        return rule.lower_at_keyword == "font-face" and "Font Awesome" in tinycss2.serialize(
            rule.content or []
        )
    if rule.type != "qualified-rule":
        return False
    if all(
        any(name in ICON_CLASSES or name.startswith("fa-") for name in names_in_selector(s))
        for s in selectors_of(rule)
    ):
        return True
    declarations = [
        node
        for node in tinycss2.parse_blocks_contents(rule.content, skip_whitespace=True)
        if node.type != "comment"
    ]
    # Custom properties that exist only to feed the icon font.
    return bool(declarations) and all(
        node.type == "declaration" and node.name.startswith("--fa") for node in declarations
    )


def parse_rules(css: str | list[Node]) -> list[Node]:
    """The rules of a stylesheet (or of a block's contents), comments and whitespace dropped."""
    parse = tinycss2.parse_stylesheet if isinstance(css, str) else tinycss2.parse_rule_list
    rules = parse(css, skip_comments=True, skip_whitespace=True)
    if errors := [rule for rule in rules if rule.type == "error"]:
        raise ValueError(
            f"the stylesheet trim cannot parse this CSS ({errors[0].message}, line "
            f"{errors[0].source_line}); fix the stylesheet, or exclude it from the trim"
        )
    return rules


def trim_stylesheet(css: str, used: set[str] | None, *, icon_font: bool = False) -> str:
    """Drop unused rules (and, with ``icon_font``, the icon font's) from ``css``.

    With ``used`` None, every rule counts as used: only the icon font's rules go.
    License notices (``/*! ... */``) are kept, at the top; other comments are dropped.

    >>> trim_stylesheet("a:is(.x, .y)::after, .gone { color: red }", {"x"})
    'a:is(.x, .y)::after{ color: red }'
    """
    notices = [
        f"/*{node.value}*/\n"
        for node in tinycss2.parse_stylesheet(css)
        if node.type == "comment" and node.value.startswith("!")
    ]
    rules = parse_rules(css)
    if icon_font:
        rules = [rule for rule in rules if not is_icon_font_rule(rule)]
    return "".join(dict.fromkeys(notices)) + purge_unused_rules(rules, used)


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


def purge_unused_rules(rules: list[Node], used: set[str] | None) -> str:
    """Serialize ``rules`` without the selectors that name a class or id outside ``used``."""
    kept = []
    for rule in rules:
        if rule.type == "at-rule" and rule.lower_at_keyword in GROUPING_AT_RULES and rule.content:
            inner = purge_unused_rules(parse_rules(rule.content), used)
            if inner:
                kept.append(f"@{rule.at_keyword}{tinycss2.serialize(rule.prelude)}{{{inner}}}")
        elif rule.type == "qualified-rule":
            selectors = [
                tinycss2.serialize(selector).strip()
                for selector in selectors_of(rule)
                if used is None or names_in_selector(selector) <= used
            ]
            if selectors:
                kept.append(",".join(selectors) + "{" + tinycss2.serialize(rule.content) + "}")
        else:
            kept.append(rule.serialize())
    return "".join(kept)


def untrimmed_stylesheets(outdir: Path) -> Path:
    """Where the build keeps the stylesheets as they were before the trim, beside the site.

    They have lost only the icon font's rules; the browser tests lay every page out with these
    and with the trimmed ones, and compare.

    >>> untrimmed_stylesheets(Path("_build/html")).as_posix()
    '_build/html-untrimmed-css'
    """
    return outdir.with_name(f"{outdir.name}-untrimmed-css")


def trim_theme_assets(app: Sphinx, exception: Exception | None) -> None:
    """After an HTML build, drop the icon font and every unused rule from the stylesheets.

    Every build starts from the original stylesheets (see forget_trimmed_stylesheets), so a
    page added later gets the rules it needs. The originals are kept beside the site (see
    untrimmed_stylesheets), out of what is published.
    """
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    shutil.rmtree(outdir / ICON_FONT_FOLDER, ignore_errors=True)
    used = names_in_use(outdir)
    originals = untrimmed_stylesheets(outdir)
    shutil.rmtree(originals, ignore_errors=True)
    for stylesheet in (outdir / "_static").rglob("*.css"):
        css = stylesheet.read_text(encoding="utf8")
        is_theme = stylesheet == outdir / THEME_STYLESHEET
        original = originals / stylesheet.relative_to(outdir / "_static")
        original.parent.mkdir(parents=True, exist_ok=True)
        original.write_text(trim_stylesheet(css, None, icon_font=is_theme), encoding="utf8")
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


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the stylesheet trim, and the site's own icons that replace the icon font."""
    app.add_css_file("icons.css")
    app.connect("builder-inited", forget_trimmed_stylesheets, priority=100)
    app.connect("build-finished", trim_theme_assets)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
