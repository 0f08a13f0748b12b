# The commands people type. `make help` lists them.
.PHONY: help run test lint fmt bench build release

CARGO ?= cargo

help:
	@echo "make run     - run MoneyFlow on 127.0.0.1:8000 (SQLite in ./moneyflow-data)"
	@echo "make test    - every test (needs PostgreSQL on 127.0.0.1:5432, see README)"
	@echo "make lint    - rustfmt check and clippy with warnings as errors"
	@echo "make bench   - criterion benchmarks"
	@echo "make release - optimised binary in target/release/moneyflow"

run:
	$(CARGO) run --release -p moneyflow-server --bin moneyflow -- up

test:
	$(CARGO) test --workspace --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) bench --workspace

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p moneyflow-server --bin moneyflow
