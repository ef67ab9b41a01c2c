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
# the viewer's browser tests (driven by Playwright, no browser download); Orthanc (with its
# DICOMweb plugin) is the real PACS of the networking tests, which start and stop their own;
# dcmtk's getscu / movescu are the network benchmark's peers, dicom3tools' dciodvfy validates.
SYSTEM_PACKAGES := dcm2niix chromium orthanc orthanc-dicomweb dcmtk dicom3tools
system-deps:
	@command -v dcm2niix >/dev/null && command -v chromium >/dev/null \
		&& command -v Orthanc >/dev/null && command -v getscu >/dev/null \
		&& command -v dciodvfy >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); }

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
