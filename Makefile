# The README's two commands: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: help setup demo test test-fast lab bench lint browser-deps compiler-deps java-deps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,spark]'
	@touch $@

setup: $(STAMP)  ## create .venv and install the package with its test tools and pyspark

# Two years of the bundled sample's shop: the second run is compared with the first (who moved
# where), then both on one history page.
demo: $(STAMP) compiler-deps  ## run the bundled sample's two years, the second compared with the first; print the pages
	$(VENV)/bin/personas run
	$(VENV)/bin/personas run -p sample_period=2 -p compare_to=reports/sample
	$(VENV)/bin/personas history reports/sample reports/sample-period-2 --out reports/history.html

# The browser tests (the report; the notebooks run in JupyterLab) drive /usr/bin/chromium through
# the playwright package of .venv, which downloads no browser of its own: Debian's is all they need.
browser-deps:  ## install Debian's chromium for the browser tests (needs root; skipped otherwise)
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the browser tests will be skipped"; \
	  else echo "note: /usr/bin/chromium missing (apt-get install chromium); the browser tests will be skipped"; fi; }

# The forecast's models (pymc-marketing on PyTensor) compile C++ on a machine's first run (about
# 30 s, then cached in ~/.pytensor); without g++ PyTensor falls back to Python code, far slower.
compiler-deps:  ## install Debian's g++ for the forecast's models (needs root; warns otherwise)
	@command -v g++ >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null) \
	      || echo "warning: could not install g++; the forecast will run slowly"; \
	  else echo "note: g++ missing (apt-get install g++); the forecast will run slowly"; fi; }

# The Spark engine's tests (tests/test_spark.py) start Spark, which runs on Java: Debian's
# default-jre-headless (Java 17). pyspark itself comes with the spark extra into .venv.
java-deps:  ## install Debian's Java for the Spark engine's tests (needs root; skipped otherwise)
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null) \
	      || echo "warning: could not install Java; the Spark tests will be skipped"; \
	  else echo "note: java missing (apt-get install default-jre-headless); the Spark tests will be skipped"; fi; }

lint: $(STAMP)  ## ruff's checks and its formatter (settings in pyproject.toml); make test runs it first
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) browser-deps compiler-deps java-deps lint  ## lint, then the whole test suite
	$(PY) -m pytest

test-fast: $(STAMP)  ## tests without papermill, UMAP fits or the browser
	$(PY) -m pytest -m "not slow and not browser"

# JupyterLab serves the project folder, so reports/ shows beside notebooks/, and opens the first
# notebook (given a file alone, it would serve the file's folder). Its python3 kernel runs the
# .venv's own Python, so no kernel is registered. Jupyter refuses to run as root unless told,
# so --allow-root is passed then, and only then.
lab: $(STAMP)  ## JupyterLab on the notebooks, serving the project folder
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root) \
	  notebooks/01_features.ipynb

bench: $(STAMP)  ## benchmarks -> docs/benchmarks.md
	$(PY) bench/run.py

clean:  ## remove the virtual environment and generated runs
	rm -rf $(VENV) reports/*/ .pytest_cache
