"""Sphinx glue that keeps every executed page honest about what it ran against.

jupyter-cache keys a page's cached outputs on its code cells and kernelspec only, so by
itself it would keep showing outputs computed by an older ``purenn`` or an older lock. This
extension adds a fingerprint of the library sources and of the lock to each page's kernelspec
(a page that does not import ``purenn`` gets the lock's fingerprint only), and tells Sphinx to
re-read exactly the pages whose fingerprint changed. It also publishes each executed notebook
as the page's ``.ipynb`` download.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import nbformat
import yaml
from jupyter_cache import get_cache
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

IMPORTS_PURENN = re.compile(r"^\s*(?:import purenn|from purenn[\s.])", re.MULTILINE)
FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.DOTALL)


def execution_keys(root: Path) -> dict[str, str]:
    """Fingerprints of the lock alone and of the lock plus the library sources."""
    lock = [root / "requirements.lock"]
    library = [p for p in (root / "src").rglob("*.py") if "__pycache__" not in p.parts]
    keys = {}
    for name, files in (("lock", lock), ("library", lock + library)):
        digest = hashlib.sha256()
        for path in sorted(files):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
        keys[name] = digest.hexdigest()[:16]
    return keys


def expected_key(app: Sphinx, page_source: str) -> str:
    """The execution key a page should carry, given whether it imports ``purenn``."""
    keys = app.config.live_execution_keys
    return keys["library" if IMPORTS_PURENN.search(page_source) else "lock"]


def stamp_kernelspec(app: Sphinx, docname: str, source: list[str]) -> None:
    """Write the page's execution key into its front-matter kernelspec (hashed by the cache)."""
    match = FRONT_MATTER.match(source[0])
    if not match:
        return
    meta = yaml.safe_load(match.group(1)) or {}
    if "kernelspec" not in meta:
        return
    meta["kernelspec"]["execution_key"] = expected_key(app, source[0])
    app.env.live_execution_pages = getattr(app.env, "live_execution_pages", {})
    app.env.live_execution_pages[docname] = meta["kernelspec"]["execution_key"]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    source[0] = f"---\n{front}---\n" + source[0][match.end() :]


def outdated_pages(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Ask Sphinx to re-read every page whose execution key no longer matches."""
    stale = []
    for docname, key in getattr(env, "live_execution_pages", {}).items():
        if docname in removed or docname not in env.found_docs:
            continue
        text = Path(env.doc2path(docname)).read_text(encoding="utf8")
        if key != expected_key(app, text):
            stale.append(docname)
    return stale


def publish_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Offer the executed notebook of a text page as its ``.ipynb`` download."""
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if doctree is None or not executed.exists():
        return
    notebook = nbformat.read(executed, as_version=4)
    # myst-nb writes the notebook it parsed; when a page's outputs came from the cache they
    # were merged into a copy, so take them from the cache, where every executed run lives.
    if app.config.nb_execution_mode == "cache":
        try:
            _, notebook = get_cache(app.config.nb_execution_cache_path).merge_match_into_notebook(
                notebook
            )
        except KeyError:
            logger.warning("no executed notebook in the cache for %s", pagename)
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the execution-key and notebook-download hooks."""
    # Not a rebuild trigger for the whole site: outdated_pages picks the affected pages.
    app.add_config_value("live_execution_keys", {}, "")
    app.connect(
        "config-inited",
        lambda app, config: setattr(
            config, "live_execution_keys", execution_keys(Path(app.confdir))
        ),
    )
    app.connect("source-read", stamp_kernelspec)
    app.connect("env-get-outdated", outdated_pages)
    # Before the theme builds its header buttons (priority 501), so they see the notebook.
    app.connect("html-page-context", publish_notebook, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
