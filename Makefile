# Every target that runs project code first makes sure .venv exists and holds
# the project with its test extra; a fresh clone needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The bench extra (aetcd, to drive etcd beside ours) has its own stamp, so that
# `make test` neither needs nor installs it.
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: test unit lint format demo bench soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "raftcluster needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --editable '.[test]'
	@touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --editable '.[test,bench]'
	@touch $(BENCH_STAMP)

test: lint unit

unit: $(STAMP)
	$(PY) -m pytest -q -rs -m 'not soak' -n 2

lint: $(STAMP)
	$(PY) -m ruff check statemachine raftcluster chaos tests bench examples
	$(PY) -m ruff format --check --quiet statemachine raftcluster chaos tests bench examples
	$(PY) -m mypy statemachine raftcluster chaos examples

format: $(STAMP)
	$(PY) -m ruff format statemachine raftcluster chaos tests bench examples
	$(PY) -m ruff check --fix statemachine raftcluster chaos tests bench examples

demo: $(STAMP)
	$(PY) -m raftcluster demo

# etcd is measured beside ours when Debian's etcd-server is installed (apt-get install
# etcd-server); without it the etcd rows are left out, with a line saying so.
bench: $(BENCH_STAMP)
	$(PY) -m bench

soak: $(STAMP)
	$(PY) -m pytest -q -m soak -n 2

clean:
	rm -rf $(VENV) build *.egg-info bench/results
