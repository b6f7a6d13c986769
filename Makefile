# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check bench fuzz lint clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/oomsim run scenarios/sealed-holes-memcg.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/oomsim check scenarios/

lint: $(STAMP)
	$(BIN)/ruff check simulator analysis tests benchmarks
	$(BIN)/mypy simulator

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

# Benchmarks (never part of `make test`): prints each figure with its target and writes
# BENCHMARKS.md. Fuzzing: the bulk-versus-reference differential tests, many more scenarios.
bench: $(STAMP)
	$(BIN)/python -m benchmarks

fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/test_differential.py
