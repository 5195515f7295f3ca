# One entry point for developers and CI. `make test` is the gate; `make run` is the local demo.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt constraints-dev.txt layers/dependencies/requirements.txt | cksum | cut -d' ' -f1)
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv test lint typecheck pytest run bench clean

help:
	@echo "make run    - run the whole system locally against embedded emulators"
	@echo "make test   - lint, type-check and run every test"
	@echo "make bench  - run the benchmarks and print side-by-side ratios"

venv: $(STAMP)

$(STAMP): requirements-dev.txt constraints-dev.txt layers/dependencies/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@# The function's package (handler/ is the Lambda zip root) on the venv's path, for opscli, devstack and bench.
	@$(BIN)/python -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "parser-run-deleter.pth").write_text(str(pathlib.Path("handler").resolve()) + "\n")'
	@rm -f $(VENV)/.installed-* && touch $@

test: venv lint typecheck security infra pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy handler devstack opscli bench

pytest: venv
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

run: venv
	$(BIN)/python -m devstack.demo $(ARGS)

# Benchmarks, not tests: side-by-side ratios with medians (ARGS="--runs 3 --only B1,B3").
bench: venv
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage

# ---- Infrastructure (template.yaml): offline checks and the build, each tool in its own venv under .tools/.
# `infra` runs before `pytest` in `make test`: tests/infra reads .aws-sam/transformed.json and .aws-sam/build.
SAM_VENV := .tools/sam
CHECKOV_VENV := .tools/checkov
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cksum < tools/sam-requirements.txt | cut -d' ' -f1)
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cksum < tools/checkov-requirements.txt | cut -d' ' -f1)
# sam validate and the translator need a region name to expand ${AWS::Region}; nothing is contacted.
INFRA_ENV := AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} AWS_REGION=$${AWS_REGION:-us-east-1}
CHECKOV := $(CHECKOV_VENV)/bin/checkov --framework cloudformation --skip-download --quiet --compact

.PHONY: tools infra validate checkov build infra-test

tools: $(SAM_STAMP) $(CHECKOV_STAMP)

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

infra: validate checkov build

# sam validate (SAM schema), sam validate --lint and cfn-lint, then the expanded template for tests/infra.
validate: $(SAM_STAMP)
	$(INFRA_ENV) $(SAM_VENV)/bin/sam validate --template-file template.yaml
	$(INFRA_ENV) $(SAM_VENV)/bin/sam validate --lint --template-file template.yaml
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(INFRA_ENV) $(SAM_VENV)/bin/python tools/transform_template.py template.yaml .aws-sam/transformed.json

# Zero failed checks on the template as written (skips carry their reason in resource Metadata), and on the
# expanded template, which also covers the roles SAM generates. SAM does not copy the API's Metadata onto the
# Stage it generates, so the API's two justified skips are repeated here for that Stage.
checkov: $(CHECKOV_STAMP) validate
	$(CHECKOV) --file template.yaml
	$(CHECKOV) --file .aws-sam/transformed.json --skip-check CKV_AWS_73,CKV_AWS_120

# Function code plus the arm64 dependencies layer, no container, no cache: what `sam deploy` would ship.
build: $(SAM_STAMP)
	$(SAM_VENV)/bin/sam build --template-file template.yaml --build-dir .aws-sam/build --no-cached --no-use-container

infra-test: infra venv
	$(BIN)/python -m pytest tests/infra $(PYTEST_ARGS)

# ---- Static security checks: bandit on the function's code, zero findings (a skip needs an inline
# `# nosec <test id>` with its reason), and pip-audit on the pinned runtime requirements. Where PyPI's
# per-release advisory data is unreachable, tests/security/audit_runtime_pins.py checks a pin that is the latest
# release against that release's advisories and names anything else NOT AUDITED: a warning, or a failure with
# SECURITY_AUDIT_STRICT=1. Known vulnerabilities always fail.
.PHONY: security bandit pip-audit

security: bandit pip-audit

bandit: venv
	$(BIN)/bandit --quiet --recursive handler

pip-audit: venv
	$(BIN)/python tests/security/audit_runtime_pins.py layers/dependencies/requirements.txt
