# Two commands on a fresh machine with only Python 3.11 (and Node 20 for the dashboard):
#   make demo   set up and run the whole stack with a live feeder and the dashboard
#   make test   set up and run the linters and every test (Python, frontend, browser)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DIST := frontend/dist/index.html
FRONTEND_SOURCES := $(shell find frontend/src frontend/index.html frontend/package.json frontend/vite.config.ts -type f 2>/dev/null)

.PHONY: demo test lint install frontend frontend-test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
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
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench
	$(BIN)/mypy services/common

frontend-test:
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run typecheck && npm test && npm run build

test: lint frontend-test
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mdstack .pytest_cache frontend/node_modules frontend/dist
