"""Keep every page light: what a page does not use, it does not load.

- The theme's stylesheet embeds an icon web font and ~4,000 icon rules; the site draws the
  few icons it shows itself (``_static/icons.css``), so those rules and fonts are removed from
  the built stylesheet.
- sphinx-design's stylesheet and script are only linked from pages that use its components.
- Images in cell outputs load lazily, so a page with many figures costs little until read.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

THEME_STYLESHEET = Path("_static") / "styles" / "pydata-sphinx-theme.css"
ICON_FONT_FOLDER = Path("_static") / "vendor" / "fontawesome"
ICON_CLASS = re.compile(r"\.(?:fa|fas|fab|far|fa-[a-z0-9-]+)(?![a-z0-9-])")
IMG_WITHOUT_LOADING = re.compile(r"<img(?![^>]*\sloading=)")


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


def strip_icon_font(stylesheet: Path) -> int:
    """Remove the icon font's rules from ``stylesheet``; return how many bytes that saved."""
    css = stylesheet.read_text(encoding="utf8")
    kept = "".join(rule for rule in split_rules(css) if not is_icon_font_rule(rule))
    stylesheet.write_text(kept, encoding="utf8")
    return len(css) - len(kept)


def trim_theme_assets(app: Sphinx, exception: Exception | None) -> None:
    """After an HTML build, drop the icon font from the theme's stylesheet and output."""
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    if (outdir / THEME_STYLESHEET).exists():
        strip_icon_font(outdir / THEME_STYLESHEET)
    shutil.rmtree(outdir / ICON_FONT_FOLDER, ignore_errors=True)


def trim_page(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Unlink sphinx-design from pages without its components; make images lazy."""
    body = context.get("body", "")
    if "sd-" not in body:
        # In place: these lists are the builder's own, which it restores after each page.
        css_files, script_files = context.get("css_files", []), context.get("script_files", [])
        css_files[:] = [css for css in css_files if "sphinx-design" not in str(css)]
        script_files[:] = [js for js in script_files if "design-tabs" not in str(js)]
    if body:
        context["body"] = IMG_WITHOUT_LOADING.sub('<img loading="lazy" decoding="async"', body)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the page-trimming hooks."""
    app.add_css_file("icons.css")
    app.connect("html-page-context", trim_page)
    app.connect("build-finished", trim_theme_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
