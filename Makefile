# Two commands do all the set-up: `make example` runs the workflow on the bundled example data,
# `make test` runs the tests. Both create .venv from requirements.lock first (once).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: example test install system-deps test-deps lint locks clean

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
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# After editing requirements.in (then requirements.lock), envs/requirements/*.in or tests/label-studio.in: rewrite
# every env file, and Label Studio's test lock, with its whole closure, pinned and hashed (needs the package index).
locks: install
	$(BIN)/python tools/lock_envs.py

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules/

clean:
	rm -rf results logs benchmarks .snakemake
