# wecom-authsync developer commands. `make test` is the README's test command (and CI's).
#
# Everything runs on Python 3.12, the Lambda runtime's. PYTHON312 overrides; otherwise pyenv's newest
# 3.12.x when pyenv is installed, else a working python3.12 on PATH. Without one, every target that needs
# it stops with one line saying what to install, before touching anything.
PYTHON312 ?= $(shell \
	if command -v pyenv >/dev/null 2>&1; then \
		v=$$(pyenv versions --bare --skip-aliases 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$$' | sort -t. -k3 -n | tail -1); \
		[ -n "$$v" ] && [ -x "$$(pyenv root)/versions/$$v/bin/python3.12" ] && echo "$$(pyenv root)/versions/$$v/bin/python3.12" && exit 0; \
	fi; \
	p=$$(command -v python3.12 2>/dev/null) && "$$p" -c '' >/dev/null 2>&1 && echo "$$p")
PYTHON312_BIN = $(patsubst %/,%,$(dir $(PYTHON312)))
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
ENV ?= dev
TRANSLATED := .aws-sam/translated.json
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help python312 run venv test lock lock-check lint typecheck pytest validate build deploy bench chaos coldstart events serve clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

python312: ## check that Python 3.12 (the Lambda runtime) is available
	@test -n "$(PYTHON312)" || { echo "error: Python 3.12 (the Lambda runtime's) not found: install it (pyenv install 3.12, or your OS's python3.12 package) or set PYTHON312=/path/to/python3.12" >&2; exit 1; }
	@$(PYTHON312) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' || { echo "error: PYTHON312=$(PYTHON312) is not Python 3.12" >&2; exit 1; }

run: venv ## the main job: the whole pipeline on moto + the WeCom emulator, played through and checked
	$(BIN)/python -m authsync_dev.demo $(ARGS)

venv: $(VENV)/.installed ## create .venv (Python 3.12): the layer's locked dependencies, the project, its dev tools
# The locked runtime dependencies first (hash-checked), so tests run on exactly what the layer ships
# (tests/test_lock.py fails if a dev tool moved one of them).
$(VENV)/.installed: pyproject.toml layers/authsync/requirements.txt | python312
	$(PYTHON312) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes --no-deps -r layers/authsync/requirements.txt
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

test: lock-check lint typecheck build pytest ## everything CI checks: lock, lint, types, both templates, sam build, tests

# The layer's lock: resolved for Lambda's python3.12 on Linux arm64, every file hashed.
LOCK_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.12 --python-platform aarch64-manylinux_2_28 \
	--generate-hashes --no-emit-index-url --custom-compile-command "make lock"

lock: venv ## regenerate layers/authsync/requirements.txt (hashed, python3.12/arm64) from pyproject.toml
	$(LOCK_COMPILE) -o layers/authsync/requirements.txt

# Re-resolving with the committed lock as the preference changes nothing unless pyproject.toml asks for
# something the lock does not satisfy: a diff means the lock is stale.
lock-check: venv ## fail when layers/authsync/requirements.txt is stale against pyproject.toml
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cp layers/authsync/requirements.txt "$$tmp/requirements.txt" && \
	$(LOCK_COMPILE) -o "$$tmp/requirements.txt" && \
	if diff -u layers/authsync/requirements.txt "$$tmp/requirements.txt"; then echo "lock: layers/authsync/requirements.txt is current"; \
	else echo "error: layers/authsync/requirements.txt is stale: run make lock and commit it" >&2; exit 1; fi

# SAM's transform runs under .venv-sam (aws-sam-translator pins pydantic; .venv runs the layer's lock).
lint: venv $(SAM_VENV)/.installed ## ruff (lint + format), cfn-lint on template.yaml and on SAM's translation of it
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(SAM_VENV)/bin/python -m authsync_dev.sam_transform -o $(TRANSLATED)
	$(BIN)/cfn-lint template.yaml $(TRANSLATED)

typecheck: venv ## mypy --strict over the layer, handlers, dev tools, bench and tests
	$(BIN)/mypy

# The translator tests run SAM's transform under .venv-sam; the built-artifact test needs `make build`.
pytest: venv $(SAM_VENV)/.installed ## the test suite (moto as AWS); pytest's "no tests collected" (exit 5) fails
	$(BIN)/pytest

$(SAM_VENV)/.installed: | python312
	$(PYTHON312) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli
	touch $@

validate: $(SAM_VENV)/.installed ## sam validate: SAM's transform, then --lint (aws-sam-cli lives in its own venv)
	$(SAM) validate
	$(SAM) validate --lint

# sam build needs python3.12 first on PATH (the functions' python3.12 build and the layer's Makefile).
build: python312 $(SAM_VENV)/.installed ## sam build for python3.12/arm64 into .aws-sam/build (layer: hashed lock + .pyc)
	PATH="$(PYTHON312_BIN):$$PATH" PYTHON312="$(PYTHON312)" $(SAM) build
	@du -sh .aws-sam/build/AuthsyncLayer | sed 's/\t.*//; s/^/layer size: /'

deploy: build ## sam deploy --config-env $(ENV) (dev|prod; needs AWS credentials, see README "Deploying")
	@case "$(ENV)" in dev|prod) ;; *) echo "error: ENV must be dev or prod (got '$(ENV)')" >&2; exit 1;; esac
	$(SAM) deploy --config-env $(ENV) $(ARGS)

bench: venv ## benchmarks: prints ratios against baselines measured in the same run
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/economy.py
	$(BIN)/python bench/coldstart.py

chaos: venv ## the chaos campaign: 300 corps on WeCom's and AWS's bad day, checked against WeCom's truth (ARGS="--corps 50")
	$(BIN)/python bench/chaos.py $(ARGS)

coldstart: venv ## cold-start benchmark only (builds its own host-CPU copy of the layer in .aws-sam/coldstart)
	$(BIN)/python bench/coldstart.py $(ARGS)

events: venv ## regenerate the sample events in events/
	$(BIN)/python -m authsync_dev.make_events

# stdout carries only serve's first JSON line: make's own output (and the venv set-up) goes to stderr.
serve: ## the local stack in the foreground until Ctrl-C (ARGS="--config local.json --time-scale 60")
	@$(MAKE) --no-print-directory -s venv >&2
	@$(BIN)/python -m authsync_dev.serve $(ARGS)

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
