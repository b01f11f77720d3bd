package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rickmorty/rickmorty/pkg/character"
)

// The reads below back `ingester plan` and `ingester runs`. They only ever
// SELECT, in read-only transactions, so they work with the API's
// SELECT-only role (db/grants/api_readonly.sql) and cannot write even with
// the ingester's; they take no lock, not even the ingest lock.

// readOnly runs fn in a read-only, repeatable-read transaction: every
// statement of fn sees the same snapshot.
func (s *Ingests) readOnly(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// StoredSet is the curated set as stored, with its data version.
type StoredSet struct {
	Characters  []character.Character // by id
	DataVersion int64
}

// Stored reads every stored character, with every column a sync compares,
// and the data version, from one snapshot.
func (s *Ingests) Stored(ctx context.Context) (StoredSet, error) {
	var set StoredSet
	err := s.readOnly(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT version FROM data_version").Scan(&set.DataVersion); err != nil {
			return fmt.Errorf("read data version: %w", err)
		}
		rows, err := tx.Query(ctx, "SELECT "+columnList+" FROM characters ORDER BY id")
		if err != nil {
			return fmt.Errorf("read stored characters: %w", err)
		}
		set.Characters, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (character.Character, error) {
			var c character.Character
			err := row.Scan(&c.ID, &c.Name, &c.Status, &c.Species, &c.Type, &c.Gender, &c.OriginName, &c.OriginURL,
				&c.LocationName, &c.LocationURL, &c.Image, &c.Episode, &c.URL, &c.Created)
			return c, err
		})
		if err != nil {
			return fmt.Errorf("read stored characters: %w", err)
		}
		return nil
	})
	return set, err
}

// RunRecord is one row of ingest_runs.
type RunRecord struct {
	ID         int64
	StartedAt  time.Time
	FinishedAt *time.Time // nil while running (or abandoned without a finish)
	// Duration is finished_at - started_at, or how long the run has been
	// going for one still running, on the database's clock.
	Duration    time.Duration
	Result      string // one of the Result* constants
	Pages       int
	Fetched     int
	Kept        int
	Inserted    int
	Updated     int
	Deleted     int
	DataVersion *int64 // nil unless the run succeeded
	Error       string
}

// MaxRuns bounds Runs' limit.
const MaxRuns = 10000

// Runs returns the latest limit runs (1..MaxRuns), newest first.
func (s *Ingests) Runs(ctx context.Context, limit int) ([]RunRecord, error) {
	if limit < 1 || limit > MaxRuns {
		return nil, fmt.Errorf("limit %d: must be between 1 and %d", limit, MaxRuns)
	}
	var out []RunRecord
	err := s.readOnly(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, started_at, finished_at,
			       extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8,
			       result, pages, fetched, kept, inserted, updated, deleted, data_version, coalesce(error, '')
			FROM ingest_runs ORDER BY id DESC LIMIT $1`, limit)
		if err != nil {
			return fmt.Errorf("read ingest runs: %w", err)
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (RunRecord, error) {
			var r RunRecord
			var secs float64
			err := row.Scan(&r.ID, &r.StartedAt, &r.FinishedAt, &secs, &r.Result, &r.Pages, &r.Fetched, &r.Kept,
				&r.Inserted, &r.Updated, &r.Deleted, &r.DataVersion, &r.Error)
			r.Duration = time.Duration(max(secs, 0) * float64(time.Second))
			return r, err
		})
		if err != nil {
			return fmt.Errorf("read ingest runs: %w", err)
		}
		return nil
	})
	return out, err
}
