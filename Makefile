# The README's two commands: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: help setup demo test test-fast lab bench lint browser-deps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

setup: $(STAMP)  ## create .venv and install the package with its test tools

demo: $(STAMP)  ## run the pipeline on the bundled sample and print the report path
	$(VENV)/bin/personas run

browser-deps:  ## install Debian's chromium for the browser test (needs root; skipped otherwise)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the browser test will be skipped"; \
	  else echo "note: chromium missing (apt-get install chromium); the browser test will be skipped"; fi; }

test: $(STAMP) browser-deps  ## the whole test suite
	$(PY) -m pytest

test-fast: $(STAMP)  ## tests without papermill, UMAP fits or the browser
	$(PY) -m pytest -m "not slow and not browser"

lab: $(STAMP)  ## JupyterLab with the project's kernel registered
	$(PY) -m ipykernel install --user --name personas --display-name "Python (personas)"
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)  ## benchmarks -> docs/benchmarks.md
	$(PY) bench/run.py

clean:  ## remove the virtual environment and generated runs
	rm -rf $(VENV) reports/*/ .pytest_cache
