"""In the browser, every solution stays folded until its reader opens it."""

import pytest

from tests.paths import teaching_pages

pytestmark = pytest.mark.browser

# sphinx-togglebutton folds with visibility and opacity, not display: ask about both.
SHOWN_PARTS = """(solution) => [...solution.querySelectorAll("div.cell_input, div.cell_output")]
    .filter((part) => part.checkVisibility({visibilityProperty: true, opacityProperty: true}))
    .length"""


@pytest.mark.parametrize("page", teaching_pages())
def test_a_solution_shows_only_when_its_toggle_is_clicked(visit, page):
    loaded = visit(f"{page}.html")
    solutions = loaded.page.locator("div.solution")
    assert solutions.count() >= 2, f"{page} has fewer than two solutions"
    for index in range(solutions.count()):
        solution = solutions.nth(index)
        assert solution.locator("div.cell_input").count() >= 1
        assert solution.evaluate(SHOWN_PARTS) == 0, f"solution {index + 1} shows before a click"
        solution.locator("button.toggle-button").click()
        parts = solution.locator("div.cell_input, div.cell_output").count()
        # The fold opens with a short transition: wait until every part is shown.
        loaded.page.wait_for_function(
            f"([solution, parts]) => ({SHOWN_PARTS})(solution) === parts",
            arg=[solution.element_handle(), parts],
            timeout=5_000,
        )
