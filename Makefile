# Remit: `make run` starts the whole offline stack; `make test` checks layering and lint, then runs the tests.
# Both create .venv and install into it first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run reset test lint install check bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m sandbox dev

# Drop the sandbox's database, its Redis keys, the emulator's state, captured mail and .env.sandbox.
reset: $(STAMP)
	$(BIN)/python -m sandbox reset

# The layering contracts (pyproject.toml [tool.importlinter]), lint and format; the first failure stops make.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pytest exits 5 when it collected no test: that is a failure, and make would only say "Error 5".
test: lint
	@$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests: failing" >&2; fi; exit $$status

check: $(STAMP)
	$(BIN)/remit check

# Every bench, one after another; each prints JSON with its targets and a baseline from the same run.
bench: $(STAMP)
	$(BIN)/python -m bench.payments
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.receiver
	$(BIN)/python -m bench.slow_clients
	$(BIN)/python -m bench.pickup
	$(BIN)/python -m bench.scheduled
	$(BIN)/python -m bench.sync
	$(BIN)/python -m bench.history

clean:
	rm -rf $(VENV) .pytest_cache .import_linter_cache
