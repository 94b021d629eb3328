"""Lighthouse mobile audits of every page of the built site, printed as one table.

Serves _build/html on 127.0.0.1, runs the pinned Lighthouse (benchmarks/lighthouse, from its
package-lock) against Debian's Chromium, and prints, per page: the four category scores and
the total page weight. Targets: performance >= 0.95, accessibility, best practices and SEO
1.0, weight <= 600 KiB. Run with `make bench` after `make html`, or
`python -m benchmarks.lighthouse PAGE...` for some pages.

One audit proves little on a busy machine (the performance score of one page varies by 0.1
from run to run), so each page is audited `--runs` times (3 by default) and every column is
the median of those runs; the targets are checked on the medians, and the spread of the
performance scores is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._local_site import CHROMIUM_FLAGS, chromium, serve

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"
TOOL = Path(__file__).resolve().parent / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
TARGETS = {"performance": 0.95, "accessibility": 1.0, "best-practices": 1.0, "seo": 1.0}
MAX_WEIGHT_KIB = 600
RUNS = 3


def pages() -> list[str]:
    """Every page of the built site a reader can open, as a path relative to the site root.

    Read from the build, so the pages Sphinx writes itself (404, indexes, search) count too;
    folders starting with ``_`` hold assets and sources, not pages.
    """
    return sorted(
        p.relative_to(SITE).as_posix()
        for p in SITE.rglob("*.html")
        if not any(part.startswith("_") for part in p.relative_to(SITE).parts)
    )


def ensure_lighthouse() -> Path:
    binary = TOOL / "node_modules" / ".bin" / "lighthouse"
    if not binary.exists():
        if shutil.which("npm") is None:
            sys.exit("npm is needed for the Lighthouse benchmark: apt-get install npm")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TOOL, check=True)
    return binary


def audit(binary: Path, url: str, chrome: str) -> dict:
    flags = ("--headless", *CHROMIUM_FLAGS)
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run(
            [
                str(binary),
                url,
                "--quiet",
                "--output=json",
                f"--output-path={report}",
                f"--chrome-flags={' '.join(flags)} --user-data-dir={scratch}/profile",
            ],
            check=True,
            env={**os.environ, "CHROME_PATH": chrome},
            timeout=300,
        )
        return json.loads(report.read_text())


METRICS = {
    "FCP": "first-contentful-paint",
    "LCP": "largest-contentful-paint",
    "TBT": "total-blocking-time",
    "CLS": "cumulative-layout-shift",
    "SI": "speed-index",
}
REPORTS = ROOT / "_build" / "lighthouse"


def metric(result: dict, name: str) -> str:
    value = result["audits"][METRICS[name]]["numericValue"]
    return f"{value:5.2f}" if name == "CLS" else f"{value / 1000:5.1f}"


def weight_kib(result: dict) -> float:
    # Lighthouse counts bytes on the wire; the target is on uncompressed bytes.
    items = result["audits"]["network-requests"]["details"]["items"]
    return sum(item.get("resourceSize", 0) for item in items) / 1024


def median_result(results: list[dict]) -> dict:
    """The run whose performance score is the median, with every score and metric the median.

    Each category score and each timing is the median over the runs on its own, so one slow
    run moves none of them; the rest of the report (the weight, the requests) comes from the
    run of median performance.
    """
    ordered = sorted(results, key=lambda r: r["categories"]["performance"]["score"])
    middle = json.loads(json.dumps(ordered[(len(ordered) - 1) // 2]))
    for category in CATEGORIES:
        middle["categories"][category]["score"] = statistics.median(
            r["categories"][category]["score"] for r in results
        )
    for audit_id in METRICS.values():
        middle["audits"][audit_id]["numericValue"] = statistics.median(
            r["audits"][audit_id]["numericValue"] for r in results
        )
    return middle


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "only", nargs="*", help="audit only pages whose path contains one of these strings"
    )
    parser.add_argument(
        "--runs", type=positive_int, default=RUNS, help="audits per page; columns are medians"
    )
    args = parser.parse_args(argv)
    if not (SITE / "index.html").exists():
        sys.exit("Build the site first: make html")
    # A mistyped page is reported before anything is installed or started.
    chosen = [p for p in pages() if not args.only or any(o in p for o in args.only)]
    if not chosen:
        sys.exit(f"No page matches {args.only}; pages are: {', '.join(pages())}")
    try:
        chrome = chromium()
    except FileNotFoundError as missing:
        sys.exit(str(missing))
    binary = ensure_lighthouse()
    header = (
        f"{'page':38s} {'perf':>5s} {'a11y':>5s} {'best':>5s} {'seo':>5s} {'KiB':>5s} "
        + " ".join(f"{name:>5s}" for name in METRICS)
        + f"  perf of {args.runs} runs"
    )
    print(header)
    print("-" * len(header))
    misses = 0
    with serve(SITE) as base:
        for page in chosen:
            keep = REPORTS / page.replace(".html", ".json")
            runs = [audit(binary, f"{base}/{page}", chrome) for _ in range(args.runs)]
            result = median_result(runs)
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_text(json.dumps(result))
            scores = {c: result["categories"][c]["score"] for c in CATEGORIES}
            weight = weight_kib(result)
            spread = ", ".join(f"{r['categories']['performance']['score']:.2f}" for r in runs)
            missed = [c for c in CATEGORIES if scores[c] < TARGETS[c]]
            if weight > MAX_WEIGHT_KIB:
                missed.append("weight")
            misses += bool(missed)
            print(
                f"{page:38s} "
                + " ".join(f"{scores[c]:5.2f}" for c in CATEGORIES)
                + f" {weight:5.0f} "
                + " ".join(metric(result, name) for name in METRICS)
                + f"  {spread}"
                + (f"  misses: {', '.join(missed)}" if missed else ""),
                flush=True,
            )
    print(f"\n{misses} of {len(chosen)} pages miss a target")
    print(
        f"Scores and times (seconds) are medians of {args.runs} runs; the median reports are "
        f"in {os.path.relpath(REPORTS, ROOT)}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
