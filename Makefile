# Remit: `make run` starts the whole offline stack; `make test` checks layering and lint, then runs the tests.
# Both create .venv and install into it first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run reset test lint install check bench clean browser

# WeasyPrint (receipt PDFs) needs Pango and HarfBuzz from the system, and a font. As root on Debian or
# Ubuntu they are installed when missing; otherwise install them yourself (README, "Receipts").
PDF_LIBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core

$(STAMP): pyproject.toml
	@if ! ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0' || ! ldconfig -p 2>/dev/null | grep -q 'libharfbuzz-subset.so.0'; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PDF_LIBS); \
		else echo "make install: receipt PDFs need $(PDF_LIBS) (or your system's Pango and HarfBuzz)" >&2; fi; \
	fi
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

# The dashboard's browser tests drive Debian's Chromium (playwright cannot download its own offline):
# installed with apt-get when missing, which needs root (CI runs as root; elsewhere, sudo make browser).
browser:
	@command -v chromium >/dev/null || { echo "make: installing chromium for the browser tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# pytest exits 5 when it collected no test: that is a failure, and make would only say "Error 5".
test: lint browser
	@$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests: failing" >&2; fi; exit $$status

check: $(STAMP)
	$(BIN)/remit check

# Every bench, one after another; each prints JSON with its targets and a baseline from the same run, and
# bench.all sums them up (a bench that misses its target does not stop the rest). RUNS=3 runs them thrice.
bench: $(STAMP)
	$(BIN)/python -m bench.all --runs $(or $(RUNS),1)

clean:
	rm -rf $(VENV) .pytest_cache .import_linter_cache
