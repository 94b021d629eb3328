# Build the site and run the tests. The first target run creates .venv from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SPHINX := $(BIN)/sphinx-build -c . docs
# Pages are read, and so executed, in parallel: one reader per core (benchmarks/build.py
# measures it against a serial build).
JOBS ?= auto
SPHINXOPTS ?= -j $(JOBS) -W --keep-going -q
STAMP := $(VENV)/.installed

.PHONY: html test test-lib doctest pytest reproducible livehtml bench lint lock clean system-deps

# Debian packages: Graphviz draws the diagrams at build time, Chromium (with a font) runs the
# browser tests. Nothing else comes from outside the lock.
DEBIAN_PACKAGES := chromium fonts-dejavu-core graphviz

html: system-deps $(STAMP)
	$(SPHINX) -b html _build/html $(SPHINXOPTS)
	@echo "Built the site: open _build/html/index.html"

# The whole check: the site builds with every page executed, the docstring examples pass,
# and the tests of the library and of the built site pass.
test: html doctest pytest

# Runs the >>> examples in purenn's docstrings. Notebooks are not executed for this. The output
# sits one level down so that its unexecuted notebooks land apart from the site's executed ones.
doctest: $(STAMP)
	JAX_DOCS_EXECUTION=off $(SPHINX) -b doctest _build/doctest/output $(SPHINXOPTS)
	@tail -n 5 _build/doctest/output/output.txt

# The tests run in TEST_JOBS worker processes (pytest-xdist). Most of a test's time is spent
# waiting on Chromium, a Sphinx build or worker processes, so there are more workers than
# cores; modules that share one costly fixture are kept on one worker (xdist_group).
TEST_JOBS ?= 3
pytest: system-deps $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup

# The libraries alone: nothing is built, so a change to purenn or tinyjax is checked in minutes.
test-lib: $(STAMP)
	$(BIN)/python -m pytest tests/purenn tests/tinyjax

# Builds the site twice in _build/rebuild (from scratch with the execution cache, then cold from
# a copy of the sources) and fails if a page differs anywhere but in the outputs of `timing` cells.
reproducible: system-deps $(STAMP)
	$(BIN)/python -m tools.reproducible

livehtml: $(STAMP)
	$(BIN)/sphinx-autobuild -c . docs _build/html --host 127.0.0.1 --port 8000 \
		--watch src --ignore "*/jupyter_execute/*" $(SPHINXOPTS)

bench: $(STAMP)
	@for script in benchmarks/[a-z]*.py; do echo "== $$script"; \
		$(BIN)/python -m benchmarks.$$(basename $$script .py) || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Recompile the lock from pyproject.toml (needs uv on PATH; not part of the normal build).
lock:
	uv pip compile pyproject.toml requirements.in --extra docs --extra peers --extra test \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--generate-hashes --no-header -o requirements.lock

# Installs the Debian packages that are missing: with apt as root, otherwise it names the command.
system-deps:
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "ok installed" \
			|| missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -eq 0 ]; then \
			echo "Installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends $$missing >/dev/null || exit 1; \
		else \
			echo "Missing Debian packages:$$missing. Run: sudo apt-get install$$missing" >&2; \
			exit 1; \
		fi; \
	fi

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		--no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation --editable .
	touch $@

# Keeps the execution cache (_build/.jupyter_cache): its entries are keyed on each page's code,
# the library and the lock, so they are never stale. Delete it to run every page again.
clean:
	rm -rf _build/html _build/doctest _build/jupyter_execute
