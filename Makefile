# Two entry points: `make demo` (install, index the bundled sample, serve) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
TEST_STAMP := $(VENV)/.test-installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: install install-test demo test lint

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[cpu,onnx]"
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[cpu,onnx,test]"
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

# Builds the sample catalogue's index on the first start (var/sample-index), then serves.
demo: install
	$(VENV)/bin/fashion-retrieval serve

test: install-test
	$(PY) -m pytest -q

# Lint, format check and types of the packages, and the import layers (.ci/run runs it).
PACKAGES := app indexer models training fashion_retrieval.py
lint: install-test
	$(VENV)/bin/ruff check $(PACKAGES)
	$(VENV)/bin/ruff format --check $(PACKAGES) tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
