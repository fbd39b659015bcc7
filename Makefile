# Oddball: every install step lives here, so a fresh machine needs only `make demo` or `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/oddball
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
# axe-core for the accessibility audits in tests/browser; lives in .cache/ (gitignored).
AXE_VERSION := 4.14.1
AXE_DIR := .cache/npm/node_modules/axe-core

.PHONY: setup system axe messages demo test bench faults lint format clean

# Translations: each catalogue is compiled from its .po file; the .mo files are not committed.
MO := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))

setup: system $(STAMP) $(MO)

locale/%.mo: locale/%.po
	msgfmt --check -o $@ $<

# After changing a user-facing string: refresh the catalogues, translate, commit the .po files.
messages: setup
	SECRET_KEY=unused $(PY) manage.py makemessages --all --no-location \
		--ignore=.venv --ignore=.cache --ignore=var --ignore=tests --ignore=bench

# Debian packages, installed only when missing: Chromium for the browser tests (Playwright
# drives /usr/bin/chromium; it never downloads a browser of its own), gettext for msgfmt,
# npm for axe-core.
system:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v msgfmt >/dev/null || missing="$$missing gettext"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

# The venv is reused when present; the stamp is redone when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.14.1
	$(PIP) install --quiet --no-deps torchaudio==2.11.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

# Redone only when axe.min.js is missing or another version is pinned.
axe:
	@test -f $(AXE_DIR)/axe.min.js && grep -qs '"version": "$(AXE_VERSION)"' $(AXE_DIR)/package.json || \
		npm install --no-save --no-audit --no-fund --prefix .cache/npm axe-core@$(AXE_VERSION)

demo: setup
	bash scripts/demo.sh

test: setup axe
	SECRET_KEY=test-only-not-secret DATABASE_URL=$(PG_URL) ODDBALL_TEST_REDIS_URL=$(REDIS_TEST_URL) $(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	bash bench/run.sh

# Fault scenarios (bench/faults.py) on a private PostgreSQL (port 55432) and Redis (56379).
faults: setup
	$(PY) bench/faults.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var/ .pytest_cache test-artifacts/
