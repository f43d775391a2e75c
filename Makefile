# mongo-sidecar: build, test tools, tests and demo. GNU make. Run `make help`.
#
# Test tools are installed into the git-ignored .tools/ from pinned sources (tests/tools/go.mod,
# tests/requirements.txt, tests/package-lock.json). Each install is stamp-based: it reruns only
# when the files it is built from change.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

TOOLS    := .tools
VENV     := $(TOOLS)/venv
PYTHON   := $(VENV)/bin/python
NODE_DIR := $(TOOLS)/node
LOGS     := $(TOOLS)/logs
GO_PINS  := tests/tools/go.mod tests/tools/go.sum

# The Debian packages aws-lambda-ric's install script needs (it builds its own curl).
SYSTEM_DEPS := autoconf automake libtool

# Runs a command with a fresh FerretDB; the command sees its URI in MONGO_SIDECAR_TEST_URI.
WITH_FERRETDB := PYTHONPATH=tests $(PYTHON) -m harness.ferretdb run --

# need: fail with a clear message when a command is missing.
need = command -v $(1) >/dev/null || { echo "error: '$(1)' not found. $(2)" >&2; exit 1; }

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: system-deps
system-deps: ## Install the Debian packages the Node.js runtime client needs (root, apt)
	@missing=$$(for p in $(SYSTEM_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "system-deps: already installed ($(SYSTEM_DEPS))"; \
	else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# ---------------------------------------------------------------------------------------------
# Test tools

.PHONY: tools
tools: $(TOOLS)/bin/ferretdb $(TOOLS)/bin/aws-lambda-rie $(VENV)/.stamp $(NODE_DIR)/.stamp ## Install the test tools into .tools/

$(TOOLS)/bin/ferretdb: $(GO_PINS) tests/tools/ferretdb/main.go
	@$(call need,go,Install Go 1.26 or newer.)
	cd tests/tools && CGO_ENABLED=0 go build -o ../../$@ ./ferretdb
	@touch $@

$(TOOLS)/bin/aws-lambda-rie: $(GO_PINS)
	@$(call need,go,Install Go 1.26 or newer.)
	cd tests/tools && CGO_ENABLED=0 go build -o ../../$@ github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie
	@touch $@

$(VENV)/.stamp: tests/requirements.txt
	@$(call need,python3,Install Python 3.11 or newer.)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	@touch $@

$(NODE_DIR)/.stamp: tests/package.json tests/package-lock.json
	@$(call need,npm,Install Node.js 20 or newer with npm.)
	@for p in $(SYSTEM_DEPS); do dpkg -s $$p >/dev/null 2>&1 || \
		{ echo "error: Debian package $$p is missing (aws-lambda-ric builds curl at install): run 'make system-deps'" >&2; exit 1; }; done
	mkdir -p $(NODE_DIR)
	cp tests/package.json tests/package-lock.json $(NODE_DIR)/
	cd $(NODE_DIR) && npm_config_nodedir=/usr npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# ---------------------------------------------------------------------------------------------
# Build

.PHONY: build
build: ## Build the extension binary (target/release/mongo-sidecar)
	@$(call need,cargo,Install Rust with rustup.)
	cargo build --release -p mongo-sidecar

# ---------------------------------------------------------------------------------------------
# Tests. Each suite is a target that runs one test runner, logs its output to .tools/logs/SUITE.log
# and keeps the runner's summary lines in .tools/logs/SUITE.summary. `make test` runs every suite
# in TEST_SUITES (all of them, even after a failure), prints the summaries, and fails if any
# suite failed. To add a runner: write a test-NAME target with $(call run_suite,...) and add it
# to TEST_SUITES.

TEST_SUITES := test-rust test-e2e
# (add more suites here, e.g. test-client-node test-client-python test-deploy)

# Lines that close a runner's output: cargo test, pytest, node --test.
SUMMARY_LINES := ^test result:|^=+ .*(passed|failed|error|no tests ran).* =+$$|^\# (pass|fail) 

# run_suite(command), in a test-NAME recipe: run the command, tee its output to the suite's log,
# keep its summary lines and its status for `make test`.
run_suite = mkdir -p $(LOGS); \
	rc=0; { $(1); } 2>&1 | tee $(LOGS)/$@.log || rc=$$?; \
	{ grep -E '$(SUMMARY_LINES)' $(LOGS)/$@.log || echo "(no summary line)"; } | sed 's/^/  /' > $(LOGS)/$@.summary; \
	if [ $$rc -eq 0 ]; then echo ok; else echo "FAILED (exit $$rc)"; fi > $(LOGS)/$@.status; \
	exit $$rc

.PHONY: test
test: tools build ## Install tools, build, run every test suite, print each summary
	@rm -f $(LOGS)/*.summary $(LOGS)/*.status
	@rc=0; $(MAKE) -k $(TEST_SUITES) || rc=$$?; \
	echo; echo "==================== test summary ===================="; \
	for s in $(TEST_SUITES); do \
		echo "$$s: $$(cat $(LOGS)/$$s.status 2>/dev/null || echo 'FAILED (did not run)')"; \
		cat $(LOGS)/$$s.summary 2>/dev/null || true; \
	done; \
	exit $$rc

.PHONY: test-rust
test-rust: ## Rust unit and integration tests, against a fresh FerretDB
	@$(call run_suite,$(WITH_FERRETDB) cargo test --workspace)

.PHONY: test-e2e
test-e2e: ## End-to-end tests: sample functions under the Lambda emulator with the extension
	@$(call run_suite,$(PYTHON) -m pytest tests/e2e)

# ---------------------------------------------------------------------------------------------

.PHONY: demo
demo: tools build ## Run the Node.js sample function with the extension under the emulator
	PYTHONPATH=tests $(PYTHON) -m harness.demo

.PHONY: clean
clean: ## Remove build output, installed tools and test logs
	rm -rf target $(TOOLS) dist
