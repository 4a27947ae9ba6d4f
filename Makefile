# Steppe — every target creates .venv and installs the project on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-ble test test-tools lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,sim]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m mesh.demo

demo-ble: $(STAMP)
	$(BIN)/python -m mesh.demo_ble

# The BlueZ backend's tests run a private dbus-daemon (and bluezoo, from the dev extra);
# the terminal UI's end-to-end test runs tmux. As root on Debian, install what is
# missing; otherwise those tests say why they skip.
TOOLS := dbus-daemon:dbus-daemon tmux:tmux
test-tools:
	@for t in $(TOOLS); do cmd=$${t%%:*}; pkg=$${t##*:}; \
	  command -v $$cmd >/dev/null 2>&1 && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $$pkg for the tests"; \
	    { [ -n "$$updated" ] || apt-get update -qq >/dev/null 2>&1; updated=1; \
	      apt-get install -y -qq --no-install-recommends $$pkg >/dev/null 2>&1; } || \
	    echo "could not install $$pkg: the tests that need it will be skipped"; \
	  else echo "no $$cmd: the tests that need it will be skipped"; fi; done

test: $(STAMP) test-tools
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
	$(BIN)/python -m bench.tui
	$(BIN)/python -m bench.fuzz

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
