"""A broken page must fail the build, and the failure must say which page and which cell.

Each test builds a throwaway source folder with the repository's own conf.py, so it checks the
configuration the site is really built with.
"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.paths import ROOT

pytestmark = pytest.mark.sphinx

NOTEBOOK_HEADER = """\
---
file_format: mystnb
kernelspec:
  name: python3
  display_name: Python 3
---
"""


def build(tmp_path: Path, pages: dict[str, str], builder: str = "html", jobs: int = 1, **env: str):
    source = tmp_path / "docs"
    source.mkdir()
    (source / "index.md").write_text(
        "# Throwaway\n\n```{toctree}\n" + "\n".join(pages) + "\n```\n", encoding="utf8"
    )
    for name, text in pages.items():
        (source / f"{name}.md").write_text(textwrap.dedent(text), encoding="utf8")
    environment = {
        **os.environ,
        "JAX_DOCS_CACHE": str(tmp_path / "cache"),
        **env,
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-c",
            str(ROOT),
            str(source),
            str(tmp_path / "out"),
            "-b",
            builder,
            "-j",
            str(jobs),
            "-W",
            "--keep-going",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


def test_a_clean_throwaway_page_builds(tmp_path):
    result = build(
        tmp_path,
        {"fine": NOTEBOOK_HEADER + "# Fine\n\n```{code-cell} ipython3\nprint(6 * 7)\n```\n"},
    )
    assert result.returncode == 0, result.stderr
    page = BeautifulSoup((tmp_path / "out" / "fine.html").read_text(), "html.parser")
    # The cell ran: its one output is exactly what the code prints.
    assert [div.get_text().strip() for div in page.select("div.cell_output")] == ["42"]


def test_a_cell_that_raises_fails_the_build_naming_page_and_cell(tmp_path):
    page = NOTEBOOK_HEADER + textwrap.dedent("""\
        # Broken

        ```{code-cell} ipython3
        x = 1
        ```

        ```{code-cell} ipython3
        raise RuntimeError("deliberately broken cell")
        ```
        """)
    result = build(tmp_path, {"broken_page": page})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "broken_page.md" in output
    assert 'raise RuntimeError("deliberately broken cell")' in output  # the cell's source
    assert "deliberately broken cell" in output


def test_a_cell_that_raises_in_a_parallel_build_fails_it_naming_page_and_cell(tmp_path):
    # Sphinx reads in parallel only when more than five pages are to be read.
    fine = {
        f"fine_{k}": NOTEBOOK_HEADER
        + f"# Fine {k}\n\n```{{code-cell}} ipython3\nprint({k})\n```\n"
        for k in range(6)
    }
    broken = NOTEBOOK_HEADER + textwrap.dedent("""\
        # Broken

        ```{code-cell} ipython3
        raise ValueError("broken while others run")
        ```
        """)
    result = build(tmp_path, {**fine, "broken_in_parallel": broken}, jobs=2)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "broken_in_parallel.md" in output
    assert 'raise ValueError("broken while others run")' in output


def test_a_tagged_intentional_error_does_not_fail_the_build(tmp_path):
    page = NOTEBOOK_HEADER + textwrap.dedent("""\
        # Shows an error

        ```{code-cell} ipython3
        :tags: [raises-exception]

        1 / 0
        ```
        """)
    result = build(tmp_path, {"shows_error": page})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ZeroDivisionError" in (tmp_path / "out" / "shows_error.html").read_text()


ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

# A library module, not __main__: IPython hides the DeprecationWarnings raised in one.
OLD_API = """\
import warnings


def old_api():
    warnings.warn("old_api is deprecated, call new_api", {category})
    return 42
"""


def build_against_old_api(tmp_path: Path, page: str, category: str = "DeprecationWarning"):
    library = tmp_path / "library"
    library.mkdir()
    (library / "oldlib.py").write_text(OLD_API.format(category=category), encoding="utf8")
    path = os.pathsep.join(filter(None, [str(library), os.environ.get("PYTHONPATH")]))
    return build(tmp_path, {"old_page": NOTEBOOK_HEADER + textwrap.dedent(page)}, PYTHONPATH=path)


@pytest.mark.parametrize(
    "category", ["DeprecationWarning", "FutureWarning", "PendingDeprecationWarning"]
)
def test_a_deprecation_warning_fails_the_build_naming_page_and_cell(tmp_path, category):
    page = """\
        # Old

        ```{code-cell} ipython3
        from oldlib import old_api
        ```

        ```{code-cell} ipython3
        answer = old_api()
        ```
        """
    result = build_against_old_api(tmp_path, page, category)
    output = ANSI_COLOUR.sub("", result.stdout + result.stderr)  # the kernel colours tracebacks
    assert result.returncode != 0
    assert "old_page.md" in output
    assert "answer = old_api()" in output  # the cell's source
    assert f"{category}: old_api is deprecated, call new_api" in output
    assert "uses a deprecated API" in output and "shows-warning" in output  # what to do


def test_a_deprecation_warning_shown_on_purpose_does_not_fail_the_build(tmp_path):
    page = """\
        # Old, on purpose

        ```{code-cell} ipython3
        :tags: [shows-warning]

        import warnings
        from oldlib import old_api

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            old_api()
        print(caught[0].category.__name__ + ":", caught[0].message)
        ```
        """
    result = build_against_old_api(tmp_path, page)
    assert result.returncode == 0, result.stdout + result.stderr
    html = (tmp_path / "out" / "old_page.html").read_text(encoding="utf8")
    assert "DeprecationWarning: old_api is deprecated, call new_api" in html


def test_a_user_warning_does_not_fail_the_build(tmp_path):
    page = NOTEBOOK_HEADER + textwrap.dedent("""\
        # Warns

        ```{code-cell} ipython3
        import warnings

        warnings.warn("only a user warning", UserWarning)
        print(6 * 7)
        ```
        """)
    result = build(tmp_path, {"warning_page": page})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "42" in (tmp_path / "out" / "warning_page.html").read_text(encoding="utf8")


def test_a_cell_past_its_timeout_fails_the_build_naming_page_and_cell(tmp_path):
    page = NOTEBOOK_HEADER + textwrap.dedent("""\
        # Slow

        ```{code-cell} ipython3
        import time
        time.sleep(120)  # far past the timeout
        ```
        """)
    result = build(tmp_path, {"slow_page": page}, JAX_DOCS_CELL_TIMEOUT="3")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "slow_page.md" in output
    assert "timed out" in output
    assert "time.sleep(120)" in output


def test_a_broken_cross_reference_fails_the_build_naming_the_page(tmp_path):
    page = "# Links\n\nSee {doc}`a-page-that-does-not-exist`.\n"
    result = build(tmp_path, {"linking_page": page})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "linking_page.md" in output
    assert "a-page-that-does-not-exist" in output


@pytest.mark.parametrize(("example", "passes"), [(">>> 1 + 1\n2", True), (">>> 1 + 1\n3", False)])
def test_doctest_builder_fails_on_a_wrong_example(tmp_path, example, passes):
    page = f"# Examples\n\n```{{doctest}}\n{example}\n```\n"
    result = build(tmp_path, {"examples": page}, builder="doctest", JAX_DOCS_EXECUTION="off")
    assert (result.returncode == 0) == passes, result.stdout + result.stderr


def test_a_diagram_without_alt_text_fails_the_build_naming_the_page(tmp_path):
    page = "# Diagram\n\n```{graphviz}\ndigraph { traced -> compiled }\n```\n"
    result = build(tmp_path, {"diagram_page": page})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "diagram_page.md" in output
    assert "no alt text" in output


def test_a_diagram_is_drawn_as_an_image_named_by_its_alt_text(tmp_path):
    page = (
        "# Diagram\n\n```{graphviz}\n:alt: A traced program handed to the compiler.\n"
        "digraph { traced -> compiled }\n```\n"
    )
    result = build(tmp_path, {"diagram_page": page})
    assert result.returncode == 0, result.stdout + result.stderr
    html = (tmp_path / "out" / "diagram_page.html").read_text(encoding="utf8")
    (diagram,) = BeautifulSoup(html, "html.parser").select("img.graphviz")
    assert diagram["src"].startswith("_images/graphviz-") and diagram["src"].endswith(".svg")
    assert diagram["alt"] == "A traced program handed to the compiler."
    drawn = next((tmp_path / "out" / "_images").glob("graphviz-*.svg")).read_text()
    assert "traced" in drawn and "compiled" in drawn


def test_a_wrong_solution_fails_the_build_naming_page_and_cell(tmp_path):
    page = NOTEBOOK_HEADER + textwrap.dedent("""\
        # Exercises

        ````{exercise} Square it
        :label: square-it

        Write `square(v)`.
        ````

        ````{solution-start} square-it
        :class: dropdown
        ````

        ```{code-cell} ipython3
        def square(v):
            return 2 * v

        assert square(3) == 9, "square(3) should be 9"
        ```

        ````{solution-end}
        ````
        """)
    result = build(tmp_path, {"exercise_page": page})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "exercise_page.md" in output
    assert "assert square(3) == 9" in output  # the cell's source
    assert "square(3) should be 9" in output
