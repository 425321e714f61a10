# Two commands on a fresh machine with only Python 3.11 (and Node 20 for the dashboard):
#   make demo   set up and run the whole stack with a live feeder and the dashboard
#   make test   set up and run the linters and every test (Python, frontend, browser)
#   make test-fast  the linters and the tests that start no process and are quick (under a minute)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DIST := frontend/dist/index.html
FRONTEND_SOURCES := $(shell find frontend/src frontend/index.html frontend/package.json frontend/vite.config.ts -type f 2>/dev/null)

.PHONY: demo test test-fast lint audit install frontend frontend-test types clean lock lock-check

# The locked, hashed dependencies (requirements/dev.txt: runtime + the local and test extras), then mdstack itself.
$(BIN)/.installed: pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(BIN)/.installed

# The dashboard is optional for the stack: without npm, the API and the stream still work.
$(DIST): $(FRONTEND_SOURCES)
	@if command -v npm >/dev/null 2>&1; then \
		cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build; \
	else \
		echo "npm not found: the dashboard is not built (install Node 20 to get it)"; \
	fi

frontend: $(DIST)

demo: install frontend
	$(BIN)/mdstack up

lint: install
	$(BIN)/ruff check services harness tests bench deploy/tools
	$(BIN)/ruff format --check services harness tests bench deploy/tools
	$(BIN)/mypy services/common harness

frontend-test:
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run typecheck && npm test && npm run build

# The dashboard's API types (frontend/src/api/schema.gen.ts) from the API's OpenAPI document, after a change
# to services/common/contract.py or a route; CI fails when the committed file is stale (tests/contract).
types: install
	@test -d frontend/scripts/openapi-types/node_modules || (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
	$(BIN)/python deploy/tools/gen_types.py

# Known vulnerabilities (pip-audit, npm audit): a finding fails; advisory data out of reach prints AUDIT NOT RUN,
# and fails too with MDSTACK_REQUIRE_AUDIT=1 (the GitHub workflow).
audit: install
	$(BIN)/python deploy/tools/audit.py

# Two workers (pytest-xdist): most tests wait on processes, servers and timeouts, so 2 cores run two at once.
# Tests go to whichever worker is free (--dist load). Not loadfile or loadgroup: they schedule by node id, and
# schemathesis gives every API operation of one test the same id (tests/security/test_fuzz.py: 40 items, 5 ids),
# so they run each id once and silently drop the other 35.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist load

test: lint audit frontend-test
	$(BIN)/pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The tests that start no process (harness/lanes.py fails a test that starts one unmarked) and take no seconds:
# in-process apps on the real Redis and Postgres. `make test` runs these and the e2e, fault, browser and slow lanes.
FAST_LANE := not e2e and not fault and not browser and not slow
test-fast: lint
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "$(FAST_LANE)" $(PYTEST_ARGS)

# Rewrite the lock files from pyproject.toml (pins already there are kept; `make lock UPGRADE=1` moves them all).
# The image's lock (prod.txt) holds the runtime dependencies and the `kafka` extra; dev.txt every extra.
LOCK = $(BIN)/uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock" -q $(if $(UPGRADE),--upgrade)
lock: install
	$(LOCK) --extra kafka -o requirements/prod.txt
	$(LOCK) --all-extras -o requirements/dev.txt

# Fails when pyproject.toml and the locks drift (needs the package index; tests/supply_chain/test_lock.py checks
# the same offline).
lock-check: install
	@tmp=$$(mktemp -d) && cp requirements/*.txt $$tmp/ \
	 && $(LOCK) --extra kafka -o $$tmp/prod.txt && $(LOCK) --all-extras -o $$tmp/dev.txt \
	 && diff -u requirements/prod.txt $$tmp/prod.txt && diff -u requirements/dev.txt $$tmp/dev.txt \
	 && echo "lock-check: requirements/*.txt match pyproject.toml"

clean:
	rm -rf $(VENV) .mdstack .pytest_cache frontend/node_modules frontend/dist
