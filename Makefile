# 粤政图 — everything a fresh machine needs, installed by the project itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench data venv chromium postgis postgres clean help

help:
	@echo "make run    - the dashboard on http://127.0.0.1:8050 (bundled data, SQLite, no server)"
	@echo "make test   - the whole test suite on SQLite, then on a throwaway PostgreSQL cluster (installs what it needs)"
	@echo "make test-fast - the inner loop: no browser, no slow tests, SQLite only"
	@echo "make bench  - benchmarks -> BENCHMARKS.md and bench/results.json"
	@echo "make data   - rebuild data/ from ../shared/data (reproducible, seeded)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@# the offline situation-map export needs Leaflet from the npm registry (never a CDN at view time)
	$(BIN)/python scripts/fetch_js_assets.py || echo "WARNING: Leaflet not fetched; map exports will say they need the internet"
	touch $(STAMP)

venv: $(STAMP)

# Browser tests drive Debian's chromium; `playwright install` cannot download here.
# fonts-noto-cjk: without it headless chromium draws Chinese as empty boxes (screenshots, tests).
chromium:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'noto.*cjk'; then \
	  echo "installing Debian chromium and CJK fonts for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null) \
	    || echo "WARNING: could not install chromium; browser tests will be skipped"; \
	fi

# The bench's reference query and make test's second pass run in throwaway PostgreSQL + PostGIS clusters
# (bench/postgis.py, scripts/pg_test_cluster.sh); Debian's postgis pulls in the server.
postgres: postgis
postgis:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	    ! ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then \
	  echo "installing Debian PostgreSQL + PostGIS (the shared store's tests, the benchmark's reference query)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql postgis >/dev/null) \
	    || echo "WARNING: could not install PostgreSQL/PostGIS; make test's PostgreSQL pass will fail, the bench skips PostGIS"; \
	fi

# First run: creates the admin with a random password, printed once (no default password exists).
run: venv
	$(BIN)/yzt admin ensure
	$(BIN)/yzt serve

# Both backends pass the same tests: the suite on SQLite, then on a throwaway PostgreSQL cluster (removed
# at the end, even on failure). YZT_TEST_DATABASE=postgresql://... runs one pass against a server of yours.
test: venv chromium postgres
	PYTHON=$(BIN)/python scripts/test_both_backends.sh

test-fast: venv
	$(BIN)/python -m pytest -n 2 -m "not slow and not browser" --ignore=tests/dashboard/browser tests

bench: venv chromium postgis
	$(BIN)/python -m bench

data: venv
	$(BIN)/yzt data build --shared ../shared/data

clean:
	rm -rf $(VENV) var .pytest_cache
