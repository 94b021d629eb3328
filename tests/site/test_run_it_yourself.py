"""Every executed page ends with a note that says how to run its notebook elsewhere."""

import sys
import zipfile
from pathlib import Path
from urllib.parse import urljoin

import pytest
from bs4 import BeautifulSoup

from tests.paths import DOCS, SITE, notebook_pages

sys.path.insert(0, str(DOCS / "_ext"))
from run_it_yourself import WHEEL_FOLDER, page_pins, wheel_name  # noqa: E402

pytestmark = pytest.mark.built


def test_the_wheel_is_published_with_both_packages():
    wheel = SITE / WHEEL_FOLDER / wheel_name()
    names = zipfile.ZipFile(wheel).namelist()
    assert "purenn/__init__.py" in names and "tinyjax/__init__.py" in names
    assert not any("__pycache__" in name for name in names)


@pytest.mark.parametrize("page", notebook_pages())
def test_the_note_links_the_wheel_and_pins_what_the_page_imports(page):
    soup = BeautifulSoup((SITE / f"{page}.html").read_text(), "html.parser")
    (note,) = soup.select(".admonition.run-it-yourself")
    assert note.select_one(".admonition-title").get_text() == "Run it yourself"
    (link,) = note.select("a")
    target = Path(urljoin(f"{SITE.as_posix()}/{page}.html", link["href"]))
    assert target == SITE / WHEEL_FOLDER / wheel_name() and target.is_file()
    words = [word for word in note.select_one("pre").get_text().split() if word != "\\"]
    assert words[:3] == ["pip", "install", wheel_name()]
    assert words[3:] == page_pins((DOCS / f"{page}.md").read_text())
    # The note is the page's last word, after its exercises.
    assert note.find_next_sibling() is None
