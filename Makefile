# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.radpipe-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench system-deps clean

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# dcm2niix is the reference converter the tests and benchmarks compare against; Chromium runs
# the viewer's browser tests (driven by Playwright, no browser download).
system-deps:
	@command -v dcm2niix >/dev/null && command -v chromium >/dev/null || { \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dcm2niix chromium; }

demo: $(STAMP)
	$(VENV)/bin/radpipe demo demo-output --overwrite

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

test: $(STAMP) lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-output build *.egg-info src/*.egg-info
