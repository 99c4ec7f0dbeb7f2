# wecom-authsync developer commands. `make test` is the README's test command (and CI's).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help run venv test lint typecheck pytest validate build bench events serve clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run: venv ## the main job: the whole pipeline on moto + the WeCom emulator, played through and checked
	$(BIN)/python -m devtools.demo $(ARGS)

venv: $(VENV)/.installed ## create .venv with the project and its dev tools
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

test: lint typecheck pytest ## everything CI checks on the code: lint, types, template lint, tests

lint: venv ## ruff (lint + format) and cfn-lint on template.yaml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

typecheck: venv ## mypy --strict over the layer, handlers, dev tools, bench and tests
	$(BIN)/mypy

pytest: venv ## the test suite (moto as AWS); pytest's "no tests collected" (exit 5) fails
	$(BIN)/pytest

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli
	touch $@

validate: $(SAM_VENV)/.installed ## sam validate --lint (aws-sam-cli lives in its own venv: it pins boto3/pydantic)
	$(SAM_VENV)/bin/sam validate --lint

build: $(SAM_VENV)/.installed ## sam build (needs python3.12 on PATH for the python3.12 runtime)
	$(SAM_VENV)/bin/sam build

bench: venv ## benchmarks: prints ratios against baselines measured in the same run
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/economy.py

events: venv ## regenerate the sample events in events/
	$(BIN)/python -m devtools.make_events

# stdout carries only serve's first JSON line: make's own output (and the venv set-up) goes to stderr.
serve: ## the local stack in the foreground until Ctrl-C (ARGS="--config local.json --time-scale 60")
	@$(MAKE) --no-print-directory -s venv >&2
	@$(BIN)/python -m devtools.serve $(ARGS)

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
