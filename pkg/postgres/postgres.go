// Package postgres stores the curated characters: the ingester's sync and
// lock, and the API's read-only queries.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// NotifyChannel is the channel the ingester NOTIFYs on commit of a
// successful ingest; the payload is the new data version in decimal.
const NotifyChannel = "rickmorty_data_changed"

// PoolConfig tunes a connection pool.
type PoolConfig struct {
	MaxConns int // 0 keeps pgx's default
	// ReadOnly makes every session default to read-only transactions, so a
	// bug in the API cannot write even with a privileged role. It is a
	// startup parameter, which a transaction pooler refuses: pools that may
	// go through one leave it off and rely on the role's own default
	// (db/grants) or on the standby being read-only.
	ReadOnly bool
	// Pooled makes the pool safe behind PgBouncer in transaction mode, where
	// consecutive statements may run on different server sessions: no named
	// prepared statements (pgx describes each statement once per connection
	// and then sends it unnamed, one round trip per query), and no startup
	// parameter but application_name.
	Pooled bool
	// ConnectTimeout bounds establishing one connection when the URL sets
	// no connect_timeout; 0 leaves it to the caller's context.
	ConnectTimeout time.Duration
	// AppName shows in pg_stat_activity.
	AppName string
	// TracerProvider, when set, gets a client span for every query, batch,
	// COPY and pool acquire made with a context that holds a recording
	// span. Nil leaves the pool without a tracer, at no cost.
	TracerProvider trace.TracerProvider
}

// OpenPool parses databaseURL, applies cfg and returns a pool. It does not
// wait for the database: callers ping when they need it up.
func OpenPool(ctx context.Context, databaseURL string, cfg PoolConfig) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = int32(min(cfg.MaxConns, math.MaxInt32))
	}
	rp := pc.ConnConfig.RuntimeParams
	if cfg.AppName != "" {
		rp["application_name"] = cfg.AppName
	}
	if cfg.ReadOnly && !cfg.Pooled {
		rp["default_transaction_read_only"] = "on"
	}
	if cfg.Pooled {
		pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	if cfg.ConnectTimeout > 0 && pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	if cfg.TracerProvider != nil {
		// Spans only: the metrics stay Prometheus's. The SQL is recorded
		// (it is parameterized), the arguments never are. Names are
		// prefixed ("query SELECT", "prepare SELECT", "batch query
		// INSERT") so a statement's implicit prepare is told from it.
		pc.ConnConfig.Tracer = otelpgx.NewTracer(
			otelpgx.WithTracerProvider(cfg.TracerProvider),
			otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelpgx.WithQuerySpanNamePrefix(),
		)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}

// WithMigrateHint adds to err, when it says a table is missing, that the
// schema has not been created yet and how to create it.
func WithMigrateHint(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == pgerrcode.UndefinedTable {
		return fmt.Errorf("%w (the schema is missing: run `ingester migrate`)", err)
	}
	return err
}
