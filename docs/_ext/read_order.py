"""Hands the pages that take longest to execute to the parallel readers first, spread evenly.

A parallel read (``sphinx-build -j N``) cuts the sorted list of pages into chunks of
consecutive pages (``sphinx.util.parallel.make_chunks``), and each of N reader processes takes
the next chunk when it is free. Pages execute as they are read, and one page can take a hundred
times as long as another, so in sorted order the slow pages fall where the alphabet puts them:
the whole ``nn/`` folder lands in the first chunk, and the readers' loads come out uneven.

Sphinx's ``env-before-read-docs`` event exists to reorder the pages. This extension fills the
N chunks the readers start with by the longest-processing-time rule: slowest page first, each
into the chunk with the least execution so far; the remaining chunks take the fast pages.
Each page's cost is its execution time from the last ``python -m benchmarks.build`` run,
recorded in ``benchmarks/page_seconds.json``; a page with code cells that the record lacks
counts as a median page. The order changes only which reader executes a page, never what it
outputs.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util.parallel import make_chunks


def balanced_order(docnames: list[str], seconds: dict[str, float], readers: int) -> list[str]:
    """Order pages so that Sphinx's chunks for ``readers`` processes share the cost evenly.

    Args:
        docnames: the pages to read.
        seconds: each page's expected execution time; a missing page counts as 0.
        readers: the number of parallel reader processes (``-j``).

    Returns:
        The same pages, reordered: cut into Sphinx's chunks, the first ``readers`` chunks
        carry the slow pages, balanced between them.

    Example:
        >>> balanced_order(["a", "b", "c", "d"], {"a": 9, "b": 8, "c": 1}, readers=2)
        ['a', 'd', 'b', 'c']
    """
    sizes = [len(chunk) for chunk in make_chunks(docnames, readers)]
    chunks: list[list[str]] = [[] for _ in sizes]
    loads = [0.0] * len(sizes)
    for page in sorted(docnames, key=lambda name: (-seconds.get(name, 0.0), name)):
        free = [i for i, size in enumerate(sizes) if len(chunks[i]) < size]
        first = [i for i in free if i < readers] or free
        target = min(first, key=lambda i: (loads[i], i))
        chunks[target].append(page)
        loads[target] += seconds.get(page, 0.0)
    return [page for chunk in chunks for page in chunk]


def expected_seconds(env: BuildEnvironment, docnames: list[str], record: Path) -> dict[str, float]:
    """Each page's recorded execution time, or the median one for an unrecorded page with code."""
    recorded = json.loads(record.read_text()) if record.is_file() else {}
    typical = statistics.median(recorded.values()) if recorded else 1.0
    seconds = {}
    for name in docnames:
        if name in recorded:
            seconds[name] = float(recorded[name])
        elif "{code-cell}" in Path(env.doc2path(name)).read_text(encoding="utf-8"):
            seconds[name] = typical
    return seconds


def reorder(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """Reorder the pages to read in place, when they are read in parallel."""
    if app.parallel <= 1 or len(docnames) <= 1:
        return
    record = Path(app.confdir) / app.config.read_order_seconds
    docnames[:] = balanced_order(
        docnames, expected_seconds(env, docnames, record), readers=app.parallel
    )


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the reordering of a parallel read."""
    app.add_config_value("read_order_seconds", "benchmarks/page_seconds.json", "")
    app.connect("env-before-read-docs", reorder)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
