# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-kernel check bench fuzz lint clean install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,notebook]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/oomsim run scenarios/sealed-holes-memcg.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

# Only the real-kernel experiments (root, a writable memory cgroup, a C compiler; they create
# memory cgroups and tmpfs mounts of their own and remove them). Never part of `make test`.
test-kernel: $(STAMP)
	$(BIN)/python -m pytest -m kernel tests/test_validate.py

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
