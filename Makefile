# ParaBFT developer commands. `make test` is what CI runs; `make demo` is the main job.
SHELL := /bin/bash
NODE_BIN := node_modules/.bin
TEST_FILES = $(shell find dist/test -name '*.test.js' | sort)
UNIT_FILES = $(shell find dist/test/unit dist/test/property -name '*.test.js' 2>/dev/null | sort)

.PHONY: install proto proto-check build lint format typecheck test test-unit test-sim test-cluster soak demo bench-exec bench-hostile bench-floor clean \
	image image-if-engine test-containers faults-report cluster-up cluster-down

# Installs npm packages when missing or older than the lock file.
install: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

proto: install
	cd proto && ../$(NODE_BIN)/buf generate
	$(NODE_BIN)/biome format --write src/gen >/dev/null 2>&1 || true

# Fails when src/gen is stale against proto/.
proto-check: install
	cd proto && ../$(NODE_BIN)/buf lint
	@tmp=$$(mktemp -d) && cp -r src/gen $$tmp/gen && (cd proto && ../$(NODE_BIN)/buf generate) && \
	  if ! diff -r $$tmp/gen src/gen >/dev/null; then echo "src/gen is stale: run make proto and commit"; rm -rf $$tmp; exit 1; fi; rm -rf $$tmp

build: install
	$(NODE_BIN)/tsc -p tsconfig.json

typecheck: install
	$(NODE_BIN)/tsc -p tsconfig.json --noEmit

lint: install
	cd proto && ../$(NODE_BIN)/buf lint
	$(NODE_BIN)/biome check .

format: install
	$(NODE_BIN)/biome check --write .

# Everything: lint, type check (the build), unit, property, simulator, cluster and container tests.
# The container suite needs a Docker engine (.ci/run starts one); with CI=true it fails without one.
test: install proto-check lint build image-if-engine
	PARABFT_IMAGE=$(IMAGE) node --test --test-timeout=600000 $(TEST_FILES)

test-unit: build
	node --test $(UNIT_FILES)

test-sim: build
	node --test $(shell find dist/test/sim -name '*.test.js' | sort)

test-cluster: build
	node --test --test-concurrency=1 $(shell find dist/test/cluster -name '*.test.js' | sort)

# The validator image, built offline from this machine's Node.js (deploy/image/build.sh).
IMAGE ?= parabft:local
image: build
	IMAGE=$(IMAGE) deploy/image/build.sh

# `make test` builds the image when an engine answers; the suite itself fails in CI without one.
image-if-engine: build
	@if [ "$(SKIP_IMAGE)" = "1" ]; then echo "make: image already built (SKIP_IMAGE=1)"; \
	  elif docker info >/dev/null 2>&1; then IMAGE=$(IMAGE) deploy/image/build.sh; \
	  else echo "make: no Docker engine answers; the container suite will skip (or fail with CI=true)"; fi

# The fault-injection suite alone (needs an engine; deploy/engine.sh start gives one).
test-containers: image
	PARABFT_IMAGE=$(IMAGE) node --test --test-concurrency=1 --test-timeout=600000 $(shell find dist/test/containers -name '*.test.js' | sort)

# The suite again, writing bench/results/faults.{json,txt} (per scenario: pass/fail, ops and their
# outcomes, time to recover, finality p50/p99 during the fault).
faults-report: image
	rm -f bench/results/faults.json
	PARABFT_IMAGE=$(IMAGE) PARABFT_FAULTS_OUT=bench/results node --test --test-concurrency=1 --test-timeout=600000 \
	  $(shell find dist/test/containers -name 'scenarios*.test.js' | sort)

# N validators in containers on one private network (deploy/compose.yaml); ports on 127.0.0.1.
VALIDATORS ?= 4
CLUSTER_DIR ?= deploy/.cluster
cluster-up: image
	IMAGE=$(IMAGE) deploy/cluster.sh up $(VALIDATORS) $(CLUSTER_DIR)

cluster-down:
	deploy/cluster.sh down $(VALIDATORS) $(CLUSTER_DIR)

# A long simulator soak, not part of CI.
soak: build
	node bin/parabft.js sim --seeds 100000

bench-exec: build
	node bin/parabft.js bench exec

# Issue 10's service figures: the hostile-* cluster tests with the >= 80 % rate and <= 3x p99
# bounds asserted, written to bench/results/hostile.{json,txt,svg}. Run it on a quiet machine.
bench-hostile: build
	rm -f bench/results/hostile.json
	PARABFT_HOSTILE_STRICT=1 PARABFT_HOSTILE_OUT=bench/results node --test --test-concurrency=1 \
	  --test-timeout=900000 $(shell find dist/test/cluster -name 'hostile-*.test.js' | sort)

# Issue 14's light-load floor: PBFT's normal case alone over the node's stack against
# `bench cluster --closed-loop 1`, 3 rotated rounds (~10 min), to bench/results/stack-floor.*.
bench-floor: build
	node dist/bench/stackFloor.js

demo: build
	node bin/parabft.js demo

clean:
	rm -rf dist
