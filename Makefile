# Set-up and everyday commands. `make demo` and `make test` need only Python 3.11+;
# the venv takes 3.12+ where the host has it, for the Django backend's tests.
PYTHON ?= $(shell sh scripts/pick-python.sh)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench reliability clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash demo/run.sh

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

reliability: $(STAMP)
	rm -f .reliability.jsonl
	DJ_FAULTS_REPORT=$(CURDIR)/.reliability.jsonl DJ_FAULTS_DAEMON_KILLS=20 $(BIN)/python -m pytest -q tests/faults
	$(BIN)/python -m tests.faults.report .reliability.jsonl

clean:
	rm -rf $(VENV) demo/out .pytest_cache
