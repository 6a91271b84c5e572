# Two commands do all the set-up: `make example` runs the workflow on the bundled example data,
# `make test` runs the tests. Both create .venv from requirements.lock first (once).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all

# The suite runs on every core (pytest-xdist): a module, or the modules sharing one finished workflow run, stays on one
# worker, and the longest start first (tests/conftest.py). The slowest tests are listed at the end of every run, so
# creeping time shows. WORKERS=0 runs it in one process.
WORKERS ?= auto
PYTEST := HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(WORKERS)
# The fast tier for the inner loop: the library tests and one small end-to-end run (marked smoke).
FAST := not (workflow or browser or slurm or envs or labelstudio) or smoke

.PHONY: example test check install system-deps test-deps lint locks clean

$(BIN)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

install: $(BIN)/.installed

system-deps:
	bash tools/install-system-deps.sh

# Debian packages the tests need beyond the workflow's own: chromium for the report's browser test,
# DejaVu for rendering German test text that Tesseract reads back.
test-deps: system-deps
	bash tools/install-system-deps.sh chromium fonts-dejavu-core

example: install system-deps
	$(BIN)/snakemake --cores $(CORES)
	@echo "Open the report: $(CURDIR)/results/report/index.html"

test: install test-deps
	$(PYTEST) --durations=25

check: install test-deps
	$(PYTEST) -m "$(FAST)" --durations=10

# After editing requirements.in (then requirements.lock), envs/requirements/*.in or tests/label-studio.in: rewrite
# every env file, and Label Studio's test lock, with its whole closure, pinned and hashed (needs the package index).
locks: install
	$(BIN)/python tools/lock_envs.py

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules/

clean:
	rm -rf results logs benchmarks .snakemake
