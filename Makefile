# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Two pytest-xdist workers: the 2-core CI machine runs the suite in ~7 min instead of ~12.
TEST_WORKERS ?= 2
BENCH_ARGS ?=

.PHONY: venv demo test validate bench lint docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@PYBIN=$$(scripts/find-python.sh) && echo "using $$PYBIN" && "$$PYBIN" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m bayesslope.cli demo --out demo-output --overwrite

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

validate: $(STAMP)
	$(PY) -m validation.run

bench: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -c constraints-bench.txt -e ".[bench]"
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# The documentation site, into site/ (open site/index.html). --strict: a broken link or a
# missing docstring target fails the build. The pages' code runs in tests/test_docs_examples.py.
docs: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(PY) -m ruff check bayesslope tests

clean:
	rm -rf $(VENV) demo-output .pytest_cache site
