# Quick start: `make demo` (offline replayed LLM run vs random baseline) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first, pinned to the CPU build that pip finds locally on CPU-only machines;
# the package itself only declares a range, so this pin never reaches users.
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv install install-dev demo test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

venv: $(BIN)/python

install: venv
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e .

install-dev: venv
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"

demo: install
	$(BIN)/nasagent demo --out runs/demo

lint: install-dev
	$(BIN)/ruff check agent evaluator prompts tests bench
	$(BIN)/mypy

typecheck: install-dev
	$(BIN)/mypy

test: install-dev
	$(BIN)/ruff check agent evaluator prompts tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python bench/gradnorm_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
