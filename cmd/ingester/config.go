package main

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rickmorty/rickmorty/pkg/config"
	"github.com/rickmorty/rickmorty/pkg/ingest"
	"github.com/rickmorty/rickmorty/pkg/telemetry"
	"github.com/rickmorty/rickmorty/pkg/upstream"
)

// Config is every setting of the ingester, read from the environment.
type Config struct {
	DatabaseURL    string
	UpstreamURL    string
	Schedule       string
	MetricsAddr    string
	LogLevel       slog.Level
	Timeout        time.Duration // per upstream HTTP attempt
	Retries        int
	RetryWaitMin   time.Duration
	RetryWaitMax   time.Duration
	MaxRetryAfter  time.Duration
	Concurrency    int
	MaxPages       int
	MaxDeleteRatio float64
	MaxRejectRatio float64
	RunTimeout     time.Duration
	RetryMin       time.Duration // failed runs are retried from this backoff...
	RetryMax       time.Duration // ...doubling up to this, before the next scheduled run
	DBMaxConns     int
	LogFile        telemetry.LogFileConfig
}

// Scopes of settings: the groups of commands that read them. A setting
// with no scope is read by every command.
const (
	scopeIngest = "ingest" // a crawl and a sync: once, serve
	scopeServe  = "serve"  // the schedule and the metrics server
)

// commands lists each command that reads the configuration with the scopes
// of the settings it reads (beyond those of every command); a setting out
// of a command's scopes is neither read nor validated by it. Adding a
// command is one line here.
var commands = []struct {
	name   string
	scopes []string
}{
	{"serve", []string{scopeIngest, scopeServe}},
	{"once", []string{scopeIngest}},
	{"plan", []string{scopeIngest}},
	{"runs", nil},
	{"migrate", nil},
}

// scopesOf returns the scopes of cmd, and false for an unknown command.
func scopesOf(cmd string) ([]string, bool) {
	for _, c := range commands {
		if c.name == cmd {
			return c.scopes, true
		}
	}
	return nil, false
}

// settings declares every variable of the ingester once, bound to c's
// fields: loadConfig, the start-up log, `ingester config` and the drift
// tests of the README and the chart all derive from it.
func settings(c *Config) []config.Setting {
	return []config.Setting{
		{Name: "DATABASE_URL", Kind: config.DatabaseURL, Required: true, Secret: true, Dest: &c.DatabaseURL,
			Usage: "Postgres URL; the role writes characters, ingest_runs, data_version (and DDL for migrate)"},
		{Name: "LOG_LEVEL", Default: "info", Dest: &c.LogLevel,
			Usage: "debug, info, warn or error"},
		{Name: "UPSTREAM_URL", Kind: config.URL, Default: "https://rickandmortyapi.com/api", Scope: scopeIngest, Dest: &c.UpstreamURL,
			Usage: "base URL; pages are {UPSTREAM_URL}/character?page=N"},
		{Name: "INGEST_SCHEDULE", Default: "@every 5m", Scope: scopeServe, Check: checkSchedule, Dest: &c.Schedule,
			Usage: "cron spec (5 fields, or @every 10m, @hourly, ...)"},
		{Name: "METRICS_ADDR", Kind: config.Addr, Default: ":9090", Scope: scopeServe, Dest: &c.MetricsAddr,
			Usage: "address of /metrics, /healthz, /readyz"},
		{Name: "UPSTREAM_TIMEOUT", Default: "10s", Min: "100ms", Max: "5m", Scope: scopeIngest, Dest: &c.Timeout,
			Usage: "per HTTP attempt, body included"},
		{Name: "UPSTREAM_RETRIES", Default: "5", Min: "0", Max: "20", Scope: scopeIngest, Dest: &c.Retries,
			Usage: "retries per page after the first attempt"},
		{Name: "UPSTREAM_RETRY_WAIT_MIN", Default: "500ms", Min: "1ms", Max: "1m", Scope: scopeIngest, Dest: &c.RetryWaitMin,
			Usage: "first backoff step"},
		{Name: "UPSTREAM_RETRY_WAIT_MAX", Default: "30s", Min: "1ms", Max: "10m", Scope: scopeIngest, Dest: &c.RetryWaitMax,
			Usage: "backoff ceiling"},
		{Name: "UPSTREAM_MAX_RETRY_AFTER", Default: "60s", Min: "0s", Max: "30m", Scope: scopeIngest, Dest: &c.MaxRetryAfter,
			Usage: "longest Retry-After honoured; longer ones are capped"},
		{Name: "UPSTREAM_CONCURRENCY", Default: "4", Min: "1", Max: "64", Scope: scopeIngest, Dest: &c.Concurrency,
			Usage: "pages fetched at once"},
		{Name: "UPSTREAM_MAX_PAGES", Default: strconv.Itoa(upstream.DefaultMaxPages), Min: "1", Max: "1000000", Scope: scopeIngest, Dest: &c.MaxPages,
			Usage: "the most pages the crawler believes the upstream has"},
		{Name: "INGEST_MAX_DELETE_RATIO", Default: "0.5", Min: "0", Max: "1", Scope: scopeIngest, Dest: &c.MaxDeleteRatio,
			Usage: "refuse a sync deleting more than this share of stored rows"},
		{Name: "INGEST_MAX_REJECT_RATIO", Default: "0.05", Min: "0", Max: "1", Scope: scopeIngest, Dest: &c.MaxRejectRatio,
			Usage: "fail a run when more than this share of the admitted characters cannot be stored"},
		{Name: "INGEST_TIMEOUT", Default: "10m", Min: "1s", Max: "24h", Scope: scopeIngest, Dest: &c.RunTimeout,
			Usage: "a run is cancelled (and rolled back) after this long"},
		{Name: "INGEST_RETRY_MIN", Default: "5s", Min: "0s", Max: "1h", Scope: scopeServe, Dest: &c.RetryMin,
			Usage: "a failed ingest runs again after this backoff, doubling (0: wait for the schedule)"},
		{Name: "INGEST_RETRY_MAX", Default: "5m", Min: "1s", Max: "24h", Scope: scopeServe, Dest: &c.RetryMax,
			Usage: "the longest of those backoffs"},
		{Name: "DB_MAX_CONNS", Default: "4", Min: "2", Max: "100", Scope: scopeIngest, Dest: &c.DBMaxConns,
			Usage: "connection pool size (min 2: the lock holds one)"},
		{Name: "LOG_FILE", Dest: &c.LogFile.Path,
			Usage: "also write the JSON log to this file (for a log-shipping sidecar); unset: stderr only"},
		{Name: "LOG_FILE_MAX_BYTES", Default: "10485760", Min: "65536", Max: "1073741824", Dest: &c.LogFile.MaxBytes,
			Usage: "LOG_FILE is rotated to <file>.1 before it would pass this size"},
	}
}

func checkSchedule(spec string) error {
	_, err := ingest.ParseSchedule(spec)
	return err
}

// loadConfig reads and validates the settings of scopes (those of a
// command); the others keep their defaults whatever the environment says.
func loadConfig(getenv func(string) string, scopes []string) (Config, error) {
	var c Config
	r := config.NewReader(getenv)
	r.Load(settings(&c), scopes...)
	r.Check(c.RetryMin <= c.RetryMax, "INGEST_RETRY_MIN", "must not exceed INGEST_RETRY_MAX (%s)", c.RetryMax)
	r.Check(c.RetryWaitMin <= c.RetryWaitMax, "UPSTREAM_RETRY_WAIT_MIN", "must not exceed UPSTREAM_RETRY_WAIT_MAX (%s)", c.RetryWaitMax)
	return c, r.Err()
}

// usedBy names the commands that read s.
func usedBy(s config.Setting) string {
	if s.Scope == "" {
		return "all"
	}
	var cmds []string
	for _, c := range commands {
		if slices.Contains(c.scopes, s.Scope) {
			cmds = append(cmds, c.name)
		}
	}
	return strings.Join(cmds, ",")
}
