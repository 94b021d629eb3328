"""The site's Sphinx extensions, function by function, without building the site."""

import doctest
import importlib.util
from pathlib import Path

import pytest
import tinycss2
from bs4 import BeautifulSoup
from sphinx.application import Sphinx

from tests.paths import DOCS

pytestmark = pytest.mark.sources

EXTENSIONS = DOCS / "_ext"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXTENSIONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODULES = sorted(path.stem for path in EXTENSIONS.glob("*.py"))
lean_pages = load("lean_pages")
css_trim = load("lean_stylesheets")
accessible_pages = load("accessible_pages")
katex_math = load("katex_math")
diagrams = load("diagrams")


@pytest.mark.parametrize("name", MODULES)
def test_each_extension_has_a_docstring_and_its_examples_pass(name):
    module = load(name)
    assert module.__doc__, f"docs/_ext/{name}.py says nothing about what it does"
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.fixture
def sphinx_app(tmp_path):
    source = tmp_path / "docs"
    source.mkdir()
    (source / "conf.py").write_text("")
    (source / "index.rst").write_text("Index\n=====\n")
    out = tmp_path / "_build"
    return Sphinx(source, source, out / "html", out / "doctrees", "html", status=None)


@pytest.mark.parametrize("name", MODULES)
def test_each_extension_declares_its_version_and_parallel_safety(sphinx_app, name):
    metadata = load(name).setup(sphinx_app)
    assert isinstance(metadata.get("version"), str), f"docs/_ext/{name}.py: setup has no version"
    for key in ("parallel_read_safe", "parallel_write_safe"):
        assert isinstance(metadata.get(key), bool), f"docs/_ext/{name}.py: setup has no {key}"


# Trimming stylesheets.


def test_a_selector_list_splits_only_at_its_own_commas():
    (rule,) = css_trim.parse_rules("a:is(.x, .y), .z > b { color: red }")
    selectors = [tinycss2.serialize(s).strip() for s in css_trim.selectors_of(rule)]
    assert selectors == ["a:is(.x, .y)", ".z > b"]


def test_a_selector_requires_its_classes_and_ids_but_not_those_in_functions():
    (rule,) = css_trim.parse_rules("div.card#main > .title:not(.hidden) { color: red }")
    (selector,) = css_trim.selectors_of(rule)
    assert css_trim.names_in_selector(selector) == {"card", "main", "title"}


def test_unused_selectors_go_and_used_ones_stay_with_their_declarations():
    css = ".used, .unused { color: red } .gone { margin: 0 } p { padding: 1px }"
    trimmed = css_trim.trim_stylesheet(css, {"used"})
    assert [rule.type for rule in css_trim.parse_rules(trimmed)] == ["qualified-rule"] * 2
    assert trimmed == ".used{ color: red }p{ padding: 1px }"


def test_grouping_rules_keep_what_is_used_and_vanish_when_empty():
    css = (
        "@media (max-width: 600px) { .used { color: red } .gone { color: blue } }"
        "@media print { .gone { display: none } }"
        "@font-face { font-family: x; src: url(x.woff2) }"
        "@keyframes spin { from { opacity: 0 } to { opacity: 1 } }"
    )
    trimmed = css_trim.trim_stylesheet(css, {"used"})
    rules = css_trim.parse_rules(trimmed)
    assert [(r.type, r.lower_at_keyword) for r in rules] == [
        ("at-rule", "media"),
        ("at-rule", "font-face"),
        ("at-rule", "keyframes"),
    ]
    assert ".gone" not in trimmed and ".used{ color: red }" in trimmed


def test_license_notices_stay_and_other_comments_go():
    css = "/*! a licence */ /* a note */ .x { color: red }"
    assert css_trim.trim_stylesheet(css, None) == "/*! a licence */\n.x{ color: red }"


def test_the_icon_font_rules_go_only_when_asked():
    css = (
        '@font-face { font-family: "Font Awesome 6 Free"; src: url(fa.woff2) }'
        ".fa-check:before, .fas { content: '' } .a { --fa-size: 1 } .b { color: red }"
    )
    assert css_trim.trim_stylesheet(css, None, icon_font=True) == ".b{ color: red }"
    assert css_trim.trim_stylesheet(css, None).count("{") == 4


def test_unparseable_css_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="cannot parse this CSS .* fix the stylesheet"):
        css_trim.trim_stylesheet(".a { color: red } }", None)


def test_the_theme_stylesheet_trims_to_well_formed_css_that_uses_only_used_names():
    theme = next(
        Path(tinycss2.__file__)
        .parents[1]
        .glob(
            "pydata_sphinx_theme/theme/pydata_sphinx_theme/static/styles/pydata-sphinx-theme.css"
        )
    )
    used = {"bd-header", "navbar-brand", "bd-sidebar-primary", "active", "dark"}
    trimmed = css_trim.trim_stylesheet(theme.read_text(encoding="utf8"), used, icon_font=True)
    assert len(trimmed) < theme.stat().st_size / 2
    parsed = css_trim.parse_rules(trimmed)  # raises on a cut rule or comment

    def names(rules):
        for rule in rules:
            if rule.type == "qualified-rule":
                for selector in css_trim.selectors_of(rule):
                    yield from css_trim.names_in_selector(selector)
            elif rule.type == "at-rule" and rule.lower_at_keyword in css_trim.GROUPING_AT_RULES:
                yield from names(css_trim.parse_rules(rule.content))

    kept = set(names(parsed))
    assert kept and kept <= used
    # The icon font is gone (its licence notice stays, as licences require).
    assert not [rule for rule in parsed if css_trim.is_icon_font_rule(rule)]
    assert "fontawesome" not in "".join(rule.serialize() for rule in parsed).lower()


def test_images_without_a_loading_attribute_are_made_lazy():
    assert lean_pages.IMG_WITHOUT_LOADING.sub('<img loading="lazy"', '<img src="a.png">') == (
        '<img loading="lazy" src="a.png">'
    )
    assert not lean_pages.IMG_WITHOUT_LOADING.search('<img loading="eager" src="a.png">')


# Accessible names.


def test_a_fold_without_text_is_named_after_its_pages_and_one_with_text_is_left():
    sidebar = BeautifulSoup(
        '<li><a href="a.html">Part A</a><details><summary></summary></details></li>'
        '<li><a href="b.html">Part B</a><details><summary>Open</summary></details></li>',
        "html.parser",
    )
    named = accessible_pages.name_sidebar_toggles(sidebar)
    assert [s.get_text() for s in named.select("summary")] == ["Pages under Part A", "Open"]


def test_hidden_cell_toggles_are_named_by_the_text_they_show():
    context = {"body": f"{accessible_pages.LABEL_HIDING_VISIBLE_TEXT}Show code</summary>"}
    accessible_pages.name_toggles_by_their_text(None, "page", "page.html", context, None)
    assert context["body"] == "<summary>Show code</summary>"


# Math typeset at build time.


def test_katex_typesets_inline_and_display_math_with_a_mathml_copy():
    typeset = katex_math.make_typesetter()
    inline = BeautifulSoup(typeset(r"\frac{a}{b}", False), "html.parser")
    display = BeautifulSoup(typeset(r"\sum_i x_i", True), "html.parser")
    assert inline.select_one(".katex .katex-html") and inline.select_one(".katex math")
    assert inline.select_one(".katex-display") is None
    assert display.select_one(".katex-display")
    assert "mfrac" in str(inline.select_one("math"))


def test_katex_refuses_bad_latex():
    with pytest.raises(Exception, match="KaTeX parse error"):
        katex_math.make_typesetter()(r"\frac{a}{", False)


read_order = load("read_order")


def test_the_slow_pages_are_shared_evenly_by_the_chunks_the_readers_start_with():
    from sphinx.util.parallel import make_chunks

    # Sorted, the slow folder would fill the first chunk alone.
    seconds = {f"nn/page{i}": 30.0 - i for i in range(8)} | {"api/x": 0.5, "core/a": 5.0}
    pages = sorted([*seconds, *(f"ref/{i:02d}" for i in range(30))])
    order = read_order.balanced_order(pages, seconds, readers=2)
    assert sorted(order) == pages
    chunks = make_chunks(order, 2)
    assert [len(c) for c in chunks] == [len(c) for c in make_chunks(pages, 2)]
    loads = [sum(seconds.get(page, 0.0) for page in chunk) for chunk in chunks]
    # Longest-processing-time rule: the two first loads differ by at most the slowest page's
    # share, and nothing slow is left for the later chunks.
    assert abs(loads[0] - loads[1]) <= max(seconds.values())
    assert sum(loads[2:]) == 0
    sorted_loads = [sum(seconds.get(p, 0.0) for p in c) for c in make_chunks(pages, 2)]
    assert max(loads) < max(sorted_loads)


def test_a_serial_read_keeps_sphinx_order():
    from types import SimpleNamespace

    pages = ["b", "a"]
    app = SimpleNamespace(parallel=1)
    read_order.reorder(app, None, pages)
    assert pages == ["b", "a"]


def test_an_unrecorded_page_with_code_counts_as_a_typical_page(tmp_path):
    from types import SimpleNamespace

    (tmp_path / "new.md").write_text("```{code-cell} ipython3\n1\n```\n")
    (tmp_path / "prose.md").write_text("# Only words\n")
    record = tmp_path / "seconds.json"
    record.write_text('{"old": 4.0, "older": 10.0}')
    env = SimpleNamespace(doc2path=lambda name: tmp_path / f"{name}.md")
    seconds = read_order.expected_seconds(env, ["old", "new", "prose"], record)
    assert seconds == {"old": 4.0, "new": 7.0}
