"""Every test of the site says what it needs, so a run can pick the tests its machine can do."""

from pathlib import Path

import pytest

SITE_TESTS = Path(__file__).resolve().parent
# Declared in pyproject.toml; --strict-markers rejects any other.
NEEDS = ("built", "sphinx", "processes", "browser", "sources")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = sorted(
        {
            item.nodeid.split("::")[0]
            for item in items
            if item.path.is_relative_to(SITE_TESTS)
            and not {mark.name for mark in item.iter_markers()} & set(NEEDS)
        }
    )
    if unmarked:
        raise pytest.UsageError(
            f"{', '.join(unmarked)}: a test under tests/site must say what it needs; add "
            f"`pytestmark = pytest.mark.<one of {', '.join(NEEDS)}>` to the module."
        )
