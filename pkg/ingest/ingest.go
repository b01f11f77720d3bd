// Package ingest runs one ingest (lock, crawl, filter, sync, record) and
// schedules them.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

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

// resultLocked counts, in rickmorty_ingest_runs_total, the runs that found
// the lock taken; they never start, so ingest_runs has no row for them.
const resultLocked = "locked"

// Runner performs ingests.
type Runner struct {
	crawler Crawler
	store   *postgres.Ingests
	log     *slog.Logger
	metrics *Metrics
	tracer  trace.Tracer
	opts    Options
	// lockedSince is when runs began finding the lock taken (unix
	// seconds; 0 while runs take it).
	lockedSince atomic.Int64
}

// Options tune a Runner.
type Options struct {
	MaxDeleteRatio float64       // see postgres.SyncOptions
	MaxRejectRatio float64       // a run fails when more of the admitted characters than this share cannot be stored
	Timeout        time.Duration // a run is cancelled after this long; 0 = no limit
	// RetryMin and RetryMax bound the backoff with which Serve runs a
	// failed ingest again before the next scheduled run; RetryMin 0 leaves
	// failures to the schedule.
	RetryMin, RetryMax time.Duration
	// TracerProvider, when set, gets a span per run (ingest.run) with
	// children for the crawl and the sync. Nil: no tracing.
	TracerProvider trace.TracerProvider
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
	tp := opts.TracerProvider
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	return &Runner{crawler: c, store: store, log: log, metrics: metrics, opts: opts,
		tracer: tp.Tracer("github.com/rickmorty/rickmorty/pkg/ingest")}
}

// Run performs one ingest. It returns ErrLocked, without writing anything,
// when another ingest holds the lock. Any other failure leaves the stored
// data exactly as it was and is recorded in ingest_runs.
func (r *Runner) Run(ctx context.Context, force bool) (Summary, error) {
	start := time.Now()
	ctx, span := r.tracer.Start(ctx, "ingest.run", trace.WithAttributes(attribute.Bool("ingest.force", force)))
	defer span.End()
	if r.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.Timeout)
		defer cancel()
	}
	lock, err := r.store.TryLock(ctx)
	if errors.Is(err, postgres.ErrLocked) {
		r.lockedOut(ctx, span, err)
		return Summary{}, err
	}
	if err != nil {
		return Summary{}, r.failBeforeStart(ctx, span, start, err)
	}
	defer lock.Release()
	r.lockedSince.Store(0)
	r.metrics.LockedSince.Set(0)
	r.metrics.LockHolder.Reset()

	run := postgres.Run{}
	run.ID, err = lock.StartRun(ctx)
	if err != nil {
		return Summary{}, r.failBeforeStart(ctx, span, start, err)
	}
	span.SetAttributes(attribute.Int64("ingest.run_id", run.ID))
	log := r.log.With("run_id", run.ID)
	log.InfoContext(ctx, "ingest started", "force", force)

	run, err = r.crawlAndSync(ctx, lock, run, force)
	sum := Summary{Run: run, Duration: time.Since(start)}
	span.SetAttributes(runAttrs(run)...)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("cancelled (%w) after %s: %w", context.Cause(ctx), sum.Duration.Round(time.Millisecond), err)
		}
		result := postgres.ResultOf(err) // failed, or refused by the mass-delete guard
		committed, ok, recErr := r.store.FailRun(run, err)
		switch {
		case recErr != nil:
			log.ErrorContext(ctx, "could not record the "+result+" run", "err", recErr)
		case ok:
			// The sync committed; only its reply was lost.
			log.WarnContext(ctx, "the sync committed although its reply was lost; the run is a success", "err", err)
			return r.succeed(ctx, span, log, start, committed)
		}
		r.finish(result, start)
		failRun(span, result, err)
		msg := "ingest failed; stored data left unchanged"
		if result == postgres.ResultRefused {
			msg = "ingest refused by the mass-delete guard; stored data left unchanged (see `ingester plan`)"
		}
		log.ErrorContext(ctx, msg, "err", err, "result", result,
			"pages", run.Pages, "fetched", run.Fetched, "kept", run.Kept, "duration_seconds", sum.Duration.Seconds())
		return sum, err
	}
	return r.succeed(ctx, span, log, start, run)
}

// succeed reports a committed run.
func (r *Runner) succeed(ctx context.Context, span trace.Span, log *slog.Logger, start time.Time, run postgres.Run) (Summary, error) {
	sum := Summary{Run: run, Duration: time.Since(start)}
	r.finish(postgres.ResultSuccess, start)
	r.metrics.Rows.WithLabelValues("inserted").Add(float64(run.Inserted))
	r.metrics.Rows.WithLabelValues("updated").Add(float64(run.Updated))
	r.metrics.Rows.WithLabelValues("deleted").Add(float64(run.Deleted))
	r.metrics.Stored.Set(float64(run.Stored))
	r.metrics.LastSuccess.SetToCurrentTime()
	r.metrics.DataVersion.Set(float64(run.DataVersion))
	span.SetAttributes(runAttrs(run)...)
	span.SetAttributes(attribute.String("ingest.result", postgres.ResultSuccess))
	log.InfoContext(ctx, "ingest succeeded", "pages", run.Pages, "fetched", run.Fetched, "kept", run.Kept,
		"inserted", run.Inserted, "updated", run.Updated, "deleted", run.Deleted, "stored", run.Stored,
		"data_version", run.DataVersion, "duration_seconds", sum.Duration.Seconds())
	return sum, nil
}

// lockedOut records a run that found the ingest lock taken: by whom, and
// since when runs keep finding it so (a session squatting the lock shows
// as a long "since", which the RickmortyIngestLockedOut alert watches).
func (r *Runner) lockedOut(ctx context.Context, span trace.Span, err error) {
	r.metrics.Runs.WithLabelValues(resultLocked).Inc()
	span.SetAttributes(attribute.String("ingest.result", resultLocked))
	r.lockedSince.CompareAndSwap(0, time.Now().Unix())
	since := r.lockedSince.Load()
	r.metrics.LockedSince.Set(float64(since))
	attrs := []any{"locked_out_since", time.Unix(since, 0).UTC().Format(time.RFC3339)}
	var le *postgres.LockedError
	if errors.As(err, &le) {
		h := le.Holder
		r.metrics.LockHolder.Reset()
		r.metrics.LockHolder.WithLabelValues(h.Role, h.ApplicationName).Set(1)
		attrs = append(attrs, "holder_pid", h.PID, "holder_role", h.Role, "holder_application", h.ApplicationName,
			"holder_client", h.ClientAddr, "holder_session_start", h.SessionStart.UTC().Format(time.RFC3339),
			"holder_state", h.State, "holder_state_since", h.StateChange.UTC().Format(time.RFC3339))
	}
	r.log.InfoContext(ctx, "ingest skipped: another session holds the ingest lock", attrs...)
}

func (r *Runner) crawlAndSync(ctx context.Context, lock *postgres.Lock, run postgres.Run, force bool) (postgres.Run, error) {
	res, err := r.crawl(ctx)
	if err != nil {
		return run, fmt.Errorf("crawl: %w", err)
	}
	run.Pages, run.Fetched = res.Pages, len(res.Characters)
	kept, err := Filter(res.Characters)
	if err != nil {
		return run, err
	}
	run.Kept = len(kept)
	kept, run.Rejected = postgres.Storable(kept)
	if err := r.reject(ctx, run); err != nil {
		return run, err
	}
	return r.sync(ctx, lock, run, kept, force)
}

// reject reports the admitted characters the store cannot hold. They are
// skipped one by one (their stored rows, if any, stay as they are) and the
// run goes on with the rest, unless they are more than MaxRejectRatio of the
// admitted ones: then the upstream is broken, not one record, and the run
// fails.
func (r *Runner) reject(ctx context.Context, run postgres.Run) error {
	if len(run.Rejected) == 0 {
		return nil
	}
	names := make([]string, 0, min(len(run.Rejected), 20))
	for i, rej := range run.Rejected {
		r.metrics.Rejected.WithLabelValues(rej.Reason).Inc()
		if i < cap(names) {
			names = append(names, rej.String())
		}
	}
	r.log.WarnContext(ctx, "characters rejected: the store cannot hold them; their stored rows are left as they are",
		"rejected", len(run.Rejected), "of", run.Kept, "first", names)
	if share := float64(len(run.Rejected)) / float64(run.Kept); share > r.opts.MaxRejectRatio {
		return fmt.Errorf("%d of %d admitted characters cannot be stored (%.0f%%, limit %.0f%%, INGEST_MAX_REJECT_RATIO); first: %s",
			len(run.Rejected), run.Kept, 100*share, 100*r.opts.MaxRejectRatio, names[0])
	}
	return nil
}

// crawl fetches the upstream under an ingest.crawl span, the parent of the
// HTTP client spans.
func (r *Runner) crawl(ctx context.Context) (upstream.Result, error) {
	ctx, span := r.tracer.Start(ctx, "ingest.crawl")
	defer span.End()
	res, err := r.crawler.Crawl(ctx)
	if err != nil {
		failSpan(span, err)
		return res, err
	}
	span.SetAttributes(
		attribute.Int("ingest.pages", res.Pages),
		attribute.Int("ingest.fetched", len(res.Characters)),
		attribute.Int("ingest.requests", res.Requests),
	)
	return res, nil
}

// sync writes the kept characters under an ingest.sync span, the parent of
// the database spans.
func (r *Runner) sync(ctx context.Context, lock *postgres.Lock, run postgres.Run, kept []character.Character, force bool) (postgres.Run, error) {
	ctx, span := r.tracer.Start(ctx, "ingest.sync", trace.WithAttributes(attribute.Int("ingest.kept", len(kept))))
	defer span.End()
	keep := make([]int, len(run.Rejected))
	for i, rej := range run.Rejected {
		keep[i] = rej.ID
	}
	run, err := lock.Sync(ctx, run, kept, postgres.SyncOptions{MaxDeleteRatio: r.opts.MaxDeleteRatio, Force: force, Keep: keep})
	if err != nil {
		failSpan(span, err)
		return run, err
	}
	span.SetAttributes(
		attribute.Int("ingest.inserted", run.Inserted),
		attribute.Int("ingest.updated", run.Updated),
		attribute.Int("ingest.deleted", run.Deleted),
	)
	return run, nil
}

// runAttrs are a run's counts as span attributes.
func runAttrs(run postgres.Run) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int("ingest.pages", run.Pages),
		attribute.Int("ingest.fetched", run.Fetched),
		attribute.Int("ingest.kept", run.Kept),
		attribute.Int("ingest.inserted", run.Inserted),
		attribute.Int("ingest.updated", run.Updated),
		attribute.Int("ingest.deleted", run.Deleted),
		attribute.Int("ingest.stored", run.Stored),
		attribute.Int64("ingest.data_version", run.DataVersion),
	}
}

// failSpan marks span failed with err.
func failSpan(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// failRun marks the ingest.run span failed with err, its ingest.result
// being result (failed or refused).
func failRun(span trace.Span, result string, err error) {
	failSpan(span, err)
	span.SetAttributes(attribute.String("ingest.result", result))
}

// failBeforeStart reports a run that could not even be recorded (the
// database is unreachable or not migrated): there is no ingest_runs row to
// carry the error, so the log and the metric are all an operator gets.
func (r *Runner) failBeforeStart(ctx context.Context, span trace.Span, start time.Time, err error) error {
	r.finish(postgres.ResultFailed, start)
	failRun(span, postgres.ResultFailed, err)
	err = postgres.WithMigrateHint(err)
	r.log.ErrorContext(ctx, "ingest failed before it started; stored data left unchanged", "err", err)
	return fmt.Errorf("ingest: %w", err)
}

// Filter converts the upstream characters and keeps those character.Admit
// accepts.
func Filter(in []upstream.Character) ([]character.Character, error) {
	out := make([]character.Character, 0, len(in)/4)
	for _, u := range in {
		c, err := toCharacter(u)
		if err != nil {
			return nil, err
		}
		if character.Admit(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// toCharacter converts one upstream character to the domain's.
func toCharacter(u upstream.Character) (character.Character, error) {
	created, err := u.CreatedTime()
	if err != nil {
		return character.Character{}, fmt.Errorf("character %d: created %q: %w", u.ID, u.Created, err)
	}
	return character.Character{
		ID: u.ID, Name: u.Name, Status: u.Status, Species: u.Species, Type: u.Type, Gender: u.Gender,
		OriginName: u.Origin.Name, OriginURL: u.Origin.URL,
		LocationName: u.Location.Name, LocationURL: u.Location.URL,
		Image: u.Image, Episode: u.Episode, URL: u.URL, Created: created,
	}, nil
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
