package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"go.opentelemetry.io/otel/trace"
)

// ParseSchedule validates a cron spec: five fields or a descriptor such as
// "@every 5m" or "@hourly".
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron schedule %q: %w", spec, err)
	}
	return s, nil
}

// ScheduleInterval is the gap between the two activations of s that follow
// now: s.Next(s.Next(now)) - s.Next(now). Constant for "@every" and for
// evenly spaced cron specs ("*/10 * * * *": 10m); for uneven ones (weekdays
// only) it is the gap after the next run. 0 when s never fires again.
func ScheduleInterval(s cron.Schedule, now time.Time) time.Duration {
	next := s.Next(now)
	if next.IsZero() {
		return 0
	}
	after := s.Next(next)
	if after.IsZero() {
		return 0
	}
	return after.Sub(next)
}

// Serve runs an ingest right away and then on schedule until ctx ends. A
// tick that arrives while a run is in flight is skipped; other replicas are
// kept out by the advisory lock. On return no run is in flight: cancelling
// ctx cancels (and so rolls back) the current one.
func Serve(ctx context.Context, r *Runner, schedule cron.Schedule, log *slog.Logger) {
	c := cron.New(
		cron.WithLogger(cronLogger{log}),
		cron.WithChain(cron.SkipIfStillRunning(cronLogger{log})),
	)
	c.Schedule(&startNow{next: schedule}, cron.FuncJob(func() {
		if ctx.Err() != nil {
			return
		}
		runWithRetries(ctx, r, schedule, log)
	}))
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done() // waits for the in-flight run, which ctx has cancelled
}

// runWithRetries runs one ingest and, while it fails, runs it again after a
// backoff (Options.RetryMin, doubling up to RetryMax) that does not wait for
// the schedule: a first ingest that fails because the migration has not run
// yet is retried in seconds, not in INGEST_SCHEDULE. It stops at a success,
// a lock held by another ingest, or when the next scheduled run would come
// first (that run takes over).
func runWithRetries(ctx context.Context, r *Runner, schedule cron.Schedule, log *slog.Logger) {
	delay := r.opts.RetryMin
	for {
		// Each run is a trace of its own: ingest.run is its root span,
		// whatever span ctx may hold.
		_, err := r.Run(trace.ContextWithSpanContext(ctx, trace.SpanContext{}), false)
		if err == nil || errors.Is(err, ErrLocked) || ctx.Err() != nil || delay <= 0 {
			return // failures are logged, counted and recorded by Run
		}
		now := time.Now()
		next := schedule.Next(now)
		if !next.IsZero() && !now.Add(delay).Before(next) {
			return
		}
		log.Warn("ingest failed; retrying before the next scheduled run", "retry_in", delay.String(),
			"next_scheduled_run", next.UTC().Format(time.RFC3339), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, max(r.opts.RetryMax, r.opts.RetryMin))
	}
}

// startNow fires once immediately, then follows next.
type startNow struct {
	fired atomic.Bool
	next  cron.Schedule
}

func (s *startNow) Next(t time.Time) time.Time {
	if !s.fired.Swap(true) {
		return t
	}
	return s.next.Next(t)
}

// cronLogger adapts slog to cron's logger.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		l.log.Warn("ingest tick skipped: the previous run is still in flight")
		return
	}
	l.log.Debug("cron: "+msg, kv...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
