# WorldLand Cloud. `make run` brings up the platform locally; `make test` runs the test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION ?= 3.12
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 3000
PARAMETER_OVERRIDES ?=
PYTEST_ARGS ?=
export SAM_CLI_TELEMETRY := 0
# pyenv keeps python3.12 off PATH unless a version names it.
export PYENV_VERSION ?= $(shell pyenv versions --bare 2>/dev/null | grep -E '^$(PYTHON_VERSION)(\.[0-9]+)?$$' | tail -n1)

REQUIREMENTS := layers/common/requirements.txt $(wildcard functions/*/requirements.txt)

.PHONY: help setup run test lint format validate build deploy clean bench docker-engine lambda-base-image rental-image agent-min-python

help:
	@echo "make run       the whole platform on this machine (API on http://127.0.0.1:$(PORT)), with an agent"
	@echo "               for this host when Docker answers (NO_AGENT=1: without)"
	@echo "make test      the test suite (unit, integration, end-to-end, agent on Docker, sam local)"
	@echo "make lint      ruff check, ruff format --check, mypy (strict) on the layer and the agent"
	@echo "make validate  sam validate and sam validate --lint"
	@echo "make build     sam build"
	@echo "make deploy    sam deploy, guided the first time (needs AWS credentials; GUIDED=1 asks again)"
	@echo "make bench     the benchmarks in bench/ (they start their own local stack)"
	@echo "make docker-engine      a running Docker engine (installs docker.io / debootstrap if missing)"
	@echo "make lambda-base-image  the Lambda python3.12 base image for sam local (built here if it cannot be pulled)"
	@echo "make rental-image       localhost/worldland-base:latest, the image local rentals ask for"
	@echo "make agent-min-python   the agent on Python 3.10 (installs, imports, its platform-free tests)"

$(VENV)/.installed: pyproject.toml node_agent/pyproject.toml $(REQUIREMENTS)
	@command -v python$(PYTHON_VERSION) >/dev/null || { echo "python$(PYTHON_VERSION) not found (pyenv install $(PYTHON_VERSION)?)"; exit 1; }
	test -x $(PY) || python$(PYTHON_VERSION) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet $(addprefix -r ,$(REQUIREMENTS)) --group dev
	$(PY) -m pip install --quiet -e ./node_agent
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) -m tests.local_stack --port $(PORT) --parameter-overrides "$(PARAMETER_OVERRIDES)"

test: setup docker-engine lambda-base-image agent-min-python
	$(PY) -m pytest $(PYTEST_ARGS)

# The agent on the oldest Python it supports (3.10, Ubuntu 22.04's): installs, imports, its own tests.
agent-min-python:
	bash tests/agent/min_python.sh

# `sam local invoke` / `start-api` (and tests/sam_local) need a Docker engine and the Lambda base image.
docker-engine:
	bash .ci/ensure-docker.sh

lambda-base-image: docker-engine
	bash tests/sam_local/lambda_base_image.sh

# localhost/worldland-base:latest, the image local rentals ask for (make run builds it too).
rental-image: docker-engine
	bash node_agent/images/build_base_image.sh base

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd node_agent && ../$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

validate: setup
	$(VENV)/bin/sam validate --region us-east-1
	$(VENV)/bin/sam validate --lint --region us-east-1

build: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/sam build

# Guided the first time: `sam deploy --guided` saves the region (and the answers) to samconfig.toml,
# and later deploys reuse them. GUIDED=1 asks again; GUIDED=0 never asks.
GUIDED ?= $(if $(shell grep -qE '^region *=' samconfig.toml && echo saved),0,1)
deploy: build
	$(VENV)/bin/sam deploy $(if $(filter 1,$(GUIDED)),--guided)

bench: setup
	PYTHONPATH=layers/common $(PY) -m bench.create_job_contention
	PYTHONPATH=layers/common $(PY) -m bench.command_delivery
	PYTHONPATH=layers/common $(PY) -m bench.ssh_ready

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .local
