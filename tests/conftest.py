from pathlib import Path

import pytest

from tests.paths import SITE


@pytest.fixture(scope="session")
def site() -> Path:
    """The built site; tests of it fail (not skip) when it has not been built."""
    if not (SITE / "index.html").exists():
        pytest.fail("The site is not built: run `make html` (or `make test`, which builds it).")
    return SITE
