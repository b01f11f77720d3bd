// Package ingest runs one ingest (lock, crawl, filter, sync, record) and
// schedules them.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/upstream"
)

// Crawler fetches the whole upstream data set.
type Crawler interface {
	Crawl(ctx context.Context) (upstream.Result, error)
}

// ErrLocked is returned by Run when another ingest holds the lock.
var ErrLocked = postgres.ErrLocked

// Runner performs ingests.
type Runner struct {
	crawler Crawler
	store   *postgres.Ingests
	log     *slog.Logger
	metrics *Metrics
	opts    Options
}

// Options tune a Runner.
type Options struct {
	MaxDeleteRatio float64       // see postgres.SyncOptions
	Timeout        time.Duration // a run is cancelled after this long; 0 = no limit
}

// Summary describes one finished run.
type Summary struct {
	postgres.Run
	Duration time.Duration
}

func (s Summary) String() string {
	return fmt.Sprintf("pages=%d fetched=%d kept=%d inserted=%d updated=%d deleted=%d stored=%d version=%d duration=%s",
		s.Pages, s.Fetched, s.Kept, s.Inserted, s.Updated, s.Deleted, s.Stored, s.DataVersion, s.Duration.Round(time.Millisecond))
}

// NewRunner returns a Runner. metrics may be nil.
func NewRunner(c Crawler, store *postgres.Ingests, log *slog.Logger, metrics *Metrics, opts Options) *Runner {
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Runner{crawler: c, store: store, log: log, metrics: metrics, opts: opts}
}

// Run performs one ingest. It returns ErrLocked, without writing anything,
// when another ingest holds the lock. Any other failure leaves the stored
// data exactly as it was and is recorded in ingest_runs.
func (r *Runner) Run(ctx context.Context, force bool) (Summary, error) {
	start := time.Now()
	if r.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
	}
	lock, err := r.store.TryLock(ctx)
	if errors.Is(err, postgres.ErrLocked) {
		r.metrics.Runs.WithLabelValues("locked").Inc()
		r.log.Info("ingest skipped: another ingest holds the lock")
		return Summary{}, ErrLocked
	}
	if err != nil {
		r.finish("failed", start)
		return Summary{}, fmt.Errorf("ingest: %w", err)
	}
	defer lock.Release()

	run := postgres.Run{}
	run.ID, err = lock.StartRun(ctx)
	if err != nil {
		r.finish("failed", start)
		return Summary{}, fmt.Errorf("ingest: %w", err)
	}
	log := r.log.With("run_id", run.ID)
	log.Info("ingest started", "force", force)

	run, err = r.crawlAndSync(ctx, lock, run, force)
	sum := Summary{Run: run, Duration: time.Since(start)}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("cancelled (%w) after %s: %w", context.Cause(ctx), sum.Duration.Round(time.Millisecond), err)
		}
		if recErr := r.store.FailRun(run, err); recErr != nil {
			log.Error("could not record the failed run", "err", recErr)
		}
		r.finish("failed", start)
		log.Error("ingest failed; stored data left unchanged", "err", err,
			"pages", run.Pages, "fetched", run.Fetched, "kept", run.Kept, "duration_seconds", sum.Duration.Seconds())
		return sum, err
	}
	r.finish("success", start)
	r.metrics.Rows.WithLabelValues("inserted").Add(float64(run.Inserted))
	r.metrics.Rows.WithLabelValues("updated").Add(float64(run.Updated))
	r.metrics.Rows.WithLabelValues("deleted").Add(float64(run.Deleted))
	r.metrics.Stored.Set(float64(run.Stored))
	r.metrics.LastSuccess.SetToCurrentTime()
	r.metrics.DataVersion.Set(float64(run.DataVersion))
	log.Info("ingest succeeded", "pages", run.Pages, "fetched", run.Fetched, "kept", run.Kept,
		"inserted", run.Inserted, "updated", run.Updated, "deleted", run.Deleted, "stored", run.Stored,
		"data_version", run.DataVersion, "duration_seconds", sum.Duration.Seconds())
	return sum, nil
}

func (r *Runner) crawlAndSync(ctx context.Context, lock *postgres.Lock, run postgres.Run, force bool) (postgres.Run, error) {
	res, err := r.crawler.Crawl(ctx)
	if err != nil {
		return run, fmt.Errorf("crawl: %w", err)
	}
	run.Pages, run.Fetched = res.Pages, len(res.Characters)
	kept, err := Filter(res.Characters)
	if err != nil {
		return run, err
	}
	run.Kept = len(kept)
	return lock.Sync(ctx, run, kept, postgres.SyncOptions{MaxDeleteRatio: r.opts.MaxDeleteRatio, Force: force})
}

// Filter converts the upstream characters and keeps those character.Admit
// accepts.
func Filter(in []upstream.Character) ([]character.Character, error) {
	out := make([]character.Character, 0, len(in)/4)
	for _, u := range in {
		created, err := u.CreatedTime()
		if err != nil {
			return nil, fmt.Errorf("character %d: created %q: %w", u.ID, u.Created, err)
		}
		c := character.Character{
			ID: u.ID, Name: u.Name, Status: u.Status, Species: u.Species, Type: u.Type, Gender: u.Gender,
			OriginName: u.Origin.Name, OriginURL: u.Origin.URL,
			LocationName: u.Location.Name, LocationURL: u.Location.URL,
			Image: u.Image, Episode: u.Episode, URL: u.URL, Created: created,
		}
		if character.Admit(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (r *Runner) finish(result string, start time.Time) {
	r.metrics.Runs.WithLabelValues(result).Inc()
	r.metrics.Duration.WithLabelValues(result).Observe(time.Since(start).Seconds())
}

// Prime sets the gauges from the database so a restarted ingester does not
// report zero rows or an ancient last success before its first run.
func (r *Runner) Prime(ctx context.Context) error {
	snap, err := r.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	r.metrics.Stored.Set(float64(snap.Stored))
	if !snap.LastSuccess.IsZero() {
		r.metrics.LastSuccess.Set(float64(snap.LastSuccess.UnixNano()) / 1e9)
	}
	return nil
}
