package main

import (
	"log/slog"
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

func loadConfig(getenv func(string) string) (Config, error) {
	r := config.NewReader(getenv)
	c := Config{
		DatabaseURL:    r.DatabaseURL("DATABASE_URL"),
		UpstreamURL:    r.URL("UPSTREAM_URL", "https://rickandmortyapi.com/api"),
		Schedule:       r.String("INGEST_SCHEDULE", "@every 5m"),
		MetricsAddr:    r.Addr("METRICS_ADDR", ":9090"),
		LogLevel:       r.LogLevel("LOG_LEVEL", slog.LevelInfo),
		Timeout:        r.Duration("UPSTREAM_TIMEOUT", 10*time.Second, 100*time.Millisecond, 5*time.Minute),
		Retries:        r.Int("UPSTREAM_RETRIES", 5, 0, 20),
		RetryWaitMin:   r.Duration("UPSTREAM_RETRY_WAIT_MIN", 500*time.Millisecond, time.Millisecond, time.Minute),
		RetryWaitMax:   r.Duration("UPSTREAM_RETRY_WAIT_MAX", 30*time.Second, time.Millisecond, 10*time.Minute),
		MaxRetryAfter:  r.Duration("UPSTREAM_MAX_RETRY_AFTER", 60*time.Second, 0, 30*time.Minute),
		Concurrency:    r.Int("UPSTREAM_CONCURRENCY", 4, 1, 64),
		MaxPages:       r.Int("UPSTREAM_MAX_PAGES", upstream.DefaultMaxPages, 1, 1_000_000),
		MaxDeleteRatio: r.Float("INGEST_MAX_DELETE_RATIO", 0.5, 0, 1),
		MaxRejectRatio: r.Float("INGEST_MAX_REJECT_RATIO", 0.05, 0, 1),
		RunTimeout:     r.Duration("INGEST_TIMEOUT", 10*time.Minute, time.Second, 24*time.Hour),
		RetryMin:       r.Duration("INGEST_RETRY_MIN", 5*time.Second, 0, time.Hour),
		RetryMax:       r.Duration("INGEST_RETRY_MAX", 5*time.Minute, time.Second, 24*time.Hour),
		DBMaxConns:     r.Int("DB_MAX_CONNS", 4, 2, 100),
		LogFile:        telemetry.ReadLogFileConfig(r),
	}
	r.Check(c.RetryMin <= c.RetryMax, "INGEST_RETRY_MIN", "must not exceed INGEST_RETRY_MAX (%s)", c.RetryMax)
	r.Check(c.RetryWaitMin <= c.RetryWaitMax, "UPSTREAM_RETRY_WAIT_MIN", "must not exceed UPSTREAM_RETRY_WAIT_MAX (%s)", c.RetryWaitMax)
	if _, err := ingest.ParseSchedule(c.Schedule); err != nil {
		r.Check(false, "INGEST_SCHEDULE", "%v", err)
	}
	return c, r.Err()
}

// logAttrs is the configuration as logged at start, secrets masked.
func (c Config) logAttrs() []any {
	return []any{
		"database_url", config.MaskURL(c.DatabaseURL),
		"upstream_url", c.UpstreamURL,
		"schedule", c.Schedule,
		"metrics_addr", c.MetricsAddr,
		"log_level", c.LogLevel.String(),
		"upstream_timeout", c.Timeout.String(),
		"upstream_retries", c.Retries,
		"upstream_retry_wait_min", c.RetryWaitMin.String(),
		"upstream_retry_wait_max", c.RetryWaitMax.String(),
		"upstream_max_retry_after", c.MaxRetryAfter.String(),
		"upstream_concurrency", c.Concurrency,
		"upstream_max_pages", c.MaxPages,
		"max_delete_ratio", c.MaxDeleteRatio,
		"max_reject_ratio", c.MaxRejectRatio,
		"run_timeout", c.RunTimeout.String(),
		"retry_min", c.RetryMin.String(),
		"retry_max", c.RetryMax.String(),
		"db_max_conns", c.DBMaxConns,
		"log_file", c.LogFile.Path,
		"log_file_max_bytes", c.LogFile.MaxBytes,
	}
}
