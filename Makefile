# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv from
# pyproject.toml when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench bench-quick lint docs clean testbed

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/jobmedic demo

# The slurm-marked tests start scripts/slurm-testbed when they can (root, Debian packages);
# otherwise they are skipped and -rs prints why.
test: $(STAMP)
	$(VENV)/bin/ruff check jobmedic tests bench
	$(PY) -m pytest -n 2 --dist loadfile -rs

testbed:
	scripts/slurm-testbed start

# Also the slow real-data evaluations.
test-all: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m ''

bench: $(STAMP)
	$(PY) -m bench all

bench-quick: $(STAMP)
	$(PY) -m bench all --quick

lint: $(STAMP)
	$(VENV)/bin/ruff check jobmedic tests bench

docs: $(STAMP)
	$(PY) -m jobmedic.docgen docs/cli.md

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
