# The two commands a fresh machine needs: `make demo` and `make test`. CI runs `make test` too (.ci/run).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.demo-stamp
DEMO_ARGS ?=
# The demo installs wheels only, so that a machine without a compiler or headers runs it. http-ece (Web Push
# encryption) is published as source only; it is pure Python, built without a compiler.
PURE_PYTHON_SDISTS := http-ece
WHEELS_ONLY := --only-binary=:all: --no-binary=$(PURE_PYTHON_SDISTS)

.PHONY: demo test machine lint typecheck unit bench clean messages screenshots

# What the server, the agent and the demo run on, and nothing else.
$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade --only-binary=:all: pip
	$(BIN)/python -m pip install --quiet $(WHEELS_ONLY) -e '.[agent,server]'
	touch $@

# Everything for development and the tests; dbus-python (under python-dbusmock) builds from source, with the
# packages scripts/setup-machine installs.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(DEMO_STAMP)
	mkdir -p var
	exec $(BIN)/nahbar demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The whole suite runs in PYTEST_WORKERS processes (pytest-xdist, each test file on one of them): most tests
# wait on servers, browsers and databases rather than a core, so on two cores two processes took 11 minutes
# where one took 18-22, and three 9. The API fuzz runs on its own afterwards: under xdist, schemathesis's cases are not collected.
# With PYTEST_ARGS, pytest runs just that, in one process.
PYTEST_WORKERS ?= 3
FUZZ := tests/test_api_fuzz.py
unit: $(STAMP)
ifeq ($(strip $(PYTEST_ARGS)),)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --ignore=$(FUZZ)
	$(BIN)/pytest $(FUZZ)
else
	$(BIN)/pytest $(PYTEST_ARGS)
endif

# The pages' text: extract the English msgids from server/web (code and templates) and merge them into the
# German catalogue, whose new entries then want a translation (tests/test_web_catalogue.py names them). The
# server compiles the .po in memory when it starts: no .mo file is made or committed.
messages: $(STAMP)
	$(BIN)/pybabel extract -F server/web/babel.cfg --no-location --sort-output \
		--project=nahbar -o $(VENV)/messages.pot server/web
	$(BIN)/pybabel update -i $(VENV)/messages.pot -d server/web/locale -l de \
		--no-fuzzy-matching --ignore-obsolete --no-wrap

# The README's tour: the browser tests save the main pages, German and English, at a phone's width.
screenshots: $(STAMP)
	NAHBAR_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/test_admin_browser.py tests/test_impact_browser.py

# The machine first (system packages, PostgreSQL; it changes nothing where all is there), then the checks.
test: machine
	$(MAKE) --no-print-directory lint typecheck unit

machine:
	bash scripts/setup-machine

# beacontools is the peer parser the agent's benchmark compares with: installed for it, not a dependency.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet 'beacontools==2.1.0'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var/*.db var/*.db-wal var/*.db-shm .pytest_cache .mypy_cache .ruff_cache
