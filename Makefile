# Quick start: `make demo` (offline replayed LLM run vs random baseline) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first, pinned to the CPU build that pip finds locally on CPU-only machines;
# the package itself only declares a range, so this pin never reaches users.
TORCH_SPEC ?= torch==2.13.0

# mypy cannot follow setuptools' package-dir mapping, so it checks a tree of links laid out
# as the installed namespace (build/typecheck/nasagent/{agent,evaluator,prompts}).
TYPECHECK = bash tools/typecheck-tree && $(BIN)/mypy

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
	$(BIN)/ruff check nasagent agent evaluator prompts fixtures tests bench tools setup.py
	$(TYPECHECK)

typecheck: install-dev
	$(TYPECHECK)

test: install-dev
	$(BIN)/ruff check nasagent agent evaluator prompts fixtures tests bench tools setup.py
	$(TYPECHECK)
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python bench/gradnorm_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
