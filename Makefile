# Set-up and everyday commands. `make demo` and `make test` need only Python 3.11+;
# the venv takes 3.12+ where the host has it, for the Django backend's tests.
PYTHON ?= $(shell sh scripts/pick-python.sh)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: install demo test bench reliability galera galera-stop galera-test galera-ci clean

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
	DJ_FAULTS_REPORT=$(CURDIR)/.reliability.jsonl DJ_FAULTS_FULL=1 $(BIN)/python -m pytest -q tests/faults
	$(BIN)/python -m tests.faults.report .reliability.jsonl

# A Galera cluster of GALERA_NODES MariaDB nodes on loopback (scripts/galera.sh; docs/scale-out.md). galera-test
# runs the long runs on it and prints their figures; galera-ci is .ci/run's short step, on 2 nodes of its own
# (own folder and ports, so it leaves a developer's cluster alone), stopped afterwards whatever the outcome.
GALERA_NODES ?= 3
GALERA_TEST_ENV = DJ_TEST_REQUIRE_GALERA=1 DJ_TEST_GALERA_URLS=$$(bash scripts/galera.sh urls $(GALERA_NODES))

galera:
	bash scripts/galera.sh start $(GALERA_NODES)

galera-stop:
	bash scripts/galera.sh stop

galera-test: $(STAMP) galera
	rm -f .galera.jsonl
	$(GALERA_TEST_ENV) DJ_FAULTS_REPORT=$(CURDIR)/.galera.jsonl $(BIN)/python -m pytest -q tests/galera $(PYTEST_ARGS)
	$(BIN)/python -m tests.faults.report .galera.jsonl

galera-ci: export GALERA_DIR = /var/tmp/dj-galera-ci
galera-ci: export GALERA_PORT = 4316
galera-ci: export GALERA_GCOMM = 4667
galera-ci: GALERA_NODES = 2
galera-ci: $(STAMP)
	bash scripts/galera.sh start $(GALERA_NODES) >/dev/null
	$(GALERA_TEST_ENV) $(BIN)/python -m pytest -q tests/galera/test_certification.py tests/galera/test_not_serving.py \
	  $(PYTEST_ARGS); \
	  status=$$?; bash scripts/galera.sh stop >/dev/null; exit $$status

clean:
	rm -rf $(VENV) demo/out .pytest_cache
