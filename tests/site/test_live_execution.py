"""The execution key: a page re-runs when the lock or a package it imports changes, not others."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.site.test_extensions import load

pytestmark = pytest.mark.sources

live_execution = load("live_execution")


def make_root(tmp_path: Path) -> Path:
    (tmp_path / "requirements.lock").write_text("jax==0.10.2\n")
    for package in ("purenn", "tinyjax"):
        (tmp_path / "src" / package).mkdir(parents=True)
        (tmp_path / "src" / package / "__init__.py").write_text(f'"""{package}"""\n')
    return tmp_path


def key_of(root: Path, page: str) -> str:
    app = SimpleNamespace(
        config=SimpleNamespace(live_execution_keys=live_execution.execution_keys(root))
    )
    return live_execution.expected_key(app, page)


PLAIN = "import jax\n"
USES_PURENN = "import jax\nfrom purenn.layers import dense\n"
USES_TINYJAX = "import tinyjax as tj\n"


def test_each_package_in_src_gets_a_fingerprint(tmp_path):
    assert set(live_execution.execution_keys(make_root(tmp_path))) == {"lock", "purenn", "tinyjax"}


def test_a_page_reruns_only_for_the_lock_and_the_packages_it_imports(tmp_path):
    root = make_root(tmp_path)
    before = {page: key_of(root, page) for page in (PLAIN, USES_PURENN, USES_TINYJAX)}
    (root / "src" / "tinyjax" / "core.py").write_text("x = 1\n")
    after = {page: key_of(root, page) for page in (PLAIN, USES_PURENN, USES_TINYJAX)}
    assert after[PLAIN] == before[PLAIN] and after[USES_PURENN] == before[USES_PURENN]
    assert after[USES_TINYJAX] != before[USES_TINYJAX]
    (root / "requirements.lock").write_text("jax==0.10.3\n")
    assert all(key_of(root, page) != after[page] for page in after)


def test_every_page_reruns_when_the_kernels_startup_file_changes(tmp_path):
    root = make_root(tmp_path)
    startup = root / "docs" / "_ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-deprecations.py").write_text("import warnings\n")
    before = {page: key_of(root, page) for page in (PLAIN, USES_PURENN, USES_TINYJAX)}
    (startup / "00-deprecations.py").write_text("import warnings  # changed\n")
    assert all(key_of(root, page) != before[page] for page in before)


def test_import_detection_reads_import_lines_not_words():
    assert live_execution.imports("import purenn\n", "purenn")
    assert live_execution.imports("  from purenn.layers import dense\n", "purenn")
    assert not live_execution.imports("Unlike purenn, this page uses JAX alone.\n", "purenn")
    assert not live_execution.imports("import purennx\n", "purenn")
