"""Every lesson ends with exercises whose solutions ran with the page and check themselves."""

import re
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from tests.paths import teaching_pages

pytestmark = pytest.mark.built

TEACHING_PAGES = teaching_pages()
SELF_CHECK = re.compile(r"^\s*assert\b|\bnp\.testing\.assert_|\bnumpy\.testing\.assert_", re.M)


def read(site: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((site / f"{page}.html").read_text(encoding="utf8"), "html.parser")


def solution_of(soup: BeautifulSoup, exercise) -> list:
    return [
        solution
        for solution in soup.select("div.solution")
        if solution.select_one(f'.admonition-title a[href="#{exercise["id"]}"]')
    ]


@pytest.mark.parametrize("page", TEACHING_PAGES)
def test_every_lesson_ends_with_two_to_four_exercises(site, page):
    soup = read(site, page)
    sections = soup.select("main article section > h2")
    assert sections and sections[-1].get_text().strip("#").strip() == "Exercises", (
        f"{page} does not end with an Exercises section"
    )
    exercises = sections[-1].parent.select("div.exercise")
    assert 2 <= len(exercises) <= 4, f"{page} has {len(exercises)} exercises"


@pytest.mark.parametrize("page", TEACHING_PAGES)
def test_every_solution_is_folded_ran_with_the_page_and_checks_itself(site, page):
    soup = read(site, page)
    notebook = nbformat.read(site / "_sources" / f"{page}.ipynb", as_version=4)
    executed = {
        cell.source.strip(): cell.execution_count
        for cell in notebook.cells
        if cell.cell_type == "code"
    }
    for exercise in soup.select("div.exercise"):
        solutions = solution_of(soup, exercise)
        assert len(solutions) == 1, f"{page}: {exercise['id']} has {len(solutions)} solutions"
        (solution,) = solutions
        assert "dropdown" in solution["class"], f"{page}: {exercise['id']}'s solution is open"
        cells = [div.get_text().strip() for div in solution.select("div.cell_input")]
        assert cells, f"{page}: {exercise['id']}'s solution has no code cell"
        assert all(executed.get(cell) for cell in cells), f"{page}: a solution cell never ran"
        assert any(SELF_CHECK.search(cell) for cell in cells), (
            f"{page}: {exercise['id']}'s solution checks nothing (assert or np.testing)"
        )


def test_the_self_check_pattern_needs_a_real_check():
    assert SELF_CHECK.search("x = f(2)\nassert x == 4")
    assert SELF_CHECK.search("np.testing.assert_allclose(a, b)")
    assert not SELF_CHECK.search("print(f(2))  # should assert this")
