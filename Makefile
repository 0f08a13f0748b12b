# The commands people type. `make help` lists them.
.PHONY: help run test test-rust test-ui ui lint fmt bench build release fuzz contract

CARGO ?= cargo

help:
	@echo "make run     - run MoneyFlow on 127.0.0.1:8000 (SQLite in ./moneyflow-data)"
	@echo "make test    - every test: Rust (needs PostgreSQL on 127.0.0.1:5432), the canvas (Node 20, Chromium) and the API contract (python3-venv)"
	@echo "make ui      - install and build the canvas into ui/dist (served under /ui/)"
	@echo "make lint    - rustfmt check and clippy with warnings as errors"
	@echo "make bench   - criterion benchmarks"
	@echo "make contract - schemathesis --checks all against a real moneyflow up (CONTRACT_SECONDS)"
	@echo "make fuzz    - each fuzz target for FUZZ_SECONDS (60) seconds (cargo-fuzz, libFuzzer)"
	@echo "make release - optimised binary in target/release/moneyflow"

run: ui/dist/index.html
	$(CARGO) run --release -p moneyflow-server --bin moneyflow -- up

ui/node_modules/.package-lock.json: ui/package-lock.json
	cd ui && npm ci

ui/dist/index.html: ui/node_modules/.package-lock.json $(shell find ui/src ui/index.html ui/vite.config.ts -type f 2>/dev/null)
	cd ui && npm run build

ui: ui/dist/index.html

test: test-rust test-ui contract

test-rust:
	$(CARGO) test --workspace --locked

test-ui: ui/node_modules/.package-lock.json
	cd ui && npm run typecheck && npm run lint && npm test
	scripts/ui-e2e.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) bench --workspace

contract:
	scripts/schemathesis.sh

FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p moneyflow-server --bin moneyflow
