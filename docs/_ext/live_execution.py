"""Sphinx glue that keeps every executed page honest about what it ran against.

jupyter-cache keys a page's cached outputs on its code cells and kernelspec only, so by
itself it would keep showing outputs computed by an older ``purenn`` or an older lock. This
extension adds to each page's kernelspec a fingerprint of the lock (with the kernels' IPython
profile) and of the sources of each package in ``src/`` that the page imports (``purenn``,
``tinyjax``; a page that imports none gets the lock's alone), and tells Sphinx to re-read
exactly the pages whose fingerprint changed. The keys of the pages read travel with the build
environment, so a parallel read (``-j``) keeps them too.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from jupyter_cache import get_cache
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.DOTALL)


def fingerprint(root: Path, files: list[Path]) -> str:
    """A short digest of some files' paths and contents."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def execution_keys(root: Path) -> dict[str, str]:
    """Fingerprints of the lock (``"lock"``) and of each package in ``src/``, by its name.

    The kernels' IPython profile (``docs/_ipython``, whose startup file turns deprecation
    warnings into errors) counts as part of the lock: every page runs in it.
    """
    profile = sorted((root / "docs" / "_ipython").rglob("*.py"))
    keys = {"lock": fingerprint(root, [root / "requirements.lock", *profile])}
    for package in sorted(p.parent for p in (root / "src").glob("*/__init__.py")):
        sources = [p for p in package.rglob("*.py") if "__pycache__" not in p.parts]
        keys[package.name] = fingerprint(root, sources)
    return keys


def imports(page_source: str, package: str) -> bool:
    """Whether a page's source imports ``package`` (``import x``, ``from x import``...)."""
    return (
        re.search(rf"^\s*(?:import {package}\b|from {package}[\s.])", page_source, re.M)
        is not None
    )


def expected_key(app: Sphinx, page_source: str) -> str:
    """The execution key a page should carry: the lock's, plus each package it imports."""
    keys = app.config.live_execution_keys
    imported = [name for name in sorted(keys) if name != "lock" and imports(page_source, name)]
    if not imported:
        return keys["lock"]
    combined = "".join([keys["lock"], *(keys[name] for name in imported)])
    return hashlib.sha256(combined.encode()).hexdigest()[:16]


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


def forget_page(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    """Drop the key of a page that is about to be read again, or that was removed."""
    getattr(env, "live_execution_pages", {}).pop(docname, None)


def merge_pages(
    app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment
) -> None:
    """Take the keys of the pages a parallel reader read into the main environment."""
    read = getattr(other, "live_execution_pages", {})
    env.live_execution_pages = getattr(env, "live_execution_pages", {})
    env.live_execution_pages.update({name: read[name] for name in docnames if name in read})


def create_cache(app: Sphinx) -> None:
    """Create the execution cache's database before any page is read.

    jupyter-cache creates its tables on first use; in a parallel read (``-j``) the readers'
    first uses race, and all but one fail with "table already exists".
    """
    if app.config.nb_execution_mode == "cache":
        get_cache(app.config.nb_execution_cache_path).db  # noqa: B018 (creates the tables)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the execution-key hooks."""
    # Not a rebuild trigger for the whole site: outdated_pages picks the affected pages.
    app.add_config_value("live_execution_keys", {}, "")
    app.connect(
        "config-inited",
        lambda app, config: setattr(
            config, "live_execution_keys", execution_keys(Path(app.confdir))
        ),
    )
    app.connect("builder-inited", create_cache)
    app.connect("source-read", stamp_kernelspec)
    app.connect("env-get-outdated", outdated_pages)
    app.connect("env-purge-doc", forget_page)
    app.connect("env-merge-info", merge_pages)
    return {
        "version": "1",
        "env_version": 1,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
