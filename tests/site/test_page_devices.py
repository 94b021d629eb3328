"""Pages that simulate devices ask for CPU devices, so their notebooks run on a GPU machine too.

``jax_num_cpu_devices`` splits the CPU into several devices, but on a machine with a GPU,
``jax.devices()`` lists the GPU, and a page that needs eight devices would find one. So a cell
that asks for simulated devices first sets ``jax_platforms`` to ``"cpu"``.
"""

import re
from pathlib import Path

import jupytext
import pytest

pytestmark = pytest.mark.sources

DOCS = Path(__file__).resolve().parents[2] / "docs"
SIMULATES_DEVICES = re.compile(r"""["']jax_num_cpu_devices["']""")
ASKS_FOR_CPU = re.compile(r"""jax\.config\.update\(\s*["']jax_platforms["'],\s*["']cpu["']\s*\)""")
PAGES = sorted(
    path.relative_to(DOCS).as_posix()
    for path in DOCS.rglob("*.md")
    if "_build" not in path.parts and SIMULATES_DEVICES.search(path.read_text())
)


def test_some_pages_simulate_devices():
    assert {"transforms/pmap.md", "nn/data-parallel.md", "nn/multi-process.md"} <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_a_cell_that_simulates_devices_asks_for_cpu_devices_first(page):
    notebook = jupytext.read(DOCS / page, fmt="md:myst")
    unasked = []
    for index, cell in enumerate(notebook.cells):
        simulated = SIMULATES_DEVICES.search(cell.source) if cell.cell_type == "code" else None
        if simulated and "jax.config.update" in cell.source[: simulated.end()]:
            asked = ASKS_FOR_CPU.search(cell.source)
            if asked is None or asked.start() > simulated.start():
                unasked.append(f"cell {index}")
    assert unasked == [], f"{page}: set jax_platforms to 'cpu' before simulating devices"


def test_the_check_finds_a_page_that_does_not_ask():
    cell = 'import jax\njax.config.update("jax_num_cpu_devices", 8)\n'
    assert SIMULATES_DEVICES.search(cell) and not ASKS_FOR_CPU.search(cell)
