"""In the browser, every solution stays folded until its reader opens it."""

import pytest

from tests.paths import teaching_pages

HIDDEN_PARTS = """(solution) => [...solution.querySelectorAll("div.cell_input, div.cell_output")]
    .filter((part) => part.checkVisibility()).length"""


@pytest.mark.parametrize("page", teaching_pages())
def test_a_solution_shows_only_when_its_toggle_is_clicked(visit, page):
    loaded = visit(f"{page}.html")
    solutions = loaded.page.locator("div.solution")
    assert solutions.count() >= 2, f"{page} has fewer than two solutions"
    for index in range(solutions.count()):
        solution = solutions.nth(index)
        assert solution.locator("div.cell_input").count() >= 1
        assert solution.evaluate(HIDDEN_PARTS) == 0, f"solution {index + 1} shows before a click"
        solution.locator("button.toggle-button").click()
        solution.locator("div.cell_input").first.wait_for(state="visible", timeout=5_000)
        shown = solution.evaluate(HIDDEN_PARTS)
        assert shown == solution.locator("div.cell_input, div.cell_output").count()
