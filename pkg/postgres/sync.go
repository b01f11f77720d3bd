package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rickmorty/rickmorty/pkg/character"
)

// ingestLockKey is the advisory lock every ingester and manual Job contends
// for; only its holder crawls and writes.
const ingestLockKey int64 = 0x726d_696e_6765_7374 // "rmingest"

// ErrLocked means another ingest holds the lock; nothing was written.
var ErrLocked = errors.New("another ingest is running (advisory lock held)")

// ErrGuard means the sync would have deleted too much and was refused.
var ErrGuard = errors.New("mass-delete guard refused the sync")

// The results a run is recorded with in ingest_runs (and counted with in
// rickmorty_ingest_runs_total, where "locked" adds the runs that never got
// the lock and so have no row).
const (
	ResultRunning   = "running"
	ResultSuccess   = "success"
	ResultFailed    = "failed"
	ResultRefused   = "refused" // the mass-delete guard refused the sync (ErrGuard)
	ResultAbandoned = "abandoned"
)

// ResultOf is the result a run that ended with err is recorded with:
// success (nil), refused (ErrGuard) or failed.
func ResultOf(err error) string {
	switch {
	case err == nil:
		return ResultSuccess
	case errors.Is(err, ErrGuard):
		return ResultRefused
	default:
		return ResultFailed
	}
}

// Ingests writes the curated set on behalf of the ingester.
type Ingests struct {
	pool *pgxpool.Pool
}

// NewIngests returns the ingester's writer over pool.
func NewIngests(pool *pgxpool.Pool) *Ingests { return &Ingests{pool: pool} }

// Lock is a held ingest lock, pinned to one session.
type Lock struct {
	conn *pgxpool.Conn
}

// TryLock takes the ingest lock without waiting, or returns ErrLocked.
func (s *Ingests) TryLock(ctx context.Context) (*Lock, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", ingestLockKey).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("take ingest lock: %w", err)
	}
	if !ok {
		holder, herr := lockHolder(ctx, conn)
		conn.Release()
		if herr != nil {
			return nil, fmt.Errorf("%w; its holder could not be read: %v", ErrLocked, herr) //nolint:errorlint // only ErrLocked is the class
		}
		return nil, &LockedError{Holder: holder}
	}
	return &Lock{conn: conn}, nil
}

// LockHolder is the session that holds the ingest lock, as pg_stat_activity
// shows it.
type LockHolder struct {
	PID             int
	Role            string
	ApplicationName string
	ClientAddr      string    // empty for a Unix socket
	SessionStart    time.Time // when that session connected
	StateChange     time.Time // its last change of state: idle since, when idle
	State           string
}

// LockedError is ErrLocked with the lock's holder, so a squatted lock can be
// told from a concurrent ingest.
type LockedError struct{ Holder LockHolder }

func (e *LockedError) Error() string {
	h := e.Holder
	return fmt.Sprintf("%s: by pid %d (role %q, application %q, client %q, session since %s, %s since %s)",
		ErrLocked, h.PID, h.Role, h.ApplicationName, h.ClientAddr, h.SessionStart.UTC().Format(time.RFC3339),
		h.State, h.StateChange.UTC().Format(time.RFC3339))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// lockHolder reads who holds the ingest lock. An advisory lock on one bigint
// key shows in pg_locks as classid (high 32 bits), objid (low 32 bits) and
// objsubid 1. Reading pg_stat_activity needs no privilege for the role,
// pid, application and timestamps.
func lockHolder(ctx context.Context, conn *pgxpool.Conn) (LockHolder, error) {
	var h LockHolder
	var addr *string
	var stateChange *time.Time
	var state *string
	err := conn.QueryRow(ctx, `
		SELECT a.pid, coalesce(a.usename, ''), coalesce(a.application_name, ''), host(a.client_addr),
		       a.backend_start, a.state_change, a.state
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1
		LIMIT 1`, ingestLockKey).Scan(&h.PID, &h.Role, &h.ApplicationName, &addr, &h.SessionStart, &stateChange, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, errors.New("released meanwhile")
	}
	if addr != nil {
		h.ClientAddr = *addr
	}
	if stateChange != nil {
		h.StateChange = *stateChange
	}
	if state != nil {
		h.State = *state
	}
	return h, err
}

// Release gives the lock back. If the unlock cannot be confirmed the session
// is closed, which releases the lock in Postgres all the same.
func (l *Lock) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var released bool
	if err := l.conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", ingestLockKey).Scan(&released); err != nil || !released {
		c := l.conn.Hijack()
		_ = c.Close(ctx)
		return
	}
	l.conn.Release()
}

// Run counts what one ingest did.
type Run struct {
	ID          int64
	Pages       int
	Fetched     int
	Kept        int
	Inserted    int
	Updated     int
	Deleted     int
	Rejected    []Rejection // admitted characters the store cannot hold, left as stored
	Stored      int         // rows in the table after the sync
	DataVersion int64       // the version the stored data has after the sync
}

// Changed reports whether the sync wrote any character row.
func (r Run) Changed() bool { return r.Inserted+r.Updated+r.Deleted > 0 }

// StartRun records a run in progress. Runs left 'running' by a process that
// died are marked 'abandoned' first: the caller holds the lock, so nobody
// else can be running.
func (l *Lock) StartRun(ctx context.Context) (int64, error) {
	if _, err := l.conn.Exec(ctx,
		"UPDATE ingest_runs SET result = 'abandoned', finished_at = now(), error = 'process ended before the run finished' WHERE result = 'running'"); err != nil {
		return 0, fmt.Errorf("close abandoned runs: %w", err)
	}
	var id int64
	if err := l.conn.QueryRow(ctx, "INSERT INTO ingest_runs DEFAULT VALUES RETURNING id").Scan(&id); err != nil {
		return 0, fmt.Errorf("record run start: %w", err)
	}
	return id, nil
}

// FailRun records why run did not succeed, as ResultOf(cause): refused by
// the mass-delete guard, or failed. It uses a fresh connection and context
// because the run's own may be what failed.
//
// A failure may be only apparent: when the reply to COMMIT is lost (the
// connection dropped, or the run's context ended while Postgres committed),
// the sync did commit, and the run row, written in the same transaction,
// says success. FailRun never overwrites that: it then returns the run as
// committed, with committed true, for the caller to report a success.
func (s *Ingests) FailRun(run Run, cause error) (committed Run, ok bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Only a run still 'running' is failed: a committed sync's row is not.
	// Should that commit still be in flight, the UPDATE waits for it.
	tag, err := s.pool.Exec(ctx, `
		UPDATE ingest_runs
		SET result = $8, finished_at = now(), error = $2,
		    pages = $3, fetched = $4, kept = $5, rejected = $6, rejections = $7
		WHERE id = $1 AND result = 'running'`,
		run.ID, cause.Error(), run.Pages, run.Fetched, run.Kept, len(run.Rejected), RejectionsText(run.Rejected), ResultOf(cause))
	if err != nil {
		return run, false, fmt.Errorf("record failed run: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return run, false, nil
	}
	var result string
	committed = run
	if err := s.pool.QueryRow(ctx, `
		SELECT result, inserted, updated, deleted, coalesce(data_version, 0),
		       (SELECT count(*) FROM characters)
		FROM ingest_runs WHERE id = $1`, run.ID).Scan(&result, &committed.Inserted, &committed.Updated,
		&committed.Deleted, &committed.DataVersion, &committed.Stored); err != nil {
		return run, false, fmt.Errorf("read back run %d: %w", run.ID, err)
	}
	return committed, result == "success", nil
}

// SyncOptions guards a sync against a bad upstream day.
type SyncOptions struct {
	// MaxDeleteRatio refuses a sync that would delete more than this share
	// of the stored rows (0.5 = half).
	MaxDeleteRatio float64
	// Force skips the guards.
	Force bool
	// Keep are ids whose stored rows stay as they are although chars lacks
	// them: characters the upstream still lists that were rejected.
	Keep []int
}

var stagingColumns = []string{
	"id", "name", "status", "species", "type", "gender", "origin_name", "origin_url",
	"location_name", "location_url", "image", "episode", "url", "created",
}

// Sync makes the characters table hold exactly chars, in one transaction on
// the locked session: COPY into a staging table, delete what is gone, upsert
// what is new or changed (unchanged rows are not rewritten), bump the data
// version and NOTIFY when anything changed, and mark the run a success, all
// visible only on commit.
func (l *Lock) Sync(ctx context.Context, run Run, chars []character.Character, opts SyncOptions) (Run, error) {
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return run, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // no-op after commit; a failed rollback closes the session

	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE staging_characters
		(LIKE characters INCLUDING DEFAULTS, PRIMARY KEY (id))
		ON COMMIT DROP`); err != nil {
		return run, fmt.Errorf("create staging table: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staging_characters"}, stagingColumns, rows(chars)); err != nil {
		return run, fmt.Errorf("copy into staging: %w", err)
	}
	if _, err := tx.Exec(ctx, "ANALYZE staging_characters"); err != nil {
		return run, fmt.Errorf("analyze staging: %w", err)
	}

	var stored, gone int
	if err := tx.QueryRow(ctx, `
		SELECT count(*),
		       count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM staging_characters s WHERE s.id = c.id)
		                          AND c.id <> ALL($1))
		FROM characters c`, keep(opts)).Scan(&stored, &gone); err != nil {
		return run, fmt.Errorf("count stored rows: %w", err)
	}
	if err := Guard(stored, gone, len(chars), opts); err != nil {
		return run, err
	}

	tag, err := tx.Exec(ctx, `
		DELETE FROM characters c
		WHERE NOT EXISTS (SELECT 1 FROM staging_characters s WHERE s.id = c.id) AND c.id <> ALL($1)`, keep(opts))
	if err != nil {
		return run, fmt.Errorf("delete gone rows: %w", err)
	}
	run.Deleted = int(tag.RowsAffected())

	// xmax = 0 tells a fresh insert from an update; the WHERE skips rows
	// whose content is unchanged so they keep their tuple and synced_at.
	if err := tx.QueryRow(ctx, `
		WITH merged AS (
			INSERT INTO characters AS c (`+columnList+`)
			SELECT `+columnList+` FROM staging_characters
			ON CONFLICT (id) DO UPDATE SET
				name = EXCLUDED.name, status = EXCLUDED.status, species = EXCLUDED.species,
				type = EXCLUDED.type, gender = EXCLUDED.gender,
				origin_name = EXCLUDED.origin_name, origin_url = EXCLUDED.origin_url,
				location_name = EXCLUDED.location_name, location_url = EXCLUDED.location_url,
				image = EXCLUDED.image, episode = EXCLUDED.episode, url = EXCLUDED.url,
				created = EXCLUDED.created, synced_at = now()
			WHERE (c.name, c.status, c.species, c.type, c.gender, c.origin_name, c.origin_url,
			       c.location_name, c.location_url, c.image, c.episode, c.url, c.created)
			      IS DISTINCT FROM
			      (EXCLUDED.name, EXCLUDED.status, EXCLUDED.species, EXCLUDED.type, EXCLUDED.gender,
			       EXCLUDED.origin_name, EXCLUDED.origin_url, EXCLUDED.location_name, EXCLUDED.location_url,
			       EXCLUDED.image, EXCLUDED.episode, EXCLUDED.url, EXCLUDED.created)
			RETURNING (xmax = 0) AS inserted
		)
		SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged`,
	).Scan(&run.Inserted, &run.Updated); err != nil {
		return run, fmt.Errorf("merge staging: %w", err)
	}
	run.Stored = stored - run.Deleted + run.Inserted

	// The version (and so every ETag and cached response) changes only with
	// the data: a run that confirms the stored set commits no new version
	// and wakes no API pod.
	if run.Changed() {
		if err := tx.QueryRow(ctx,
			"UPDATE data_version SET version = version + 1, updated_at = clock_timestamp() RETURNING version",
		).Scan(&run.DataVersion); err != nil {
			return run, fmt.Errorf("bump data version: %w", err)
		}
		// Queued in the transaction, delivered only if it commits.
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", NotifyChannel, strconv.FormatInt(run.DataVersion, 10)); err != nil {
			return run, fmt.Errorf("notify: %w", err)
		}
	} else if err := tx.QueryRow(ctx, "SELECT version FROM data_version").Scan(&run.DataVersion); err != nil {
		return run, fmt.Errorf("read data version: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE ingest_runs
		SET result = 'success', finished_at = now(), pages = $2, fetched = $3, kept = $4,
		    inserted = $5, updated = $6, deleted = $7, data_version = $8, rejected = $9, rejections = $10
		WHERE id = $1`,
		run.ID, run.Pages, run.Fetched, run.Kept, run.Inserted, run.Updated, run.Deleted, run.DataVersion,
		len(run.Rejected), RejectionsText(run.Rejected)); err != nil {
		return run, fmt.Errorf("record run: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return run, fmt.Errorf("commit: %w", err)
	}
	return run, nil
}

const columnList = "id, name, status, species, type, gender, origin_name, origin_url, location_name, location_url, image, episode, url, created"

func keep(opts SyncOptions) []int64 {
	ids := make([]int64, len(opts.Keep))
	for i, id := range opts.Keep {
		ids[i] = int64(id)
	}
	return ids
}

// RejectionsText is how a run row names its rejections: one per line, the
// first 20, then how many more.
func RejectionsText(rs []Rejection) *string {
	if len(rs) == 0 {
		return nil
	}
	var b strings.Builder
	for i, r := range rs {
		if i == 20 {
			fmt.Fprintf(&b, "... and %d more\n", len(rs)-20)
			break
		}
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	t := strings.TrimSuffix(b.String(), "\n")
	return &t
}

// Guard is the mass-delete guard: it refuses (with an error wrapping
// ErrGuard) a sync that brings incoming characters and so deletes gone of
// the stored ones when that is more than opts.MaxDeleteRatio of them, or
// when it brings none while some are stored. Force, or an empty table,
// accepts anything. Sync applies it; a plan asks it the same question.
func Guard(stored, gone, incoming int, opts SyncOptions) error {
	if opts.Force || stored == 0 {
		return nil
	}
	if incoming == 0 {
		return fmt.Errorf("%w: the crawl kept no characters but %d are stored; run with --force if the upstream really is empty", ErrGuard, stored)
	}
	if float64(gone) > opts.MaxDeleteRatio*float64(stored) {
		return fmt.Errorf("%w: it would delete %d of %d stored characters (%.0f%%, limit %.0f%%); run with --force if this is real",
			ErrGuard, gone, stored, 100*float64(gone)/float64(stored), 100*opts.MaxDeleteRatio)
	}
	return nil
}

func rows(chars []character.Character) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(chars), func(i int) ([]any, error) {
		c := chars[i]
		episode := c.Episode
		if episode == nil {
			episode = []string{}
		}
		return []any{
			c.ID, c.Name, c.Status, c.Species, c.Type, c.Gender, c.OriginName, c.OriginURL,
			c.LocationName, c.LocationURL, c.Image, episode, c.URL, c.Created,
		}, nil
	})
}

// Snapshot is what the ingester reports at start: rows stored and when the
// last success finished (zero if never).
type Snapshot struct {
	Stored      int
	LastSuccess time.Time
}

// Snapshot reads the current stored count and last successful ingest.
func (s *Ingests) Snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	var last *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM characters),
		       (SELECT max(finished_at) FROM ingest_runs WHERE result = 'success')`).Scan(&snap.Stored, &last)
	if err != nil {
		return snap, fmt.Errorf("read snapshot: %w", err)
	}
	if last != nil {
		snap.LastSuccess = *last
	}
	return snap, nil
}
