"""Smoke tests of the scripts in benchmarks/, at their smallest settings.

train_step.py runs for real, shrunk to one round of one step on a small batch. lighthouse.py
needs npm, the Lighthouse of its package-lock and Chromium, which a fresh machine lacks: its
own logic is tested here with the audit replaced by a stand-in that fetches the page from the
script's server, and a real audit is left to `make bench`.
"""

import gzip
import importlib.util
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.paths import ROOT

# One test worker runs the whole module (pytest -n, --dist loadgroup):
# the Lighthouse runs share _build/lighthouse.
pytestmark = [pytest.mark.processes, pytest.mark.xdist_group("benchmarks")]

BENCHMARKS = ROOT / "benchmarks"


def load(name: str):
    """A benchmark script imported as a module, without running its main()."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- train_step.py -------------------------------------------------------------------------------

IMPLEMENTATIONS = ["(a)", "(b)", "(c)", "(d)", "(e)", "(e')"]


def test_train_step_benchmark_runs_and_prints_every_row():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "train_step.py"), "--repeats", "1", "--steps", "1",
         "--batch", "8"],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # The header names the ratio column: each step against the baseline (a).
    header = next((line for line in lines if line.startswith("implementation")), None)
    assert header is not None and "(a)" in header, done.stdout
    rows = {}
    for line in lines[lines.index(header) + 1 :]:
        label = line.split(" ", 1)[0]
        if label.startswith("(") and len(line.split()) > 3:
            rows.setdefault(label, line.split())
    expected = IMPLEMENTATIONS + (["(f)"] if importlib.util.find_spec("torch") else [])
    assert list(rows)[: len(expected)] == expected, done.stdout
    ratios = {label: float(fields[-1]) for label, fields in rows.items() if label in expected}
    assert ratios["(a)"] == pytest.approx(1.0)
    assert all(ratio > 0 for ratio in ratios.values()), ratios
    if "(f)" not in expected:
        assert any(line.startswith("(f)") and "torch" in line for line in lines), done.stdout
    # The small settings were the ones used.
    assert re.search(r"\bbatch 8\b", done.stdout), done.stdout


def test_train_step_benchmark_defaults_are_the_measurement():
    train_step = load("train_step")
    assert (train_step.REPEATS, train_step.STEPS_PER_REPEAT, train_step.BATCH) == (21, 10, 256)


def test_train_step_benchmark_rejects_zero_repeats(capsys):
    with pytest.raises(SystemExit) as exited:
        load("train_step").main(["--repeats", "0"])
    assert exited.value.code == 2
    assert "--repeats" in capsys.readouterr().err


# --- lighthouse.py -------------------------------------------------------------------------------


@pytest.fixture
def lighthouse(monkeypatch, tmp_path):
    """The script, pointed at a small site of three pages (and assets, which are no page)."""
    module = load("lighthouse")
    site = tmp_path / "html"
    for page in [
        "index.html",
        "guide/intro.html",
        "404.html",
        "_static/x.html",
        "_sources/a.html",
    ]:
        (site / page).parent.mkdir(parents=True, exist_ok=True)
        (site / page).write_text(f"<!doctype html><title>{page}</title>" + "x" * 2000)
    monkeypatch.setattr(module, "SITE", site)
    monkeypatch.setattr(module, "REPORTS", tmp_path / "reports")
    return module


def test_lighthouse_lists_the_pages_of_the_build(lighthouse):
    assert lighthouse.pages() == ["404.html", "guide/intro.html", "index.html"]


def test_lighthouse_metric_converts_milliseconds_to_seconds():
    lighthouse = load("lighthouse")
    result = {
        "audits": {
            "largest-contentful-paint": {"numericValue": 1234.0},
            "cumulative-layout-shift": {"numericValue": 0.0312},
        }
    }
    assert float(lighthouse.metric(result, "LCP")) == pytest.approx(1.2)
    assert float(lighthouse.metric(result, "CLS")) == pytest.approx(0.03)  # no unit


def test_lighthouse_without_a_build_says_to_build(lighthouse, tmp_path, monkeypatch):
    monkeypatch.setattr(lighthouse, "SITE", tmp_path / "nothing")
    with pytest.raises(SystemExit) as exited:
        lighthouse.main([])
    assert "make html" in str(exited.value.code)


def test_lighthouse_names_the_pages_when_none_matches(lighthouse, monkeypatch):
    # Reported before Chromium or Lighthouse is looked for: neither is here.
    monkeypatch.setattr(lighthouse.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exited:
        lighthouse.main(["no-such-page"])
    message = str(exited.value.code)
    assert "no-such-page" in message
    assert all(page in message for page in lighthouse.pages()), message


def test_lighthouse_says_what_to_install(lighthouse, monkeypatch, tmp_path):
    monkeypatch.setattr(lighthouse.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exited:
        lighthouse.main([])
    assert "chromium" in str(exited.value.code).lower()
    # Without node_modules it installs Lighthouse with npm, and says when npm is missing.
    monkeypatch.setattr(lighthouse, "TOOL", tmp_path / "tool")
    with pytest.raises(SystemExit) as exited:
        lighthouse.ensure_lighthouse()
    assert "npm" in str(exited.value.code)


def fake_report(performance: float, kib: float) -> dict:
    metrics = {audit: {"numericValue": 1500.0} for audit in load("lighthouse").METRICS.values()}
    requests = {"details": {"items": [{"resourceSize": kib * 1024}]}}
    return {
        "categories": {
            category: {"score": performance if category == "performance" else 1.0}
            for category in ("performance", "accessibility", "best-practices", "seo")
        },
        "audits": {**metrics, "network-requests": requests},
    }


def test_lighthouse_serves_each_page_and_prints_its_row(lighthouse, monkeypatch, capsys):
    """The audit is replaced by a fetch of the page from the script's own server."""
    audited = []

    def audit(binary, url, chrome):
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Encoding"] == "gzip"  # as a real host serves it
            body = gzip.decompress(response.read())
        page = url.split("/", 3)[3]
        assert body == (lighthouse.SITE / page).read_bytes()
        audited.append(page)
        return fake_report(0.5, 100) if page == "404.html" else fake_report(1.0, 100)

    monkeypatch.setattr(lighthouse.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(lighthouse, "ensure_lighthouse", lambda: Path("lighthouse"))
    monkeypatch.setattr(lighthouse, "audit", audit)
    assert lighthouse.main(["404", "intro", "--runs", "1"]) == 0
    assert audited == ["404.html", "guide/intro.html"]
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:6] == ["page", "perf", "a11y", "best", "seo", "KiB"]
    # One row a page: its scores, its weight, and the targets it misses.
    rows = [line.split() for line in lines[2:4]]
    assert [row[0] for row in rows] == audited
    missed, passed = rows
    assert float(missed[1]) == 0.5 and "performance" in missed
    assert float(passed[1]) == 1.0 and float(passed[5]) == pytest.approx(100, abs=1)
    assert "performance" not in passed
    summary = next(line for line in lines[4:] if line.strip())
    assert re.findall(r"\d+", summary) == ["1", "2"]  # 1 of the 2 pages


def test_lighthouse_reports_the_median_of_its_runs(lighthouse, monkeypatch, capsys):
    """Three runs of one page: one slow outlier moves no column, and the row shows all three."""
    scores = iter([0.70, 0.99, 0.96])
    audited = []

    def audit(binary, url, chrome):
        audited.append(url)
        report = fake_report(next(scores), 100)
        lcp = report["audits"]["largest-contentful-paint"]
        lcp["numericValue"] = {0.70: 9000.0, 0.99: 1000.0, 0.96: 2000.0}[
            report["categories"]["performance"]["score"]
        ]
        return report

    monkeypatch.setattr(lighthouse.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(lighthouse, "ensure_lighthouse", lambda: Path("lighthouse"))
    monkeypatch.setattr(lighthouse, "audit", audit)
    assert lighthouse.main(["intro"]) == 0
    assert len(audited) == lighthouse.RUNS == 3
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("guide/intro.html")).split()
    header = lines[0].split()
    assert float(row[1]) == 0.96  # the median, not the last run nor the mean
    assert float(row[header.index("LCP")]) == pytest.approx(2.0)  # median 2000 ms
    assert "0.70," in row and "0.99," in row and "0.96" in row  # the spread, in run order
    assert "misses:" not in " ".join(row)
    saved = json.loads((lighthouse.REPORTS / "guide" / "intro.json").read_text())
    assert saved["categories"]["performance"]["score"] == 0.96


def test_lighthouse_rejects_zero_runs(lighthouse):
    with pytest.raises(SystemExit):
        lighthouse.main(["--runs", "0"])


# --- build.py ------------------------------------------------------------------------------------


def test_a_cold_build_times_each_page_it_executes(tmp_path):
    from tests.site.test_build_failures import NOTEBOOK_HEADER

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Throwaway\n\n```{toctree}\nslow\nquick\n```\n")
    for name, cell in (("slow", "import time; time.sleep(1)"), ("quick", "print(1)")):
        (docs / f"{name}.md").write_text(
            NOTEBOOK_HEADER + f"# {name}\n\n```{{code-cell}} ipython3\n{cell}\n```\n"
        )
    seconds, pages, cpu = load("build").cold_build(tmp_path / "out", "1", docs=docs)
    assert set(pages) == {"slow", "quick"}
    # A page's time includes its kernel's start, so only the sleep gives a lower bound.
    assert pages["slow"] >= 1.0 and pages["quick"] > 0
    assert seconds > pages["slow"]
    # Sphinx, the kernels and their imports cost CPU time; the sleep costs none of it.
    assert 0 < cpu
