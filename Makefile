# Two commands a new user needs: `make demo` and `make test`.
CARGO ?= cargo
VENV ?= .venv
TOOLING := infra/tooling
FUNCTIONS := fetch-assets ensure-references match bulk-create bulk-modify ticket-agreement-enrich run-report

.PHONY: demo test setup browser validate structure fmt lint unit contract-model build build-cli invoke bench soak clean

## The whole sync on this machine, against in-process simulators; no AWS account needed.
demo:
	$(CARGO) run --quiet --bin lscw -- demo

## Formatting, lints, the infrastructure checks and every test, as CI runs them.
test: setup fmt lint validate unit

## What the tests need beyond the toolchain, from the package registries: moto's server,
## cargo-lambda and the SAM CLI (PyPI), asl-validator (npm), chromium (Debian).
setup: $(VENV)/.installed $(TOOLING)/node_modules/.installed browser

## Debian's chromium, which the report page's test renders in; installed when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

$(VENV)/.installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet 'moto[server]==5.2.6' cargo-lambda aws-sam-cli
	touch $@

$(TOOLING)/node_modules/.installed: $(TOOLING)/package.json
	cd $(TOOLING) && npm install --no-audit --no-fund --silent
	touch $@

## The state machine definition and the SAM template, checked offline; no import circle
## among the domain crate's modules; no page or table of docs/ behind the code.
validate: setup contract-model
	python3 infra/local/structure.py check shared/src
	python3 infra/local/structure.py mermaid shared/src | python3 infra/local/structure_page.py --check docs/structure.md
	$(TOOLING)/node_modules/.bin/asl-validator --json-path infra/statemachine/sync.asl.json
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint -t template.yaml
	$(VENV)/bin/python -m unittest discover -s infra/tests -p 'test_*.py' 
	$(VENV)/bin/python infra/local/manual_tables.py --check
	$(CARGO) test --quiet -p lscw-shared --lib manual::
	$(CARGO) test --quiet -p lscw-tests --test e2e vendor_contract::the_endpoint_table

## The pages and tables of docs/ that mirror the code, drawn anew from it: the domain
## crate's modules and imports (docs/structure.md, a Mermaid picture), the store's keys
## and lifetimes, the run's contract, each function's sizing, the endpoints the product
## sends.
structure: setup
	python3 infra/local/structure.py mermaid shared/src | python3 infra/local/structure_page.py docs/structure.md
	$(VENV)/bin/python infra/local/manual_tables.py
	UPDATE_DOCS=1 $(CARGO) test --quiet -p lscw-shared --lib manual::
	UPDATE_DOCS=1 $(CARGO) test --quiet -p lscw-tests --test e2e vendor_contract::the_endpoint_table

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: contract-model
	$(CARGO) test --workspace

## ConnectWise's published model, generated from its OpenAPI document (the pyconnectwise
## package, from PyPI): what tests/e2e/vendor_contract.rs holds every request the product sends against.
CONTRACT_VENV := .venv-contract
CONTRACT_MODEL := target/contract/connectwise-model.json
contract-model: $(CONTRACT_MODEL)

$(CONTRACT_MODEL): infra/contract/connectwise_model.py
	python3 -m venv $(CONTRACT_VENV)
	$(CONTRACT_VENV)/bin/pip install --quiet pyconnectwise==0.6.1.2 pydantic==2.14.4
	mkdir -p $(dir $@)
	$(CONTRACT_VENV)/bin/python infra/contract/connectwise_model.py --compact > $@.tmp
	mv $@.tmp $@

## The functions for Lambda (arm64, provided.al2023), built exactly as the README's
## deployment steps build them: `sam build --beta-features` (SAM runs cargo lambda for each
## function in the workspace, so the dependencies compile once).
build: setup
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build --beta-features

## One function under cargo lambda watch, with moto and the simulators: make invoke FN=match
invoke: setup
	infra/local/invoke.sh $(FN)

## API calls per asset, wall time and peak memory of the sync, at several sizes.
bench:
	python3 infra/local/bench.py

## The deployed form over weeks, compressed (tests/soak.rs, release build): the template's
## state machine fired every hour through the local engine over the real functions, 50
## clients, SIZE assets, HOURS hours, faults throughout. CLOCK compresses the hours, the
## Wait states and the functions' timeouts together (an hour lasts 3600/CLOCK seconds).
## LS_MUTATIONS: the aliased edits the Lansweeper simulator takes in one request.
SIZE ?= 20000
HOURS ?= 720
CLOCK ?= 20
LS_MUTATIONS ?= 10
soak: $(VENV)/.installed
	LSCW_SOAK_ASSETS=$(SIZE) LSCW_SOAK_HOURS=$(HOURS) LSCW_SOAK_CLOCK=$(CLOCK) \
		LSCW_SOAK_LS_MUTATIONS=$(LS_MUTATIONS) \
		$(CARGO) test --release -p lscw-tests --test soak -- --nocapture

build-cli:
	$(CARGO) build --bin lscw

clean:
	$(CARGO) clean
