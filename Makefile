# Revloop: two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup demo test lint bench bench-peers clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(BIN)/revloop: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

MANIFEST := dbt_project/target/manifest.json
$(MANIFEST): $(BIN)/revloop $(shell find dbt_project/models dbt_project/macros dbt_project/seeds dbt_project/tests -type f 2>/dev/null) dbt_project/dbt_project.yml
	rm -f $@ && $(BIN)/python -c "from assets.transformation import ensure_manifest; ensure_manifest()"
	@touch $@

## setup: create .venv with the locked dependency set, parse the dbt project
setup: $(BIN)/revloop $(MANIFEST)

## demo: start the embedded warehouse and the seeded sandboxes, and show where each is
demo: setup
	$(BIN)/revloop demo

## test: the whole suite (REVLOOP_TEST_DATABASE_URL picks a server, else the embedded one)
test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

## lint: ruff and mypy
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy revloop sandboxes

## bench: the benchmarks of bench/ (results go to bench/results/; see docs/benchmarks.md)
bench: setup
	$(BIN)/python -m bench.sandbox_throughput

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache
