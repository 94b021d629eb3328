"""Sphinx configuration for the Just After eXecution site (sources in docs/)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).parent.resolve()
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

project = "Just After eXecution"
author = "The Just After eXecution authors"
copyright = "2026, the Just After eXecution authors"
html_title = "Just After eXecution"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "sphinx_design",
    "sphinx_copybutton",
    "sphinx_exercise",
    "sphinx_togglebutton",
    "live_execution",
    "read_order",
    "notebook_downloads",
    "timing_outputs",
    "run_it_yourself",
    "lean_pages",
    "lean_stylesheets",
    "accessible_pages",
    "katex_math",
    "diagrams",
    "notfound.extension",
]
# Math is typeset during the build (docs/_ext/katex_math.py): pages ship no math script.
html_math_renderer = "katex_prerender"

exclude_patterns = ["_build", "_ext", "_ipython", "**.ipynb_checkpoints", "jupyter_execute"]
nitpicky = False

# --- MyST and notebook execution -----------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3

# Every page runs on every build whose inputs changed; jupyter-cache keeps the rest.
nb_execution_mode = os.environ.get("JAX_DOCS_EXECUTION", "cache")
if nb_execution_mode == "off":
    # `make doctest` reads the pages without running them; a page that is not run has no
    # glued values and no kernel language, which is expected there and nowhere else.
    suppress_warnings = ["mystnb.glue", "myst-nb.lexer"]
nb_execution_cache_path = os.environ.get("JAX_DOCS_CACHE", str(ROOT / "_build" / ".jupyter_cache"))
nb_execution_excludepatterns: list[str] = []
nb_execution_timeout = int(os.environ.get("JAX_DOCS_CELL_TIMEOUT", "120"))
# A failing cell is a warning that carries the page, the cell and its traceback, and -W fails
# the build on it. An exception instead would lose them in a parallel build (-j), which keeps
# a failed reader's message but drops what it logged.
nb_execution_raise_on_error = False
nb_execution_show_tb = True
nb_merge_streams = True
nb_kernel_rgx_aliases = {".*": "python3"}
# The kernels myst-nb starts inherit this process's environment, so they read the profile in
# docs/_ipython: its startup file makes a DeprecationWarning, FutureWarning or
# PendingDeprecationWarning raised in a cell an error, which fails the build (see the README).
os.environ["IPYTHONDIR"] = str(ROOT / "docs" / "_ipython")

# --- Diagrams (docs/_ext/diagrams.py): Graphviz draws them at build time, as SVG --------------
graphviz_output_format = "svg"
graphviz_dot_args = [
    "-Gbgcolor=transparent",
    "-Gfontname=DejaVu Sans",
    "-Nfontname=DejaVu Sans",
    "-Efontname=DejaVu Sans",
]

# --- Exercises ------------------------------------------------------------------------------
# sphinx-exercise numbers each exercise and links its solution to it; the solution's cells run
# with the page. A solution with `:class: dropdown` stays folded (sphinx-togglebutton) until
# the reader opens it.
togglebutton_hint = "Show the solution"
togglebutton_hint_hide = "Hide the solution"

# --- API reference ---------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # attributes as fields: NamedTuple fields are also autodoc members
doctest_global_setup = "import jax\nimport jax.numpy as jnp\n"

# --- HTML ------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
templates_path = ["docs/_templates"]
html_static_path = ["docs/_static"]
html_css_files = ["site.css"]
html_logo = "docs/_static/logo.svg"
html_favicon = "docs/_static/favicon.svg"
html_last_updated_fmt = None
html_copy_source = True
html_show_sphinx = False
html_context = {
    # Chosen by the reader with the theme switch; "auto" follows the system setting.
    "default_mode": "auto",
    # Search results show these for the pages Sphinx writes itself; every other page sets
    # its own in its front matter.
    "generated_page_descriptions": {
        "genindex": "Index of every function, class and term on Just After eXecution.",
        "py-modindex": (
            "Every module of purenn, the library the site's pages run against, and of tinyjax,"
            " the small JAX built from scratch."
        ),
        "search": "Search Just After eXecution: JAX's transforms, networks as functions, purenn.",
        "404": "No page of Just After eXecution is at this address; the site map lists them all.",
    },
}
# The module index lists the modules of purenn and tinyjax by their own names, in one flat list.
modindex_common_prefix = ["purenn.", "tinyjax."]
# The repository button links the site's source only where its address is known: set
# JAX_DOCS_REPOSITORY_URL (say, in CI) to show it; unset, no page links a guessed address.
REPOSITORY_URL = os.environ.get("JAX_DOCS_REPOSITORY_URL", "").strip()
html_theme_options = {
    **(
        {"repository_url": REPOSITORY_URL, "path_to_docs": "docs", "use_repository_button": True}
        if REPOSITORY_URL
        else {"use_repository_button": False}
    ),
    "use_download_button": True,
    "use_source_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "logo": {"text": "Just After eXecution", "alt_text": "Just After eXecution: home"},
}
# The 404 page is served for any missing path, so its links are absolute from the site root.
notfound_urls_prefix = os.environ.get("JAX_DOCS_URL_PREFIX", "/")
notfound_context = {
    "title": "Page not found",
    "body": (
        "<h1>Page not found</h1>"
        "<p>There is no page at this address. The <a href='"
        + notfound_urls_prefix
        + "index.html'>map of the site</a> lists every page, and the search box finds"
        " any function or idea on them.</p>"
    ),
}

copybutton_prompt_text = r">>> |\.\.\. "
copybutton_prompt_is_regexp = True
copybutton_exclude = ".linenos, .gp, .go"


def skip_named_tuple_fields(app, what, name, obj, skip, options):
    """Leave out a NamedTuple's fields: its Attributes section already describes each one.

    autodoc would list them again as members whose only text is "Alias for field number N".
    """
    if what == "class" and (getattr(obj, "__doc__", None) or "").startswith("Alias for field"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_named_tuple_fields)
