# Two commands a new user needs: `make demo` and `make test`.
CARGO ?= cargo

.PHONY: demo test fmt lint unit build-cli clean

## The sync on this machine, against in-process simulators; no AWS account needed.
demo:
	$(CARGO) run --quiet --bin lscw -- demo

## Formatting, lints and every test, as CI runs them.
test: fmt lint unit

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
