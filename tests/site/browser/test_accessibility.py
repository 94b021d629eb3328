"""axe-core on every page, in both colour modes: zero violations."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.paths import every_page

pytestmark = pytest.mark.browser

# Besides the default rules, one axe still calls experimental: a control's name must contain
# the words it shows, so that a reader can operate it by voice.
AXE_OPTIONS = {
    "resultTypes": ["violations"],
    "rules": {"label-content-name-mismatch": {"enabled": True}},
}


@pytest.fixture(scope="module")
def axe() -> Axe:
    return Axe()


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("page", every_page())
def test_no_accessibility_violations(visit, axe, page, mode):
    loaded = visit(f"{page}.html", mode=mode)
    assert loaded.page.evaluate("document.documentElement.dataset.theme") == mode
    results = axe.run(loaded.page, options=AXE_OPTIONS)
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:5])
        for v in results.response["violations"]
    ]
    assert violations == [], "\n".join(violations)
