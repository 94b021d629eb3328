"""Where the tests find the repository, its pages and the built site."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SITE = ROOT / "_build" / "html"


def site_pages() -> list[str]:
    """Every page of the site, as a docname such as ``transforms/vmap``."""
    return sorted(
        path.relative_to(DOCS).with_suffix("").as_posix()
        for path in DOCS.rglob("*.md")
        if not any(part.startswith("_") for part in path.relative_to(DOCS).parts)
    )


def notebook_pages() -> list[str]:
    """The pages that are executed notebooks (and so offer an ``.ipynb`` download)."""
    return [p for p in site_pages() if "file_format: mystnb" in (DOCS / f"{p}.md").read_text()]


# Pages Sphinx writes itself, with no source in docs/.
GENERATED_PAGES = ["404", "genindex", "py-modindex", "search"]


def every_page() -> list[str]:
    """The pages from docs/ and the ones Sphinx generates: all that a reader can land on."""
    return site_pages() + GENERATED_PAGES


TEACHING_PARTS = ("intro", "transforms", "core", "scratch", "nn", "advanced", "science")


def teaching_pages() -> list[str]:
    """The lessons: every page of the parts that teach (not the map, not the reference)."""
    return [p for p in site_pages() if p.split("/")[0] in TEACHING_PARTS]
