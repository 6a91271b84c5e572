# Two commands do all the set-up: `make example` runs the workflow on the bundled example data,
# `make test` runs the tests. Both create .venv from requirements.lock first (once).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
CONFIG ?= config/config.yaml
# The workflow's own folder: its tools are found when make runs from a study's folder (make -f .../Makefile).
WORKFLOW := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))

# The suite runs on every core (pytest-xdist): a module, or the modules sharing one finished workflow run, stays on one
# worker, and the longest start first (tests/conftest.py). The slowest tests are listed at the end of every run, so
# creeping time shows. WORKERS=0 runs it in one process.
WORKERS ?= auto
PYTEST := HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(WORKERS)
# The fast tier for the inner loop: the library tests and one small end-to-end run (marked smoke).
FAST := not (workflow or browser or slurm or envs or labelstudio) or smoke

.PHONY: example test check install system-deps test-deps lint locks clean clean-stores

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

# Results only: the stores (store.root: embeddings, signals, every paid LLM answer) stay. A study from
# before store.root may still hold them inside results/ (these were their places); its next run moves
# them out, and until then clean refuses rather than delete them.
OLD_STORES := results/embeddings results/cache/signals results/cache/llm.sqlite

clean:
	@for old in $(OLD_STORES); do \
	  if [ -e "$$old" ]; then \
	    echo "make clean: $$old is a store (embeddings, signals or paid LLM answers) inside results/. Nothing deleted." >&2; \
	    echo "  If its key is null, run the workflow once (snakemake -n is enough): it moves the store under store.root." >&2; \
	    echo "  If your configuration names it, set the key to null, or move the store and point the key at it." >&2; \
	    exit 1; \
	  fi; \
	done
	rm -rf results logs benchmarks .snakemake
	@echo "Kept the stores under store.root (make clean-stores deletes them)."

# Deletes the stores: lists each with its size first, then asks (YES=1: does not ask). CONFIG=my-study.yaml
# for a study's own stores. Uses the workflow's Python (.venv, or BIN=... for another environment's bin).
clean-stores:
	$(BIN)/python $(WORKFLOW)tools/clean_stores.py --configfile $(CONFIG) $(if $(YES),--yes)
