# Two entry points on a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Each bootstraps .venv from constraints.txt (torch pinned to the local CPU build).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-env clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hmm_pyro demo

# The suite runs on TEST_WORKERS pytest-xdist workers (2: its time budget is set on 2-core
# machines; each worker runs with one torch/numba/OpenMP thread, see tests/conftest.py).
# --dist loadgroup keeps the tests that share an expensive module fixture (xdist_group marks)
# on one worker. `make test TEST_WORKERS=0` runs everything in one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check hmm_pyro tests examples diagnostics benchmarks
	$(VENV)/bin/ruff format --check hmm_pyro tests examples diagnostics benchmarks
	$(VENV)/bin/lint-imports

# The peers of benchmarks/speed_peers.py (JAX, NumPyro, dynamax, PyStan) in their own
# environment, never in the test environment .venv: `make bench-env`, then
# `.venv-bench/bin/python benchmarks/speed_peers.py`.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml constraints.txt benchmarks/requirements-peers.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -c constraints.txt -e . \
		-r benchmarks/requirements-peers.txt
	touch $(BENCH_STAMP)

bench-env: $(BENCH_STAMP)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache *.egg-info
