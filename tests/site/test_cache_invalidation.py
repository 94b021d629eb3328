"""Editing a package re-runs exactly the pages that import it; editing the lock re-runs all.

The build runs in a throwaway copy of the repository's configuration, packages and lock, so
the edits touch nothing real. A cell that prints a fresh random id tells a re-run from a page
served from the execution cache.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.paths import ROOT
from tests.site.test_build_failures import NOTEBOOK_HEADER

pytestmark = pytest.mark.sphinx

FRESH_ID = "import uuid\nprint(uuid.uuid4().hex)\n"
PAGES = {
    "uses_purenn": "# Uses purenn\n\n```{code-cell} ipython3\nimport purenn\n"
    + FRESH_ID
    + "```\n",
    "plain": "# Plain\n\n```{code-cell} ipython3\n" + FRESH_ID + "```\n",
}


def throwaway_repository(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for folder in ("src", "docs/_ext", "docs/_static", "docs/_templates"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    # README.md too: the build makes the wheel of src/, whose pyproject.toml names it.
    for name in ("conf.py", "requirements.lock", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, root / name)
    docs = root / "docs"
    (docs / "index.md").write_text("# Throwaway\n\n```{toctree}\nuses_purenn\nplain\n```\n")
    for name, text in PAGES.items():
        (docs / f"{name}.md").write_text(NOTEBOOK_HEADER + text, encoding="utf8")
    return root


def build_and_read_ids(root: Path) -> dict[str, str]:
    environment = {**os.environ, "JAX_DOCS_CACHE": str(root / "_build" / ".jupyter_cache")}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-c", str(root), str(root / "docs"),
         str(root / "_build" / "html"), "-W", "--keep-going", "-q"],
        capture_output=True, text=True, env=environment, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    ids = {}
    for name in PAGES:
        html = (root / "_build" / "html" / f"{name}.html").read_text(encoding="utf8")
        (output,) = BeautifulSoup(html, "html.parser").select("div.cell_output")
        ids[name] = output.get_text().strip()
    return ids


def test_a_package_edit_reruns_its_pages_and_a_lock_edit_reruns_all(tmp_path):
    root = throwaway_repository(tmp_path)
    first = build_and_read_ids(root)
    assert build_and_read_ids(root) == first, "nothing changed, so both pages come from the cache"

    with (root / "src" / "purenn" / "layers.py").open("a", encoding="utf8") as layers:
        layers.write("\n# an edit\n")
    after_package = build_and_read_ids(root)
    assert after_package["uses_purenn"] != first["uses_purenn"], "the purenn page did not re-run"
    assert after_package["plain"] == first["plain"], "a page without purenn re-ran"

    with (root / "requirements.lock").open("a", encoding="utf8") as lock:
        lock.write("# an edit\n")
    after_lock = build_and_read_ids(root)
    assert after_lock["uses_purenn"] != after_package["uses_purenn"]
    assert after_lock["plain"] != after_package["plain"], "the lock changed but a page did not"
