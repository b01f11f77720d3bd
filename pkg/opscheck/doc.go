// Package opscheck holds the tests that keep the operations files honest:
// ops/alerts/rules.yaml, its promtool tests, ops/grafana/dashboard.json and
// docs/runbook.md.
//
// It is a module of its own (not in go.work): it needs the Prometheus PromQL
// parser, whose module would otherwise pull its dependency versions into the
// application's build. Run it with GOWORK=off from this directory, as
// scripts/ops-test.sh does. The metric-name test builds and runs the real
// binaries (go build in the repository root) against a fresh database on the
// Postgres server named by TEST_DATABASE_URL.
package opscheck
