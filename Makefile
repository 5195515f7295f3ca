# One entry point for developers and CI. `make test` is the gate; `make run` is the local demo.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt constraints-dev.txt layers/dependencies/requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv test lint typecheck pytest unit integration system security-tests run bench clean

# `make help` lists every target that carries a "## " description, in file order.
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 24

venv: $(STAMP) ## create .venv from the pinned requirements (every target does this first)

$(STAMP): requirements-dev.txt constraints-dev.txt layers/dependencies/requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@# The CLI (.venv/bin/extend-deleter) and the function's package, editable: devstack and bench import it too.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --editable .
	@rm -f $(VENV)/.installed-* && touch $@

test: venv lint typecheck security infra pytest ## the gate CI runs: every check and every test, with coverage

lint: venv ## ruff check and ruff format --check on every Python file
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv ## mypy --strict on handler/, devstack/, opscli/, bench/ and tools/; on tests/ a little relaxed (pyproject)
	$(BIN)/mypy handler devstack opscli bench tests tools

pytest: venv node ## every test tier, with coverage of handler/ (needs `make infra` first for tests/infra)
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

unit: venv ## the unit tier: no servers, seconds in all (the edit-test loop)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: venv ## the integration tier: the handler against moto's server and the Extend emulator
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

security-tests: venv ## the security tier: secret hygiene and hardening, end to end
	$(BIN)/python -m pytest tests/security $(PYTEST_ARGS)

system: venv node build ## the system tier: the local stack, chaos, deadlines, the built artifact
	$(BIN)/python -m pytest tests/system $(PYTEST_ARGS)

run: venv ## run the whole system locally against embedded servers, with a scripted demo (ARGS=--serve to stay up)
	$(BIN)/python -m devstack.demo $(ARGS)

# Benchmarks, not tests: side-by-side ratios with medians (ARGS="--runs 3 --only B1,B3").
bench: venv ## the benchmarks, as ratios measured side by side (ARGS="--runs 3 --only B1,B3")
	$(BIN)/python -m bench $(ARGS)

clean: ## remove every venv, build and cache
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage

# ---- Infrastructure (template.yaml): offline checks and the build, each tool in its own venv under .tools/.
# `infra` runs before `pytest` in `make test`: tests/infra reads .aws-sam/transformed.json and .aws-sam/build.
SAM_VENV := .tools/sam
CHECKOV_VENV := .tools/checkov
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cksum < tools/sam-requirements.txt | cut -d' ' -f1)
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cksum < tools/checkov-requirements.txt | cut -d' ' -f1)
NODE_VENV := .tools/node
NODE_STAMP := $(NODE_VENV)/.installed-$(shell cksum < tools/node-requirements.txt | cut -d' ' -f1)
# sam validate and the translator need a region name to expand ${AWS::Region}; nothing is contacted.
INFRA_ENV := AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} AWS_REGION=$${AWS_REGION:-us-east-1}
CHECKOV := $(CHECKOV_VENV)/bin/checkov --framework cloudformation --skip-download --quiet --compact

.PHONY: tools node infra validate checkov build infra-test

tools: $(SAM_STAMP) $(CHECKOV_STAMP) $(NODE_STAMP) ## the SAM CLI, cfn-lint, checkov and Node, each in its own venv under .tools/

node: $(NODE_STAMP) ## Node (from PyPI) in .tools/node, for the tests that run JavaScript

$(NODE_STAMP): tools/node-requirements.txt
	@test -x $(NODE_VENV)/bin/python || $(PYTHON) -m venv $(NODE_VENV)
	$(NODE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/node-requirements.txt
	@rm -f $(NODE_VENV)/.installed-* && touch $@

$(SAM_STAMP): tools/sam-requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/sam-requirements.txt
	@rm -f $(SAM_VENV)/.installed-* && touch $@

$(CHECKOV_STAMP): tools/checkov-requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/checkov-requirements.txt
	@rm -f $(CHECKOV_VENV)/.installed-* && touch $@

infra: validate checkov build ## template checks (sam validate, cfn-lint, checkov) and sam build

# sam validate (SAM schema), sam validate --lint and cfn-lint, then the expanded template for tests/infra.
validate: $(SAM_STAMP) ## sam validate --lint, cfn-lint, and the expanded template for tests/infra
	$(INFRA_ENV) $(SAM_VENV)/bin/sam validate --template-file template.yaml
	$(INFRA_ENV) $(SAM_VENV)/bin/sam validate --lint --template-file template.yaml
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(INFRA_ENV) $(SAM_VENV)/bin/python tools/transform_template.py template.yaml .aws-sam/transformed.json

# Zero failed checks on the template as written (skips carry their reason in resource Metadata), and on the
# expanded template, which also covers the roles SAM generates. SAM does not copy the API's Metadata onto the
# Stage it generates, so the API's two justified skips are repeated here for that Stage.
checkov: $(CHECKOV_STAMP) validate ## checkov on the template as written and as SAM expands it
	$(CHECKOV) --file template.yaml
	$(CHECKOV) --file .aws-sam/transformed.json --skip-check CKV_AWS_73,CKV_AWS_120

# Function code plus the arm64 dependencies layer, no container, no cache: what `sam deploy` would ship.
build: $(SAM_STAMP) ## sam build: the function code and the arm64 dependencies layer
	$(SAM_VENV)/bin/sam build --template-file template.yaml --build-dir .aws-sam/build --no-cached --no-use-container

infra-test: infra venv ## the infra tier: template checks, then tests/infra
	$(BIN)/python -m pytest tests/infra $(PYTEST_ARGS)

# ---- Static security checks: bandit on the function's code, zero findings (a skip needs an inline
# `# nosec <test id>` with its reason), and pip-audit on the pinned runtime requirements. Where PyPI's
# per-release advisory data is unreachable, tools/audit_runtime_pins.py checks a pin that is the latest
# release against that release's advisories and names anything else NOT AUDITED: a warning, or a failure with
# SECURITY_AUDIT_STRICT=1. Known vulnerabilities always fail.
.PHONY: security bandit pip-audit

security: bandit pip-audit ## static security checks: bandit and pip-audit

bandit: venv ## bandit on handler/, zero findings
	$(BIN)/bandit --quiet --recursive handler

pip-audit: venv ## known vulnerabilities in the pinned runtime dependencies
	$(BIN)/python tools/audit_runtime_pins.py layers/dependencies/requirements.txt
