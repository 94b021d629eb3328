"""A cold build of the whole site, serial against parallel, in one run.

Each build starts from nothing: its own output folder and its own empty execution cache, so
every page executes. The first build reads (and so executes) one page at a time (``-j 1``),
the second with ``-j auto``, as ``make html`` does (its ``JOBS``). Printed: each page's
execution time in both builds (from the execution cache's records), the wall-clock time of
each build, and their ratio. Targets: the parallel build at most 0.6 of the serial one, and
no page over 20 s.

The serial build's page times are written to ``benchmarks/page_seconds.json``: the
``read_order`` extension reads them to share the slow pages between parallel readers, so
commit the file after a run that changed them.

Run with ``python -m benchmarks.build`` (about two cold builds' time), or ``--jobs N`` to try
another parallelism.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MAX_RATIO = 0.6
MAX_PAGE_SECONDS = 20.0
PAGE_SECONDS = Path(__file__).resolve().parent / "page_seconds.json"


def cold_build(
    folder: Path, jobs: str, docs: Path = DOCS
) -> tuple[float, dict[str, float], float]:
    """Build ``docs`` into ``folder`` from an empty cache.

    Returns its wall time, each page's execution time, and the CPU time (user and system) of
    the build and every process it started, all in seconds.
    """
    cache = folder / "cache"
    env = dict(os.environ, JAX_DOCS_CACHE=str(cache))
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-c",
        str(ROOT),
        str(docs),
        str(folder / "html"),
        "-d",
        str(folder / "doctrees"),
        "-j",
        jobs,
        "-W",
        "--keep-going",
        "-q",
    ]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
    pages = {
        Path(record.uri).relative_to(docs).with_suffix("").as_posix(): float(
            record.data["execution_seconds"]
        )
        for record in get_cache(str(cache)).list_cache_records()
    }
    return seconds, pages, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.build", description=__doc__)
    parser.add_argument("--jobs", default="auto", help="the parallel build's -j (default: auto)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="build-bench-") as scratch:
        serial, serial_pages, serial_cpu = cold_build(Path(scratch) / "serial", "1")
        parallel, parallel_pages, parallel_cpu = cold_build(Path(scratch) / "parallel", args.jobs)
    width = max(map(len, serial_pages))
    print(f"{'page':<{width}}  {'serial (s)':>10}  {f'-j {args.jobs} (s)':>12}")
    for page in sorted(serial_pages):
        times = (serial_pages[page], parallel_pages.get(page, float("nan")))
        slow = "  over 20 s" if times[0] > MAX_PAGE_SECONDS else ""
        print(f"{page:<{width}}  {times[0]:>10.1f}  {times[1]:>12.1f}{slow}")
    ratio = parallel / serial
    print(f"\ncold build, serial: {serial:.0f} s; -j {args.jobs}: {parallel:.0f} s")
    print(f"ratio {ratio:.2f} (target <= {MAX_RATIO})")
    # The serial build already runs XLA's threads on several cores, so the CPU time bounds
    # what any schedule of the same work can reach on this machine.
    cores = os.cpu_count() or 1
    print(
        f"CPU time: serial {serial_cpu:.0f} s ({serial_cpu / serial:.2f} cores busy on average), "
        f"-j {args.jobs} {parallel_cpu:.0f} s; on {cores} cores no build of that work takes "
        f"under {parallel_cpu / cores:.0f} s (ratio {parallel_cpu / cores / serial:.2f})"
    )
    slow_pages = [page for page, seconds in serial_pages.items() if seconds > MAX_PAGE_SECONDS]
    recorded = {page: round(serial_pages[page], 1) for page in sorted(serial_pages)}
    PAGE_SECONDS.write_text(json.dumps(recorded, indent=1) + "\n")
    print(f"serial page times recorded in {PAGE_SECONDS.relative_to(ROOT)}")
    print(f"pages over {MAX_PAGE_SECONDS:.0f} s in the serial build: {len(slow_pages)}")
    return 0 if ratio <= MAX_RATIO and not slow_pages else 1


if __name__ == "__main__":
    sys.exit(main())
