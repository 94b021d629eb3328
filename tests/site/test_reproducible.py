"""Two builds of a page differ only in the outputs of its timing cells, and the check says so.

The throwaway pages are built twice each, in two folders with two caches, with the
repository's conf.py; `make reproducible` does the same for the whole site.
"""

import doctest

import pytest
from bs4 import BeautifulSoup

import tools.reproducible
from tests.site.test_build_failures import NOTEBOOK_HEADER, build
from tools.reproducible import PLACEHOLDER, compare_sites, masked_page, report

pytestmark = pytest.mark.sphinx

TIMED_PAGE = (
    NOTEBOOK_HEADER
    + """
# Timed

```{code-cell} ipython3
:tags: [remove-cell]
from myst_nb import glue
```

```{code-cell} ipython3
:tags: [timing]
import time

start = time.perf_counter()
total = sum(range(100_000))
took = time.perf_counter() - start
print(f"took {took * 1e6:.3f} us")
glue("took", f"{took * 1e6:.3f} us", display=False)
```

```{code-cell} ipython3
print("the sum is", total)
glue("total", f"{total:,}", display=False)
```

The sum {glue:text}`total` took {glue:text}`took`.
"""
)


def build_twice(tmp_path, page: str):
    sites = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        result = build(tmp_path / name, {"timed": page})
        assert result.returncode == 0, result.stderr
        sites.append(tmp_path / name / "out")
    return sites


def test_the_examples_in_the_checks_docstrings_pass():
    assert doctest.testmod(tools.reproducible).failed == 0


def test_two_builds_of_a_timed_page_differ_only_in_its_timing_outputs(tmp_path):
    first, second = build_twice(tmp_path, TIMED_PAGE)
    pages = [
        BeautifulSoup((site / "timed.html").read_text(), "html.parser") for site in (first, second)
    ]
    # The timing really differs from build to build, so the check has something to skip.
    timings = [page.select_one(".tag_timing .cell_output").get_text() for page in pages]
    assert timings[0] != timings[1]
    # The timing glued into prose is marked; the other glued value is not.
    for page in pages:
        assert [span.get_text() for span in page.select(".pasted-text:not(.timing)")] == [
            "4,999,950,000"
        ]
        assert len(page.select(".pasted-text.timing")) == 1
    comparison = compare_sites(first, second)
    assert comparison.identical, report(comparison, first, second)
    assert comparison.timing_pages == ["timed.html"]
    assert "timing only: timed.html" in report(comparison, first, second)


def test_an_untagged_output_that_changes_between_builds_fails_the_check(tmp_path):
    # An object's id is a memory address, different in each kernel.
    page = TIMED_PAGE.replace(
        'print("the sum is", total)', 'print("the sum is", total, id(object()))'
    )
    first, second = build_twice(tmp_path, page)
    comparison = compare_sites(first, second)
    assert not comparison.identical
    # The page and its downloadable notebook, which holds the same output.
    assert sorted(comparison.differing_pages) == ["_sources/timed.ipynb", "timed.html"]
    assert "the sum is 4999950000" in comparison.differing_pages["timed.html"]
    assert "timed.html differs outside its timing outputs" in report(comparison, first, second)


def test_a_traceback_names_the_cell_not_the_kernels_temporary_file(tmp_path):
    page = (
        NOTEBOOK_HEADER
        + """
# Raises

```{code-cell} ipython3
import jax

def sign(x):
    return 1 if x > 0 else -1
```

```{code-cell} ipython3
:tags: [raises-exception]
jax.jit(sign)(2.0)
```
"""
    )
    first, second = (tmp_path / name / "out" for name in ("first", "second"))
    for site in (first, second):
        site.parent.mkdir()
        result = build(site.parent, {"raises": page})
        assert result.returncode == 0, result.stderr
    shown = BeautifulSoup((first / "raises.html").read_text(), "html.parser").get_text()
    assert "while tracing the function sign at <ipython-input-1-" in shown
    # No kernel's temporary file and no folder of the build. (A full traceback does show the
    # paths of the installed packages it passes through; the site's pages use %xmode minimal.)
    assert "ipykernel_" not in shown and str(tmp_path) not in shown
    assert compare_sites(first, second).identical


def test_the_mask_leaves_everything_outside_timing_outputs_as_it_was():
    page = (
        '<div class="cell tag_timing"><div class="cell_input">measure(f)</div>'
        '<div class="cell_output"><img src="_images/a.png"/></div></div>'
        '<div class="cell"><div class="cell_output">42</div></div>'
    )
    masked = BeautifulSoup(masked_page(page), "html.parser")
    assert masked.select_one(".tag_timing .cell_input").get_text() == "measure(f)"
    assert masked.select_one(".tag_timing .cell_output").get_text() == PLACEHOLDER
    assert masked.select_one(".tag_timing img") is None
    assert masked.select(".cell_output")[1].get_text() == "42"


def test_a_page_only_one_build_has_fails_the_check(tmp_path):
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.html").write_text("<p>same</p>")
    (tmp_path / "second" / "extra.html").write_text("<p>new</p>")
    comparison = compare_sites(tmp_path / "first", tmp_path / "second")
    assert not comparison.identical
    assert comparison.missing_pages == ["extra.html"]
