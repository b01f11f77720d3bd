# rickmorty: common tasks. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/rickmorty/rickmorty/pkg/telemetry.Version=$(VERSION) -X github.com/rickmorty/rickmorty/pkg/telemetry.Commit=$(COMMIT)
BIN     := $(CURDIR)/bin
export GOFLAGS := -buildvcs=false

# The Postgres the tests use: TEST_DATABASE_URL, else one found or started
# by scripts/ensure-postgres.sh (a Docker engine, when present, is used by
# the tests themselves through testcontainers).
WITH_TEST_DB := export TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$(scripts/ensure-postgres.sh)}";

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/api, bin/ingester and bin/fakeupstream
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

.PHONY: test
test: ## run every test (unit, Postgres integration, fuzz seeds) with the race detector
	go vet ./...
	$(WITH_TEST_DB) go test -race -count=1 -timeout 15m ./...

.PHONY: cover
cover: ## tests with a coverage report in coverage.html
	$(WITH_TEST_DB) go test -count=1 -coverprofile=coverage.out ./...
	go tool cover -html=coverage.out -o coverage.html

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	go vet ./... ./e2e/...

.PHONY: migrate
migrate: build ## apply the migrations to DATABASE_URL
	@test -n "$${DATABASE_URL:-}" || { echo "set DATABASE_URL"; exit 2; }
	$(BIN)/ingester migrate

.PHONY: reingest
reingest: build ## run one ingest now (manual re-ingest): against the running demo, or DATABASE_URL/UPSTREAM_URL
	@if [ -z "$${DATABASE_URL:-}" ] && [ -f .run/env ]; then set -a; . .run/env; set +a; fi; \
	test -n "$${DATABASE_URL:-}" || { echo "set DATABASE_URL (or start make demo)"; exit 2; }; \
	$(BIN)/ingester once

.PHONY: demo
demo: ## run the whole system locally, offline (fake upstream); Ctrl-C stops it
	@scripts/demo.sh

.PHONY: run
run: ## run the whole system locally against the real upstream (UPSTREAM_URL)
	@scripts/demo.sh --real

.PHONY: e2e
e2e: ## black-box e2e suite against a complete local system (throwaway Postgres, fake upstream, ingester, 2 API replicas), torn down after
	scripts/e2e.sh $(E2E_ARGS)

.PHONY: bench
bench: ## Go benchmarks (sync throughput, crawl wall time)
	$(WITH_TEST_DB) go test -run '^$$' -bench . -benchtime 1x -timeout 30m ./pkg/postgres/ ./pkg/upstream/
