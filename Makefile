# The two commands a newcomer needs: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# -qq: errors only. Warnings here are the machine's pip configuration (index locations that do not exist) and
# setuptools' notes on every editable install; a failed install still prints pip's ERROR lines.
PIP_INSTALL = $(PY) -m pip install -qq
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install test lint unit integration infrastructure e2e demo synth deploy bench chaos clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt requirements-ocr.txt layers/requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -r requirements-dev.txt
	$(PIP_INSTALL) -r requirements-ocr.txt
	$(PIP_INSTALL) --no-deps -e .
	$(PY) -m local.postgres
	$(PY) -m local.browser
	touch $(STAMP)

LINT_PATHS := $(wildcard functions stacks layers local invoices_cli tests bench app.py)
TYPED_PATHS := $(wildcard functions stacks layers local invoices_cli app.py)

lint: install
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy $(TYPED_PATHS)
	$(VENV)/bin/lint-imports --no-logo

test: lint
	$(VENV)/bin/pytest --cov --cov-report=term

unit: install
	$(VENV)/bin/pytest tests/unit

integration: install
	$(VENV)/bin/pytest tests/integration

infrastructure: install
	$(VENV)/bin/pytest tests/infrastructure

e2e: install
	$(VENV)/bin/pytest tests/e2e

demo: install
	$(PY) -m local.demo

# The CDK CLI pinned to major 2 (an unpinned aws-cdk resolves to 3.x, which rejects this library's assembly).
CDK := npx --yes aws-cdk@2

synth: install
	$(CDK) synth --quiet

deploy: install
	$(CDK) deploy --require-approval broadening

bench: install
	for script in bench/*.py; do $(PY) $$script || exit 1; done

# Chaos scenarios at a larger size (CHAOS_ORDERS per scenario); prints the reliability table.
CHAOS_ORDERS ?= 200
chaos: install
	$(PY) bench/chaos.py --orders $(CHAOS_ORDERS)

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
