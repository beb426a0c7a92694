# Two commands do everything on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: run test test-faults test-compose test-fresh-machine setup unit bench lock clean

run:            ## set up, migrate, seed and start every process; prints the URL
	@scripts/run.sh

test: setup     ## the whole suite: unit tests and end-to-end tests with real Redis and workers
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-faults: setup  ## fault tests: workers killed mid-render, Redis stopped, services down, duplicates
	$(VENV)/bin/pytest tests/test_faults*.py -m faults -q -s $(PYTEST_ARGS)

test-compose: setup  ## the Docker Compose stack built, started, scaled and driven (installs/starts dockerd if needed)
	@scripts/test-compose.sh

test-fresh-machine: setup  ## set-up and a certificate in a fresh Debian container (only Droid Sans Fallback for Chinese)
	@scripts/test-fresh-machine.sh

unit: setup     ## only the fast tests (no processes started)
	$(VENV)/bin/pytest -m "not integration and not faults" $(PYTEST_ARGS)

bench: setup    ## benchmarks with ratios against baselines measured in the same run (BENCH=name for one)
	$(VENV)/bin/python -m bench $(BENCH)

setup:
	@scripts/setup.sh

lock:           ## re-pin requirements.txt and requirements-dev.txt from their .in files
	@scripts/lock.sh

clean:
	rm -rf var .pytest_cache
