# rickmorty: common tasks. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/rickmorty/rickmorty/pkg/telemetry.Version=$(VERSION) -X github.com/rickmorty/rickmorty/pkg/telemetry.Commit=$(COMMIT)
BIN     := $(CURDIR)/bin
export GOFLAGS := -buildvcs=false
export PATH := /usr/local/go/bin:$(PATH)

# Every target builds with the Go release of go.mod's toolchain line (one
# without known standard-library vulnerabilities), whatever Go the machine
# has: the go command fetches it from the module proxy on first use.
GO_VERSION := $(shell scripts/ci/go-version.sh)
export GOTOOLCHAIN := go$(GO_VERSION)

# The Postgres the tests use: TEST_DATABASE_URL, else one found or started
# by scripts/ensure-postgres.sh (a Docker engine, when present, is used by
# the tests themselves through testcontainers).
WITH_TEST_DB := export TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$(scripts/ensure-postgres.sh)}";

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/api, bin/ingester and bin/fakeupstream
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

.PHONY: test
test: ## run every test: unit + Postgres integration (-race, coverage), chart, ops, e2e (PGTEST_DB=container: Postgres through testcontainers)
	scripts/ci/local.sh test chart ops e2e

.PHONY: check
check: ## the static checks: Go version, gofmt, vet, golangci-lint, govulncheck, actionlint, Dockerfile builds, compose file
	scripts/ci/local.sh go-version gofmt vet lint compose vuln actionlint images

.PHONY: ci
ci: ## everything CI runs that needs no Docker engine, in CI's order (SKIP="e2e" to skip steps)
	scripts/ci/local.sh

.PHONY: unit
unit: ## only the Go tests of the main module (unit + Postgres integration), with the race detector
	scripts/ci/local.sh test

.PHONY: lint
lint: ## gofmt, go vet and golangci-lint
	scripts/ci/local.sh gofmt vet lint

.PHONY: vuln
vuln: ## govulncheck against the reviewed exceptions (offline database here, live on GitHub)
	scripts/ci/govulncheck.sh

.PHONY: chart-test
chart-test: ## helm lint/template, kubeconform and the chart's Go tests
	scripts/chart/test.sh

.PHONY: ops-test
ops-test: ## promtool rule checks and tests; dashboard and rules use only exported metrics
	scripts/ops-test.sh

.PHONY: sync-ops
sync-ops: ## copy ops/ (alert rules, dashboard) into the chart after editing them
	scripts/chart/sync-ops.sh

.PHONY: e2e
e2e: ## black-box e2e suite against a complete local system (throwaway Postgres, fake upstream, ingester, 2 API replicas), torn down after
	scripts/e2e.sh $(E2E_ARGS)

.PHONY: docs-assets
docs-assets: ## refresh the vendored Swagger UI of GET /docs from npm at its pinned version (SWAGGER_UI_VERSION=x.y.z moves the pin)
	scripts/docs-assets.sh

# The targets below need a Docker engine: scripts/docker/with-engine.sh uses
# the one that answers (DOCKER_HOST, the default socket), or starts dockerd
# on a socket of its own (installing Debian's docker.io when missing) and
# stops it afterwards. Where none can run it says so loudly and they fall
# back to what needs no engine; DOCKER_REQUIRED=1 makes that a failure.
WITH_ENGINE := scripts/docker/with-engine.sh

.PHONY: base-images
base-images: ## build the local stand-in base images (Debian, Go, static runtime, Postgres), once per machine: the engine keeps them
	$(WITH_ENGINE) scripts/docker/base-images.sh

.PHONY: images
images: ## build rickmorty-api:dev and rickmorty-ingester:dev from the Dockerfiles with BuildKit, stamped, then check them (scripts/docker/check-images.sh)
	VERSION='$(VERSION)' COMMIT='$(COMMIT)' $(WITH_ENGINE) scripts/docker/images.sh $(IMAGES)

.PHONY: e2e-containers
e2e-containers: ## the e2e suite against the system as containers of rickmorty-*:dev, with the chart's security settings (after make images)
	$(WITH_ENGINE) scripts/e2e-containers.sh $(E2E_ARGS)

.PHONY: compose-smoke
compose-smoke: ## docker-compose.yml's core stack up with the local images, checked through the API, then down -v (after make images)
	$(WITH_ENGINE) scripts/compose-smoke.sh

.PHONY: cover
cover: ## tests with an HTML coverage report in coverage.html
	scripts/ci/test.sh
	go tool cover -html=.cache/coverage.out -o coverage.html

.PHONY: migrate
migrate: build ## apply the migrations to DATABASE_URL
	@test -n "$${DATABASE_URL:-}" || { echo "set DATABASE_URL"; exit 2; }
	$(BIN)/ingester migrate

.PHONY: reingest
reingest: build ## run one ingest now (manual re-ingest): against the running demo, or DATABASE_URL/UPSTREAM_URL
	@if [ -z "$${DATABASE_URL:-}" ] && [ -f .run/env ]; then set -a; . .run/env; set +a; fi; \
	test -n "$${DATABASE_URL:-}" || { echo "set DATABASE_URL (or start make demo)"; exit 2; }; \
	$(BIN)/ingester once

.PHONY: plan
plan: build ## what an ingest would change now, writing nothing (ingester plan): against the running demo, or DATABASE_URL/UPSTREAM_URL
	@if [ -z "$${DATABASE_URL:-}" ] && [ -f .run/env ]; then set -a; . .run/env; set +a; fi; \
	test -n "$${DATABASE_URL:-}" || { echo "set DATABASE_URL (or start make demo)"; exit 2; }; \
	$(BIN)/ingester plan $(ARGS)

.PHONY: runs
runs: build ## the last ingest runs (ingester runs): against the running demo, or DATABASE_URL
	@if [ -z "$${DATABASE_URL:-}" ] && [ -f .run/env ]; then set -a; . .run/env; set +a; fi; \
	test -n "$${DATABASE_URL:-}" || { echo "set DATABASE_URL (or start make demo)"; exit 2; }; \
	$(BIN)/ingester runs $(ARGS)

.PHONY: demo
demo: ## run the whole system locally, offline (fake upstream); Ctrl-C stops it
	@scripts/demo.sh

.PHONY: run
run: ## run the whole system locally against the real upstream (UPSTREAM_URL)
	@scripts/demo.sh --real

.PHONY: bench
bench: ## Go benchmarks (sync throughput, crawl wall time, handler); API load run: bench/api.sh
	$(WITH_TEST_DB) go test -run '^$$' -bench . -benchtime 1x -timeout 30m ./pkg/postgres/ ./pkg/upstream/ ./cmd/ingester/
