"""Let a reader run any downloaded notebook outside this repository.

At the start of an HTML build the distribution in ``src/`` (``purenn``, with ``tinyjax``) is
built into a wheel and published with the site (``WHEEL_FOLDER``). Every executed page ends
with a "Run it yourself" note: a link to that wheel, relative to the page, and the
``pip install`` line that pins each distribution the page's code imports (jaxlib with jax,
and purenn's own dependencies when the page imports purenn) at the version this build ran.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from docutils import nodes
from myst_nb.core.read import read_myst_markdown_notebook
from packaging.requirements import Requirement
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
# Where the wheel is published, relative to the site's root.
WHEEL_FOLDER = "_downloads/wheels"
# The distribution the wheel holds, and the top-level packages in it.
OWN_DISTRIBUTION = "purenn"
OWN_PACKAGES = {"purenn", "tinyjax"}
# Installed with jax, and needed at the same version, though no cell imports it by name.
COMPANIONS = {"jax": ["jaxlib"]}
# Functions that import an optional package of their library when called.
CALLS_NEEDING = {"visualize_sharding": "rich", "visualize_array_sharding": "rich"}


def imported_modules(code: str) -> set[str]:
    """The top-level modules that a cell's code imports; lines of IPython magic are skipped.

    >>> code = "%xmode minimal\\nimport jax.numpy as jnp\\nfrom optax import adam"
    >>> sorted(imported_modules(code))
    ['jax', 'optax']
    """
    python = "\n".join(
        line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))
    )
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return set()
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    return modules


def needed_by_calls(code: str) -> set[str]:
    """The optional packages that the functions a cell calls import for themselves.

    >>> sorted(needed_by_calls("jax.debug.visualize_array_sharding(x)"))
    ['rich']
    """
    return {package for name, package in CALLS_NEEDING.items() if name in code}


def pinned_requirements(modules: set[str]) -> list[str]:
    """``name==version`` for each installed distribution that provides one of these modules.

    The standard library needs nothing. Modules of the wheel bring the wheel's own runtime
    dependencies instead, pinned too, so pip picks the versions this build ran with.

    >>> pins = pinned_requirements({"jax", "os", "purenn"})
    >>> [pin.split("==")[0] for pin in pins][:3]
    ['jax', 'jaxlib', 'numpy']
    >>> any(pin.startswith(("purenn", "os")) for pin in pins)
    False
    """
    providers = importlib.metadata.packages_distributions()
    names: set[str] = set()
    for module in modules - set(sys.stdlib_module_names):
        if module in OWN_PACKAGES:
            for line in importlib.metadata.requires(OWN_DISTRIBUTION) or []:
                requirement = Requirement(line)
                if requirement.marker is None:
                    names.add(requirement.name)
            continue
        for name in providers.get(module, []):
            names.add(name)
    for name in list(names):
        names.update(COMPANIONS.get(name, []))
    return sorted(
        f"{importlib.metadata.metadata(name)['Name']}=={importlib.metadata.version(name)}"
        for name in names
    )


def build_wheel(target: Path) -> Path:
    """Build the wheel of ``src/`` into ``target``, from a copy so the tree stays clean.

    ``SOURCE_DATE_EPOCH`` is fixed so that two builds write the same bytes.
    """
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, copy / name)
        shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.whl"):
            old.unlink()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                str(copy),
                "--no-deps",
                "--no-build-isolation",
                "--quiet",
                "--disable-pip-version-check",
                "-w",
                str(target),
            ],
            check=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},
        )
    (wheel,) = target.glob("*.whl")
    return wheel


def wheel_name() -> str:
    """The file name of the wheel this build publishes (pure Python, any platform).

    >>> wheel_name().startswith("purenn-") and wheel_name().endswith("-py3-none-any.whl")
    True
    """
    return f"{OWN_DISTRIBUTION}-{importlib.metadata.version(OWN_DISTRIBUTION)}-py3-none-any.whl"


def publish_wheel(app: Sphinx) -> None:
    """Build the wheel once, in the main process, before any page is read."""
    if app.builder.format != "html":
        return
    wheel = build_wheel(Path(app.outdir) / WHEEL_FOLDER)
    if wheel.name != wheel_name():
        raise RuntimeError(
            f"built {wheel.name}, but the installed {OWN_DISTRIBUTION} is {wheel_name()}: "
            "run `make .venv/.installed` (pip install -e .) so the two versions agree"
        )


def page_pins(source: str) -> list[str]:
    """The pinned requirements of a MyST notebook page, read from its code cells."""
    notebook = read_myst_markdown_notebook(source)
    modules: set[str] = set()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            modules |= imported_modules(cell.source) | needed_by_calls(cell.source)
    return pinned_requirements(modules)


def add_note(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """End an executed page with the wheel's link and its ``pip install`` line."""
    source = Path(app.env.doc2path(docname)).read_text(encoding="utf8")
    if app.builder.format != "html" or "file_format: mystnb" not in source:
        return
    wheel = wheel_name()
    pins = page_pins(source)
    link = posixpath.relpath(f"{WHEEL_FOLDER}/{wheel}", posixpath.dirname(docname) or ".")
    note = nodes.admonition(classes=["run-it-yourself", "note"])
    note += nodes.title("", "Run it yourself")
    text = nodes.paragraph()
    text += nodes.Text("Download this page as a notebook (the download button at the top) and ")
    text += nodes.reference("", f"the {OWN_DISTRIBUTION} wheel", refuri=link)
    text += nodes.Text(", then install what the page imports, at the versions it ran with:")
    note += text
    # One requirement a line, so the command reads on a phone and copies as one.
    command = "pip install " + " \\\n    ".join([wheel, *pins])
    note += nodes.literal_block(command, command, language="bash")
    sections = [section for section in doctree.findall(nodes.section)]
    (sections[0] if sections else doctree).append(note)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the wheel's build and the note on every executed page."""
    app.connect("builder-inited", publish_wheel)
    app.connect("doctree-resolved", add_note)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
