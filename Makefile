# Oddball: every install step lives here, so a fresh machine needs only `make demo` or `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/oddball
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

.PHONY: setup demo test bench lint format clean

setup: $(STAMP)

# The venv is reused when present; the stamp is redone when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.14.1
	$(PIP) install --quiet --no-deps torchaudio==2.11.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	bash scripts/demo.sh

test: setup
	SECRET_KEY=test-only-not-secret DATABASE_URL=$(PG_URL) ODDBALL_TEST_REDIS_URL=$(REDIS_TEST_URL) $(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	bash bench/run.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var/ .pytest_cache
