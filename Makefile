# Two commands on a fresh clone: `make demo` (set-up + a real local sweep + the ranking) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup integrations demo test test-fast test-no-accounting cluster browser bench docs docs-build clean

setup: $(VENV)/.installed

# torch first, pinned: the CPU wheel 2.13.0 is on this machine; any other spec pulls gigabytes of CUDA.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# Hugging Face and Lightning, for the callbacks' tests only: never needed by the core or the demo.
integrations: $(VENV)/.integrations
$(VENV)/.integrations: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test,integrations]"
	touch $@

demo: setup
	$(BIN)/schedsweep launch +study=demo --name demo
	$(BIN)/schedsweep report results/demo

# The edit-test loop: unit and property tests, no subprocess, no Slurm, no browser (tests/conftest.py refuses a
# process in this tier: a test that needs one is marked slow).
test-fast: setup
	SCHEDSWEEP_TEST_TIER=fast $(BIN)/python -m pytest -q -n 2 -m "not slow and not slurm and not browser"

# Everything (what CI runs). Three pytest-xdist workers on CI's 2 cores, because much of the time is spent
# waiting (process start-up, Slurm's queue): pytest took 647 s, against 788 s with two. The slurm tests run one
# after another on one worker (tests/conftest.py); the rest spread over all three.
test: setup integrations cluster browser docs-build
	$(BIN)/python -m pytest -q -n 3 --dist loadgroup
	$(MAKE) --no-print-directory test-no-accounting

# The slurm tests that read job states (marked `accounting`) again on a cluster without accounting
# (no slurmdbd: sacct fails, as on many clusters), then the cluster back as it was.
test-no-accounting: setup
	@if [ "$$(id -u)" = 0 ]; then \
		bash tests/slurm/cluster.sh start --no-accounting && \
		$(BIN)/python -m pytest -q -m "slurm and accounting"; rc=$$?; bash tests/slurm/cluster.sh start; exit $$rc; \
	else echo "make: not root, so no test cluster: the slurm tests will skip"; fi

# The real two-node Slurm cluster (on this host) that the `slurm` tests use (root: it installs packages and starts daemons).
cluster:
	@if [ "$$(id -u)" = 0 ]; then bash tests/slurm/cluster.sh start; \
	else echo "make: not root, so no test cluster: the slurm tests will skip"; fi

# Debian's headless chromium renders the report's HTML page in a test (the test skips without it).
browser:
	@if command -v chromium >/dev/null; then :; elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "make: not root, so no chromium: the HTML rendering test will skip"; fi

# The docs site: docs/*.md, with the reference pages generated from the code (docs/hooks.py).
docs: setup
	$(BIN)/mkdocs serve

docs-build: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: setup
	$(BIN)/python benchmarks/plan_speed.py
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/report_speed.py
	$(BIN)/python benchmarks/local_speed.py
	$(BIN)/python benchmarks/eta_accuracy.py +study=rex_quick

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build docs/reference
