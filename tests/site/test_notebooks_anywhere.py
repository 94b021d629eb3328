"""Three downloaded notebooks run outside the repository, with only what their note installs.

Each runs with ``jupyter execute`` in an empty folder, in a fresh virtual environment that
holds the wheel published with the site and the pinned packages from the page's note (plus
nbclient and ipykernel, to run it): no ``src/``, no PYTHONPATH, no build profile.
"""

import importlib.metadata
import os
import subprocess
import sys

import pytest
from bs4 import BeautifulSoup

from tests.paths import SITE

# One test worker runs the whole module (pytest -n, --dist loadgroup):
# one fresh virtual environment for all three notebooks.
pytestmark = [pytest.mark.processes, pytest.mark.xdist_group("fresh-venv")]

# A transforms page, an nn page, and a page that simulates eight devices.
PAGES = ["transforms/jit", "nn/functions", "transforms/pmap"]
RUNNER = ["nbclient", "ipykernel"]


def pip_line(page: str) -> list[str]:
    note = BeautifulSoup((SITE / f"{page}.html").read_text(), "html.parser").select_one(
        ".run-it-yourself pre"
    )
    return [word for word in note.get_text().split() if word != "\\"]


# Session-scoped, though only this module uses it: under pytest -n, tests of other modules
# can run between this module's, and pytest would tear a module fixture down each time.
@pytest.fixture(scope="session")
def environment(tmp_path_factory):
    """A virtual environment outside the repository with every page's pins and the wheel."""
    folder = tmp_path_factory.mktemp("reader")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheel = SITE / "_downloads" / "wheels" / pip_line(PAGES[0])[2]
    pins = sorted({pin for page in PAGES for pin in pip_line(page)[3:]})
    runner = [f"{name}=={importlib.metadata.version(name)}" for name in RUNNER]
    # --no-compile: the notebooks import a small part of what is installed, and byte-compiling
    # all of it up front costs as much CPU as the rest of the install.
    install = [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-compile"]
    subprocess.run(
        [*install, str(wheel), *pins, *runner],
        check=True,
        cwd=folder,
        timeout=900,
    )
    return venv


@pytest.mark.parametrize("page", PAGES)
def test_a_downloaded_notebook_runs_outside_the_repository(environment, tmp_path, page):
    # The versions in the note agree across pages, so one environment serves all three.
    notebook = tmp_path / f"{page.split('/')[-1]}.ipynb"
    notebook.write_bytes((SITE / "_sources" / f"{page}.ipynb").read_bytes())
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IPYTHONDIR")}
    clean["PATH"] = f"{environment / 'bin'}:{clean['PATH']}"
    result = subprocess.run(
        [environment / "bin" / "jupyter", "execute", notebook.name],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
