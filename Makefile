# Steppe — every target creates .venv and installs the project on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,sim]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m mesh.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -p no:cacheprovider
	$(MAKE) lint

lint: $(STAMP)
	$(BIN)/ruff check mesh crypto tui simulations tests bench
	$(BIN)/ruff format --check mesh crypto tui simulations tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.daemon
	$(BIN)/python -m bench.transfer
	$(BIN)/python -m bench.fuzz

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
