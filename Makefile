# mongo-sidecar: build, layer, publish, tests and demo. GNU make. Run `make help`.
#
# Tools are installed into the git-ignored .tools/ from pinned sources (tests/tools/go.mod,
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
JAVA_RUNTIME := $(TOOLS)/java-runtime
PYTHON_RUNTIMES := $(TOOLS)/python-runtimes
LOGS     := $(TOOLS)/logs
GO_PINS  := tests/tools/go.mod tests/tools/go.sum

# Debian packages. aws-lambda-ric's install script builds its own curl with the first three;
# qemu-user-static and the aarch64 glibc run the arm64 extension on an x86_64 machine.
TOOLS_DEBIAN_PACKAGES := autoconf automake libtool
ARM64_DEBIAN_PACKAGES := qemu-user-static libc6-arm64-cross

# The layer. Lambda's x86_64 runtimes run Amazon Linux 2 (glibc 2.26) or 2023 (glibc 2.34):
# linking against glibc 2.17 with zig (cargo-lambda) runs on both.
ARCH        ?= x86_64
LAYER_NAME  ?= mongo-sidecar
LAYER_ZIP    = dist/mongo-sidecar-layer-$(ARCH).zip
GLIBC       := 2.17
RUST_TARGET_x86_64 := x86_64-unknown-linux-gnu
RUST_TARGET_arm64  := aarch64-unknown-linux-gnu
LAMBDA_BIN   = target/lambda/$(ARCH)/extensions/mongo-sidecar
# A non-PIE binary needs no relocation table: about 0.5 MB off the binary, and less work for the
# dynamic loader at each cold start.
LAYER_RUSTFLAGS := -C relocation-model=static
CARGO_LAMBDA := $(VENV)/bin/cargo-lambda
AWS_CLI     ?= aws

# Runs a command with a fresh FerretDB; the command sees its URI in MONGO_SIDECAR_TEST_URI.
WITH_FERRETDB := PYTHONPATH=tests $(PYTHON) -m harness.ferretdb run --
# The Python suites run against the binary the layer zip ships.
TEST_ENV := MONGO_SIDECAR_LAYER_ZIP=$(CURDIR)/dist/mongo-sidecar-layer-x86_64.zip \
	MONGO_SIDECAR_BIN=$(CURDIR)/target/lambda/x86_64/extensions/mongo-sidecar

# need: fail with a clear message when a command is missing.
need = command -v $(1) >/dev/null || { echo "error: '$(1)' not found. $(2)" >&2; exit 1; }

# debian_packages(packages, what for): install the missing ones with apt-get when root, saying
# which; otherwise stop with the command to run.
debian_packages = missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done | xargs); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing the Debian packages $$missing ($(2)): apt-get install $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else echo "error: $(2) needs the Debian packages $$missing: run 'sudo apt-get install -y $$missing'" >&2; exit 1; fi; \
	fi

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: system-deps
system-deps: ## Install every Debian package the tools and tests need (root, apt); make tools and make test do it too
	@$(call debian_packages,$(TOOLS_DEBIAN_PACKAGES),the Node.js runtime client)
	@$(call debian_packages,$(ARM64_DEBIAN_PACKAGES),running the arm64 extension under qemu)
	@echo "system-deps: installed ($(TOOLS_DEBIAN_PACKAGES) $(ARM64_DEBIAN_PACKAGES))"

# ---------------------------------------------------------------------------------------------
# Tools

.PHONY: tools
TOOL_STAMPS := $(TOOLS)/bin/ferretdb $(TOOLS)/bin/aws-lambda-rie $(VENV)/.stamp $(NODE_DIR)/.stamp \
	$(JAVA_RUNTIME)/.stamp $(PYTHON_RUNTIMES)/.stamp
tools: $(TOOL_STAMPS) ## Install the build and test tools into .tools/

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
	@$(call debian_packages,$(TOOLS_DEBIAN_PACKAGES),the Node.js runtime client)
	mkdir -p $(NODE_DIR)
	cp tests/package.json tests/package-lock.json $(NODE_DIR)/
	cd $(NODE_DIR) && npm_config_nodedir=/usr npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Lambda's Java runtime interface client, to run the Java sample under the emulator.
$(JAVA_RUNTIME)/.stamp: tests/tools/java-runtime/pom.xml
	@$(call need,mvn,Install Maven and Java 17 or newer.)
	rm -rf $(JAVA_RUNTIME)
	mvn -q -B -f tests/tools/java-runtime/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(JAVA_RUNTIME)
	@touch $@

# A venv with pytest for each Python runtime the layer serves, from the interpreters its bytecode
# is compiled with.
$(PYTHON_RUNTIMES)/.stamp: tests/python-runtimes.txt layer/package.py
	rm -rf $(PYTHON_RUNTIMES)
	python3 layer/package.py --list-pythons | while read -r version python; do \
		$$python -m venv $(PYTHON_RUNTIMES)/$$version && \
		$(PYTHON_RUNTIMES)/$$version/bin/pip install --quiet --disable-pip-version-check -r tests/python-runtimes.txt \
		|| exit 1; done
	@touch $@

# ---------------------------------------------------------------------------------------------
# Build and ship

.PHONY: build
build: $(VENV)/.stamp ## Build the extension for Lambda (ARCH=x86_64|arm64) into target/lambda/ARCH/
	@$(call need,cargo,Install Rust with rustup.)
	@[ -n "$(RUST_TARGET_$(ARCH))" ] || { echo "error: ARCH must be x86_64 or arm64, not '$(ARCH)'" >&2; exit 1; }
	@rustup target list --installed 2>/dev/null | grep -qx $(RUST_TARGET_$(ARCH)) || { \
		echo "build: adding the Rust target $(RUST_TARGET_$(ARCH)) (rustup target add)"; rustup target add $(RUST_TARGET_$(ARCH)); }
	RUSTFLAGS="$(LAYER_RUSTFLAGS)" PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO_LAMBDA) lambda build --release --extension \
		--target $(RUST_TARGET_$(ARCH)).$(GLIBC) --lambda-dir target/lambda/$(ARCH)

.PHONY: layer
layer: build ## Build the layer zip, dist/mongo-sidecar-layer-ARCH.zip (ARCH=x86_64|arm64)
	python3 layer/package.py --binary $(LAMBDA_BIN) --out $(LAYER_ZIP)

.PHONY: layer-arm64
layer-arm64: ## Build the arm64 layer zip, dist/mongo-sidecar-layer-arm64.zip (adds the Rust target if missing)
	@$(MAKE) layer ARCH=arm64

# The Go and Java sample functions as Lambda takes them: dist/sample-function/go/bootstrap for
# provided.al2023, dist/sample-function/java/items-function.jar for java21.
SAMPLE_GO   := dist/sample-function/go/bootstrap
SAMPLE_JAVA := dist/sample-function/java/items-function.jar

.PHONY: sample-functions
sample-functions: $(SAMPLE_GO) $(SAMPLE_JAVA) ## Build the Go and Java sample functions into dist/sample-function/

$(SAMPLE_GO): sample-function/go/main.go sample-function/go/go.mod sample-function/go/go.sum
	@$(call need,go,Install Go 1.26 or newer.)
	cd sample-function/go && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -tags lambda.norpc -trimpath \
		-ldflags=-s -o $(CURDIR)/$@ .

$(SAMPLE_JAVA): sample-function/java/pom.xml $(shell find sample-function/java/src -name '*.java')
	@$(call need,mvn,Install Maven and Java 17 or newer.)
	mvn -q -B -f sample-function/java/pom.xml package
	mkdir -p $(@D) && cp sample-function/java/target/items-function.jar $@

STACK_NAME      ?= mongo-sidecar-sample
SAMPLE_PACKAGED := dist/sample-function.packaged.yaml

.PHONY: deploy-sample
deploy-sample: sample-functions ## Deploy the sample functions: LAYER_ARN MONGODB_URI_SECRET_ARN SUBNET_IDS SECURITY_GROUP_IDS S3_BUCKET AWS_REGION [STACK_NAME]
	@for v in LAYER_ARN MONGODB_URI_SECRET_ARN SUBNET_IDS SECURITY_GROUP_IDS S3_BUCKET AWS_REGION; do \
		[ -n "$${!v:-}" ] || { echo "error: set $$v, e.g. make deploy-sample $$v=... (see sample-function/README.md)" >&2; exit 1; }; done
	@$(call need,$(AWS_CLI),Install the AWS CLI or set AWS_CLI.)
	rm -rf sample-function/python/__pycache__
	mkdir -p dist
	$(AWS_CLI) cloudformation package --region "$(AWS_REGION)" --template-file sample-function/template.yaml \
		--s3-bucket "$(S3_BUCKET)" --s3-prefix mongo-sidecar-sample --output-template-file $(SAMPLE_PACKAGED)
	$(AWS_CLI) cloudformation deploy --region "$(AWS_REGION)" --template-file $(SAMPLE_PACKAGED) \
		--stack-name "$(STACK_NAME)" --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
		--parameter-overrides LayerArn="$(LAYER_ARN)" MongoDbUriSecretArn="$(MONGODB_URI_SECRET_ARN)" \
		SubnetIds="$(SUBNET_IDS)" SecurityGroupIds="$(SECURITY_GROUP_IDS)"
	$(AWS_CLI) cloudformation describe-stacks --region "$(AWS_REGION)" --stack-name "$(STACK_NAME)" \
		--query 'Stacks[0].Outputs' --output table

.PHONY: publish
publish: ## Publish the layer zip: LAYER_NAME, AWS_REGION, ARCH; prints the layer version ARN
	@[ -f "$(LAYER_ZIP)" ] || { echo "error: $(LAYER_ZIP) not found: run 'make layer ARCH=$(ARCH)' first" >&2; exit 1; }
	@[ -n "$${AWS_REGION:-}" ] || { echo "error: set AWS_REGION, e.g. make publish AWS_REGION=eu-west-1" >&2; exit 1; }
	@$(call need,$(AWS_CLI),Install the AWS CLI or set AWS_CLI.)
	@$(AWS_CLI) lambda publish-layer-version --region "$$AWS_REGION" --layer-name "$(LAYER_NAME)" \
		--description "mongo-sidecar: pooled MongoDB connections and the Data API on localhost" \
		--license-info Apache-2.0 --compatible-architectures $(ARCH) \
		--zip-file fileb://$(LAYER_ZIP) --query LayerVersionArn --output text

# ---------------------------------------------------------------------------------------------
# Tests. Each suite is a target that runs one test runner, logs its output to .tools/logs/SUITE.log
# and keeps the runner's summary lines in .tools/logs/SUITE.summary. `make test` runs every suite
# in TEST_SUITES (all of them, even after a failure), prints the summaries, and fails if any
# suite failed.

TEST_SUITES := test-lint test-rust test-e2e test-client-node test-client-python test-python-runtimes test-api \
	test-api-arm64 test-security test-faults test-observability test-deploy test-reliability bench-smoke

# Lines that close a runner's output: cargo test, pytest, node --test, the lint step, the benchmark.
SUMMARY_LINES := ^test result:|^=+ .*(passed|failed|error|no tests ran).* =+$$|^\# (pass|fail) |^lint: |^bench: 

# run_suite(command), in a test-NAME recipe: run the command, tee its output to the suite's log,
# keep its summary lines and its status for `make test`.
run_suite = mkdir -p $(LOGS); \
	rc=0; { $(1); } 2>&1 | tee $(LOGS)/$@.log || rc=$$?; \
	{ grep -E '$(SUMMARY_LINES)' $(LOGS)/$@.log || echo "(no summary line)"; } | sed 's/^/  /' > $(LOGS)/$@.summary; \
	if [ $$rc -eq 0 ]; then echo ok; else echo "FAILED (exit $$rc)"; fi > $(LOGS)/$@.status; \
	exit $$rc

.PHONY: test
test: tools layer ## Install tools, build both layers and the samples, run every suite, print each summary
	@rm -f $(LOGS)/*.summary $(LOGS)/*.status
	@rc=0; $(MAKE) -k $(TEST_SUITES) || rc=$$?; \
	echo; echo "==================== test summary ===================="; \
	for s in $(TEST_SUITES); do \
		echo "$$s: $$(cat $(LOGS)/$$s.status 2>/dev/null || echo 'FAILED (did not run)')"; \
		cat $(LOGS)/$$s.summary 2>/dev/null || true; \
	done; \
	exit $$rc

# Each suite also runs on its own from a fresh clone (`make test-security`): every suite but lint
# needs the tools and the layer. Within one make run each is built once.
$(filter-out test-lint,$(TEST_SUITES)): tools layer
# The arm64 layer, run here under qemu; the Go and Java samples.
test-e2e test-api-arm64: layer-arm64 arm64-runner
test-e2e test-deploy: sample-functions

.PHONY: test-lint
test-lint: ## cargo fmt --check and cargo clippy -D warnings (and fmt of the benchmark's two small Rust programs)
	@$(call run_suite,cargo fmt --all -- --check && cargo fmt --manifest-path tests/bench/echo/Cargo.toml -- --check \
		&& cargo fmt --manifest-path tests/bench/driver-floor/Cargo.toml -- --check && cargo clippy --all-targets -- -D warnings && echo "lint: fmt and clippy clean")

.PHONY: test-rust
test-rust: ## Rust unit and property tests, and the API against FerretDB over plain TCP, then over TLS
	@$(call run_suite,$(WITH_FERRETDB) sh -c 'cargo test --workspace -- --include-ignored && \
		MONGO_SIDECAR_TEST_URI="$$MONGO_SIDECAR_TEST_TLS_URI" cargo test --test api -- --include-ignored')

.PHONY: test-e2e
test-e2e: ## End to end under the Lambda emulator, with the layer zip's binary and clients
	@$(call run_suite,$(TEST_ENV) $(PYTHON) -m pytest tests/e2e)

.PHONY: test-client-node
test-client-node: ## The Node.js client (node --test) against the sidecar and FerretDB
	@$(call run_suite,$(TEST_ENV) $(WITH_FERRETDB) node --test layer/clients/node/test/)

.PHONY: test-client-python
test-client-python: ## The Python client (pytest) against the sidecar and FerretDB
	@$(call run_suite,$(TEST_ENV) $(WITH_FERRETDB) $(PYTHON) -m pytest layer/clients/python/tests)

.PHONY: test-python-runtimes
test-python-runtimes: ## The layer's Python bytecode and the Python client's tests on Python 3.9 to 3.13
	@$(call run_suite,$(TEST_ENV) $(WITH_FERRETDB) $(PYTHON) -m pytest tests/runtimes)

.PHONY: test-api
test-api: ## The OpenAPI document against the code and the running sidecar (schemathesis)
	@$(call run_suite,$(TEST_ENV) $(WITH_FERRETDB) $(PYTHON) -m pytest tests/api)

# The arm64 binary runs here under qemu-user (harness/qemu.py): a wrapper script stands in for it.
ARM64_BIN     := target/lambda/arm64/extensions/mongo-sidecar
ARM64_WRAPPER := $(TOOLS)/arm64/mongo-sidecar
# Schemathesis cases per operation under emulation (the coverage phase stays whole): about
# 8,300 requests, 4 minutes.
ARM64_FUZZ_EXAMPLES ?= 4

.PHONY: arm64-runner
arm64-runner: ## Install qemu-user and the aarch64 glibc if missing (root, apt), to run the arm64 extension here
	@$(call debian_packages,$(ARM64_DEBIAN_PACKAGES),running the arm64 extension under qemu)

.PHONY: test-api-arm64
test-api-arm64: ## The API suite against the arm64 binary, under qemu-user
	@$(call run_suite,PYTHONPATH=tests $(PYTHON) -m harness.qemu $(ARM64_BIN) $(ARM64_WRAPPER) && \
		MONGO_SIDECAR_BIN=$(CURDIR)/$(ARM64_WRAPPER) MONGO_SIDECAR_FUZZ_EXAMPLES=$(ARM64_FUZZ_EXAMPLES) \
		$(WITH_FERRETDB) $(PYTHON) -m pytest tests/api)

.PHONY: test-security
test-security: ## Bad inputs over real sockets, the secret-leak search, each security rule
	@$(call run_suite,$(TEST_ENV) $(WITH_FERRETDB) $(PYTHON) -m pytest tests/security)

.PHONY: test-faults
test-faults: ## Timeouts, lost connections, dead paths, DNS and TLS failures, stalled clients, through a fault-injecting proxy
	@$(call run_suite,$(TEST_ENV) $(PYTHON) -m pytest tests/faults)

.PHONY: test-observability
test-observability: ## EMF records (against the published schema), /metrics, Server-Timing, the logs
	@$(call run_suite,$(TEST_ENV) $(PYTHON) -m pytest tests/observability)

.PHONY: test-deploy
test-deploy: ## The sample template (cfn-lint, wiring), make publish and the deploy commands, against moto
	@$(call run_suite,$(TEST_ENV) $(PYTHON) -m pytest tests/deploy)

.PHONY: test-reliability
test-reliability: ## A fleet of 20 environments (sidecar vs in-process driver), overload, a 60 s soak, mongodb+srv (root)
	@$(call run_suite,$(TEST_ENV) $(PYTHON) -m pytest tests/reliability)

# ---------------------------------------------------------------------------------------------
# Reliability at scale, out of CI: each prints its figures and writes them to .tools/reliability/.

RELIABILITY_OUT    := $(TOOLS)/reliability
FLEET_ENVIRONMENTS ?= 100
SOAK_SECONDS       ?= 600

.PHONY: fleet
fleet: tools layer ## FLEET_ENVIRONMENTS (100) environments on one server, sidecar vs in-process driver, then the model
	$(TEST_ENV) PYTHONPATH=tests $(PYTHON) -m reliability.fleet --environments $(FLEET_ENVIRONMENTS) --one-at-a-time \
		--out $(RELIABILITY_OUT)/fleet-$(FLEET_ENVIRONMENTS).json
	PYTHONPATH=tests $(PYTHON) -m reliability.model --fleet $(RELIABILITY_OUT)/fleet-$(FLEET_ENVIRONMENTS).json \
		--svg $(RELIABILITY_OUT)/fleet-model.svg

.PHONY: soak
soak: tools layer ## SOAK_SECONDS (600) of mixed reads, writes and streamed finds; the sidecar's RSS and FDs every second
	$(TEST_ENV) PYTHONPATH=tests $(PYTHON) -m reliability.soak --seconds $(SOAK_SECONDS) --out $(RELIABILITY_OUT)/soak

# ---------------------------------------------------------------------------------------------

# The bare hyper echo server the benchmark measures the sidecar's CPU against: its own small cargo
# workspace, built with the extension's release profile.
BENCH_ECHO := target/bench-echo/release/bench-echo

$(BENCH_ECHO): tests/bench/echo/Cargo.toml tests/bench/echo/Cargo.lock tests/bench/echo/src/main.rs
	@$(call need,cargo,Install Rust with rustup.)
	cargo build --release --locked --quiet --manifest-path tests/bench/echo/Cargo.toml --target-dir target/bench-echo

.PHONY: bench-echo
bench-echo: $(BENCH_ECHO) ## Build the bare hyper echo server the benchmark compares the sidecar with

# The driver alone, findOne as the sidecar sends it, no HTTP: its own small cargo workspace too.
BENCH_DRIVER_FLOOR := target/bench-driver-floor/release/bench-driver-floor

$(BENCH_DRIVER_FLOOR): tests/bench/driver-floor/Cargo.toml tests/bench/driver-floor/Cargo.lock tests/bench/driver-floor/src/main.rs
	@$(call need,cargo,Install Rust with rustup.)
	cargo build --release --locked --quiet --manifest-path tests/bench/driver-floor/Cargo.toml --target-dir target/bench-driver-floor

.PHONY: bench-driver-floor
bench-driver-floor: $(BENCH_DRIVER_FLOOR) ## Build the driver-only program the benchmark splits the sidecar's CPU with

BENCH := $(TEST_ENV) PYTHONPATH=tests $(PYTHON) -m bench

.PHONY: bench
bench: tools layer sample-functions $(BENCH_ECHO) $(BENCH_DRIVER_FLOOR) ## The benchmark: per-operation CPU and latency against the drivers, sizes, memory, start-up, the Java and Python runtimes (BENCH_ARGS=--quick)
	$(BENCH) $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: sample-functions $(BENCH_ECHO) $(BENCH_DRIVER_FLOOR) ## Every benchmark section with tiny workloads (under a minute): fails only if a figure cannot be measured
	@$(call run_suite,$(BENCH) --smoke)

FUZZ_SECONDS ?= 60

.PHONY: fuzz
fuzz: ## Fuzz request decoding and Extended JSON, FUZZ_SECONDS per target (nightly + cargo-fuzz)
	@rustup toolchain list | grep -q '^nightly' || { echo "error: fuzzing needs a nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
	@command -v cargo-fuzz >/dev/null || { echo "error: cargo-fuzz not found: cargo install cargo-fuzz" >&2; exit 1; }
	cd extension && for t in request_decode ejson_to_bson write_document; do \
		cargo +nightly fuzz run $$t fuzz/corpus/$$t fuzz/seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; done

.PHONY: demo
demo: tools layer ## Run the Node.js sample function with the extension under the emulator
	$(TEST_ENV) PYTHONPATH=tests $(PYTHON) -m harness.demo

.PHONY: clean
clean: ## Remove build output, installed tools and test logs
	rm -rf target $(TOOLS) dist
