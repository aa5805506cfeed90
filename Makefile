# Two commands a new user needs: `make demo` and `make test`.
CARGO ?= cargo

VENV ?= .venv

.PHONY: demo test setup fmt lint unit build-cli clean

## The sync on this machine, against in-process simulators; no AWS account needed.
demo:
	$(CARGO) run --quiet --bin lscw -- demo

## Formatting, lints and every test, as CI runs them.
test: setup fmt lint unit

## What the tests need beyond the toolchain: moto's server and cargo-lambda, from PyPI.
setup: $(VENV)/.installed

$(VENV)/.installed:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet 'moto[server]' cargo-lambda
	touch $@

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

build-cli:
	$(CARGO) build --bin lscw

clean:
	$(CARGO) clean
