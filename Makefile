# stompgate: the same commands run locally and in CI (.ci/run calls `make test`).
# Tool versions are pinned in scripts/install-test-deps.sh; see style.md
# "Tooling and the CI gate".

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO       ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)
GOBIN    := $(or $(shell $(GO) env GOBIN 2>/dev/null),$(shell $(GO) env GOPATH 2>/dev/null)/bin)
export PATH := $(GOBIN):/usr/local/go/bin:$(PATH)

# The broker the gateway, the e2e tests and ensure-rabbitmq.sh use.
AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
export AMQP_URL

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

FUZZTIME    ?= 20s
E2E_TIMEOUT ?= 15m
UNIT_TIMEOUT ?= 10m

.PHONY: all run build test unit e2e fuzz lint lint-full fmt-check vet staticcheck \
	bench soak deps broker test-scripts clean

all: build

# LISTEN overrides the gateway's listen address for `make run`, e.g. when
# RabbitMQ's own STOMP plugin already holds :61613: make run LISTEN=127.0.0.1:61614
LISTEN ?=

## run: start RabbitMQ if needed, then the gateway on :61613 against $(AMQP_URL)
run: broker
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/stompgate serve --amqp-url '$(AMQP_URL)' $(if $(LISTEN),--listen '$(LISTEN)')

## build: static-ish binary in ./bin with version and commit stamped in
build:
	@mkdir -p bin
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/stompgate ./cmd/stompgate

## test: the whole CI gate
test: broker deps test-scripts fmt-check vet staticcheck
	$(GO) test -race -timeout $(UNIT_TIMEOUT) ./...
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory e2e-only

## unit: vet and the race-enabled unit tests only (no broker, no clients)
unit: vet
	$(GO) test -race -timeout $(UNIT_TIMEOUT) ./...

## e2e: end-to-end tests with the real broker, gateway and STOMP clients
e2e: broker deps e2e-only

# The differential e2e tests compare with RabbitMQ's own STOMP plugin; the
# script enables it on a loopback port (not 61613) if needed and prints it.
.PHONY: stomp-plugin
stomp-plugin: broker
	bash scripts/ensure-stomp-plugin.sh

# The ActiveMQ differential tests (issue 14) compare with a real ActiveMQ
# 5.17 (Debian's package); the script starts one with STOMP on a free
# loopback port and prints that address. `scripts/ensure-activemq.sh stop`
# stops it.
.PHONY: activemq
activemq:
	bash scripts/ensure-activemq.sh

.PHONY: e2e-only
e2e-only: stomp-plugin activemq
	$(GO) test -race -tags e2e -count=1 -timeout $(E2E_TIMEOUT) ./e2e/...

## fuzz: short runs of the codec's frame reader fuzzer and the selector
## parser's fuzzer (issue 14)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) ./gateway/codec
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./mapping/selector

## lint: gofmt, go vet and staticcheck (the cheap, always-on linters)
lint: fmt-check vet staticcheck

## lint-full: lint plus golangci-lint v2 (.golangci.yml) and shellcheck on the
## scripts; installs both on first use (golangci-lint builds for minutes)
lint-full: lint
	bash scripts/install-test-deps.sh --lint-tools
	golangci-lint run ./...
	shellcheck scripts/*.sh .ci/run

fmt-check:
	@unformatted="$$(gofmt -l .)"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$unformatted" | sed 's/^/  /'; \
		exit 1; \
	fi

# The e2e package builds only with -tags e2e, so it is vetted and checked
# separately (when it exists).
E2E_PKGS := $(if $(wildcard e2e/*.go),./e2e/...)

vet:
	$(GO) vet ./...
	$(if $(E2E_PKGS),$(GO) vet -tags 'e2e soak' $(E2E_PKGS))

staticcheck:
	@command -v staticcheck >/dev/null || bash scripts/install-test-deps.sh
	staticcheck ./...
	$(if $(E2E_PKGS),staticcheck -tags 'e2e soak' $(E2E_PKGS))

## soak: the cluster fault scenario (issue 16) for STOMPGATE_SOAK_DURATION
## (default 10m): 3 RabbitMQ nodes, 2 stompgate replicas, node and replica
## kills, cut links; prints receipted, received, lost, duplicated, resumes
soak: broker
	$(GO) test -tags 'e2e soak' -count=1 -run '^TestClusterSoak$$' -timeout 60m -v ./e2e/ | grep -v '^=== RUN'

## bench: codec and mapping micro-benchmarks, then the side-by-side benchmark
## (direct AMQP, stompgate, RabbitMQ's STOMP plugin; issue 6); BENCH_FLAGS="-rounds 5 -duration 3s"
bench: broker
	$(GO) test -run '^$$' -bench . -benchmem ./gateway/codec ./mapping
	$(GO) test -run '^$$' -bench '^BenchmarkSelectorDelivery$$' -benchmem ./gateway
	$(GO) run ./e2e/bench -amqp '$(AMQP_URL)' -plugin "$$(bash scripts/ensure-stomp-plugin.sh)" $(BENCH_FLAGS)

## deps: Debian STOMP clients for e2e, gcc for -race, pinned staticcheck
deps:
	bash scripts/install-test-deps.sh

## broker: make sure RabbitMQ answers at $(AMQP_URL)
broker:
	bash scripts/ensure-rabbitmq.sh

## qpid: start (or reuse) a Qpid Broker-J for tests on a free loopback port and
## print its AMQP URL; `bash scripts/ensure-qpid.sh stop` stops it
.PHONY: qpid
qpid:
	bash scripts/ensure-qpid.sh

## test-scripts: tests of the two scripts above, against stub commands
test-scripts:
	bash scripts/test-scripts.sh

clean:
	rm -rf bin coverage.out coverage.html *.coverprofile
	$(GO) clean -testcache -fuzzcache

# A throwaway N-node RabbitMQ cluster on free loopback ports (issue 16's
# fault tests), beside the machine's broker; its state is in
# /tmp/stompgate-cluster (STOMPGATE_CLUSTER_DIR).
CLUSTER_NODES ?= 3
.PHONY: cluster cluster-down

## cluster: start (or restart fresh) a CLUSTER_NODES-node RabbitMQ cluster and print its AMQP URLs
cluster:
	bash scripts/rabbitmq-cluster.sh up $(CLUSTER_NODES)

## cluster-down: stop that cluster and delete its state
cluster-down:
	bash scripts/rabbitmq-cluster.sh down
