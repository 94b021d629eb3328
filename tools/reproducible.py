"""Build the site twice, the second time cold and from another folder, and compare the two.

Two builds must produce byte-identical HTML except the outputs of cells tagged ``timing`` and
the values those cells glue into prose (see ``docs/_ext/timing_outputs.py``). Both are
replaced by a placeholder before the pages are compared, so whatever else differs (a path, a
date, a process id, a memory address, an order from a set) fails the check, with the lines.

Run it with ``make reproducible``, or compare two finished builds::

    python -m tools.reproducible --compare _build/html /tmp/other/_build/html
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parent.parent
# The tag and the class come from the extension that marks the timings.
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
from timing_outputs import TIMING_CLASS, TIMING_TAG  # noqa: E402

# The class myst-nb gives a cell with that tag.
TIMING_CELL = f"tag_{TIMING_TAG}"
PLACEHOLDER = "[timing]"
# Written by Sphinx for its own incremental builds, not part of the site a reader gets.
NOT_PUBLISHED = (".doctrees", ".buildinfo")


def masked_page(html: str) -> str:
    """A page with the outputs of timing cells and the timings glued into prose blanked.

    >>> page = (
    ...     '<div class="cell tag_timing"><div class="cell_output">median 3 ms</div></div>'
    ...     '<p>It took <span class="pasted-text timing">3 ms</span>.</p>')
    >>> masked = masked_page(page)
    >>> masked.count("[timing]"), "3 ms" in masked
    (2, False)
    """
    soup = BeautifulSoup(html, "html.parser")
    for cell in soup.select(f".{TIMING_CELL}"):
        for output in cell.select(".cell_output"):
            output.clear()
            output.append(PLACEHOLDER)
    for value in soup.select(f".{TIMING_CLASS}"):
        value.clear()
        value.append(PLACEHOLDER)
    return str(soup)


def masked_notebook(text: str) -> str:
    """A downloadable notebook with the outputs of its timing cells blanked.

    >>> import nbformat.v4 as nbf
    >>> timed = nbf.new_code_cell("measure(f)", metadata={"tags": ["timing"]}, outputs=[
    ...     nbf.new_output("stream", name="stdout", text="median 3 ms")])
    >>> "3 ms" in masked_notebook(nbformat.writes(nbf.new_notebook(cells=[timed])))
    False
    """
    notebook = nbformat.reads(text, as_version=4)
    for cell in notebook.cells:
        if TIMING_TAG in cell.get("metadata", {}).get("tags", []):
            cell.outputs = []
    return nbformat.writes(notebook)


@dataclass
class Comparison:
    """What two builds of the site have in common and where they differ.

    Attributes:
        pages: the HTML pages compared (relative paths).
        differing_pages: the pages (and downloadable notebooks) that differ outside the timing
            outputs, each with the first lines of its diff.
        timing_pages: the pages whose timing outputs differ (and nothing else).
        differing_files: other published files that differ, with a reason when it is known.
        missing: files that only one build has.
    """

    pages: list[str] = field(default_factory=list)
    differing_pages: dict[str, str] = field(default_factory=dict)
    timing_pages: list[str] = field(default_factory=list)
    differing_files: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """True when every page is the same outside its timing outputs."""
        return not self.differing_pages and not self.missing_pages

    @property
    def missing_pages(self) -> list[str]:
        """Pages that only one of the builds has."""
        return [name for name in self.missing if name.endswith(".html")]


def published_files(site: Path) -> set[str]:
    """The site's files, as paths relative to it, without Sphinx's own bookkeeping."""
    return {
        path.relative_to(site).as_posix()
        for path in site.rglob("*")
        if path.is_file() and not path.relative_to(site).parts[0].startswith(NOT_PUBLISHED)
    }


def referenced_by_timing(site: Path, pages: list[str]) -> set[str]:
    """Files (images) that only the timing outputs of these pages show, relative to ``site``."""
    shown: set[str] = set()
    for page in pages:
        soup = BeautifulSoup((site / page).read_text(), "html.parser")
        for image in soup.select(f".{TIMING_CELL} .cell_output img"):
            shown.add(((site / page).parent / image["src"]).resolve().relative_to(site).as_posix())
    return shown


def why_file_differs(name: str, timing_images: set[str]) -> str:
    """The known reason a published file other than a page differs between two builds."""
    if name in timing_images:
        return "an image shown by a timing cell"
    if name == "searchindex.js":
        return "the search index holds the words of the timing outputs"
    return "unexplained"


def compare_sites(first: Path, second: Path) -> Comparison:
    """Compare two built sites page by page, blanking the timing outputs of each page.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for name, took in (("a", "3 ms"), ("b", "4 ms")):
    ...         site = Path(folder, name)
    ...         site.mkdir()
    ...         _ = (site / "index.html").write_text(
    ...             f'<p>Took <span class="timing">{took}</span> on a pure function.</p>')
    ...     comparison = compare_sites(Path(folder, "a"), Path(folder, "b"))
    >>> comparison.identical, comparison.timing_pages
    (True, ['index.html'])
    """
    first, second = first.resolve(), second.resolve()
    comparison = Comparison()
    names_first, names_second = published_files(first), published_files(second)
    comparison.missing = sorted(names_first ^ names_second)
    timing_images = set()
    for name in sorted(names_first & names_second):
        texts = [(site / name).read_bytes() for site in (first, second)]
        if name.endswith(".html"):
            comparison.pages.append(name)
        if texts[0] == texts[1]:
            continue
        if name.endswith(".ipynb"):
            if masked_notebook(texts[0].decode()) != masked_notebook(texts[1].decode()):
                comparison.differing_pages[name] = "its cells differ outside the timing cells"
            continue
        if not name.endswith(".html"):
            comparison.differing_files[name] = ""
            continue
        masked = [masked_page(text.decode()) for text in texts]
        if masked[0] == masked[1]:
            comparison.timing_pages.append(name)
            timing_images |= referenced_by_timing(first, [name])
            timing_images |= referenced_by_timing(second, [name])
            continue
        diff = difflib.unified_diff(
            *(text.splitlines() for text in masked), str(first / name), str(second / name), n=0
        )
        comparison.differing_pages[name] = "\n".join(list(diff)[:24])
    for name in comparison.differing_files:
        comparison.differing_files[name] = why_file_differs(name, timing_images)
    comparison.missing = [name for name in comparison.missing if name not in timing_images]
    return comparison


def report(comparison: Comparison, first: Path, second: Path) -> str:
    """The comparison as text: counts first, then each difference and its reason."""
    changed = set(comparison.timing_pages) | set(comparison.differing_pages)
    identical = len([page for page in comparison.pages if page not in changed])
    lines = [
        f"compared {len(comparison.pages)} pages of {first} and {second}",
        f"  identical byte for byte: {identical}",
        f"  differing only in timing outputs: {len(comparison.timing_pages)}",
        f"  pages or notebooks differing outside them: {len(comparison.differing_pages)}",
    ]
    for page in comparison.timing_pages:
        lines.append(f"    timing only: {page}")
    reasons: dict[str, list[str]] = {}
    for name, reason in comparison.differing_files.items():
        reasons.setdefault(reason, []).append(name)
    for reason, names in sorted(reasons.items()):
        lines.append(f"  other files differing ({reason}): {len(names)}")
    for name in comparison.missing:
        lines.append(f"  only in one build: {name}")
    for page, diff in comparison.differing_pages.items():
        lines.append(f"\n{page} differs outside its timing outputs:\n{diff}")
    return "\n".join(lines)


def copy_sources(target: Path) -> None:
    """Copy the files git tracks or would track (committed or not) into ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def sphinx_build(sources: Path, html: Path, jobs: str, environment: dict[str, str]) -> Path:
    """Build the site of ``sources`` from scratch into ``html``; returns ``html``."""
    command = [sys.executable, "-m", "sphinx", "-c", ".", "docs", str(html), "-E"]
    subprocess.run(
        [*command, "-j", jobs, "-W", "--keep-going", "-q"],
        cwd=sources,
        env=environment,
        check=True,
    )
    return html


def build_twice(folder: Path, jobs: str) -> tuple[Path, Path]:
    """Build the site twice into ``folder``: once as ``make html`` does, once cold elsewhere.

    The first build reads every page afresh into a new folder (so no page or image left over
    from an older build counts), taking the outputs from the execution cache, which runs
    only the pages it has no run of. The second copies the sources to ``folder/sources``
    and runs every page there with an empty cache and that copy's packages, so an absolute
    path, a process id or anything else a run leaves in a page would show.
    """
    if folder.exists():
        shutil.rmtree(folder)
    first = sphinx_build(ROOT, folder / "first", jobs, dict(os.environ))
    sources = folder / "sources"
    copy_sources(sources)
    environment = {**os.environ, "PYTHONPATH": str(sources / "src")}
    environment.pop("JAX_DOCS_CACHE", None)
    return first, sphinx_build(sources, sources / "_build" / "html", jobs, environment)


def main(argv: list[str] | None = None) -> int:
    """Build twice and compare, or compare two builds; exits 1 when a page differs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=ROOT / "_build" / "rebuild")
    parser.add_argument("--jobs", default="auto")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("FIRST", "SECOND"))
    args = parser.parse_args(argv)
    if args.compare:
        first, second = args.compare
        for site in (first, second):
            if not (site / "index.html").exists():
                parser.error(f"{site} holds no built site (no index.html)")
    else:
        first, second = build_twice(args.folder, args.jobs)
    comparison = compare_sites(first, second)
    print(report(comparison, first, second))
    return 0 if comparison.identical else 1


if __name__ == "__main__":
    sys.exit(main())
