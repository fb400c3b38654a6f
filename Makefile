# `make demo`: set up a local virtualenv (once) and run the whole pipeline on the bundled data.
# `make test`: set up the same virtualenv and run lint, type checks and the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pyspark (the Spark engine's extra) for the tests only: `make demo` needs neither it nor Java.
SPARK_STAMP := $(VENV)/.spark-installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml benchmarks/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: a CPU build of this version is available locally; an unpinned
	# torch pulled in by a later extra would download a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,mf,seq,text,serve,xlsx]"
	# the benchmark harness (bundlewise_bench), after the product it depends on
	$(BIN)/python -m pip install --quiet --no-deps -e ./benchmarks
	touch $(STAMP)

$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[spark]"
	touch $(SPARK_STAMP)

demo: $(STAMP)
	$(BIN)/bundlewise demo --out out

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(SPARK_STAMP)
	$(BIN)/mypy

pytest: $(SPARK_STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py

clean:
	rm -rf out .bundlewise .pytest_cache .mypy_cache .ruff_cache
