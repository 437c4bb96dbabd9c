# Two commands on a fresh machine: `make report` and `make test`. Both set up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= standard

.PHONY: setup report test lab bench lint clean

setup: $(VENV)/.installed ## venv, pinned packages, Kafka jars (idempotent)
	@$(PY) -m labkit setup

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -e .
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
		$(VENV)/bin/nbstripout --install --attributes .gitattributes; fi
	@touch $@

report: setup ## run every notebook (PROFILE=smoke|standard|full) into outputs/
	$(PY) -m labkit report --profile $(PROFILE)

TEST_WORKERS ?= 3
test: setup ## the test suite, against real brokers it starts (TEST_WORKERS pytest-xdist workers, each with its own clusters)
	$(PY) -m pytest -n $(TEST_WORKERS)

lab: setup ## JupyterLab on notebooks/ beside a shared 3-broker cluster, URL printed; Ctrl-C stops both (LAB_ARGS="--no-browser --port N")
	@$(PY) -m labkit lab $(LAB_ARGS)

bench: setup ## issue 12's targets: labkit vs bare clients and Kafka's tools (not part of the tests)
	$(PY) bench/run_all.py $(BENCH_ARGS)

lint:
	$(VENV)/bin/ruff check labkit tests bench

clean:
	rm -rf outputs/*.ipynb outputs/*.html outputs/*.jsonl
