# Set-up and everyday commands. `make demo` and `make test` need only Python 3.11+;
# the venv takes 3.12+ where the host has it, for the Django backend's tests.
PYTHON ?= $(shell sh scripts/pick-python.sh)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: install demo test bench reliability clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# the bench draws its figures with matplotlib: the `bench` extra, on top of the test set-up
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash demo/run.sh

# Four test processes: most tests wait on daemons, sleeps and servers, not on the 2 cores; each
# module stays in one process (--dist loadfile), as its fixtures (a Django project, a daemon) expect.
TEST_PROCESSES ?= 4

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

reliability: $(STAMP)
	rm -f .reliability.jsonl
	DJ_FAULTS_REPORT=$(CURDIR)/.reliability.jsonl DJ_FAULTS_DAEMON_KILLS=20 $(BIN)/python -m pytest -q tests/faults
	$(BIN)/python -m tests.faults.report .reliability.jsonl

clean:
	rm -rf $(VENV) demo/out .pytest_cache
