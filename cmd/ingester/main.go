// Command ingester keeps the curated characters in Postgres current with the
// upstream API: `migrate`, `once` or `serve` (the default).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/rickmorty/rickmorty/db"
	"github.com/rickmorty/rickmorty/pkg/config"
	"github.com/rickmorty/rickmorty/pkg/ingest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/telemetry"
	"github.com/rickmorty/rickmorty/pkg/upstream"
)

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailed  = 1 // the ingest, plan, read or migration failed; stored data unchanged
	exitUsage   = 2 // bad command line or configuration
	exitLocked  = 3 // another ingest holds the lock; nothing was written
	exitRefused = 4 // the mass-delete guard refuses (once) or would refuse (plan) the sync; nothing was written
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: ingester [command]

commands:
  serve            run an ingest now and then on INGEST_SCHEDULE; serve /metrics,
                   /healthz and /readyz on METRICS_ADDR (the default command)
  once [--force]   run one ingest and exit: 0 done, 1 failed, 3 another ingest
                   holds the lock, 4 the mass-delete guard refused the sync;
                   --force skips the guard
  plan [--json] [--limit N]
                   crawl and filter like once, compare with the stored data and
                   print what a sync would change, writing nothing: 0 a sync
                   would be accepted, 4 the guard would refuse it, 1 failed;
                   --limit caps the listed changes (default 50, 0 = all)
  runs [--json] [--limit N]
                   print the last N ingest runs (default 20); needs SELECT only
  migrate          apply the database migrations and exit
  config           list the settings read from the environment, with their
                   defaults, ranges and the commands that read them
  version          print the version and exit

Each command reads and validates only the settings it uses; see
` + "`ingester config`" + ` and the README. Exit code 2: bad command line or
configuration.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "ingester %s (%s)\n", telemetry.Version, telemetry.Commit)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "config":
		if err := config.WriteTable(stdout, settings(&Config{}), usedBy); err != nil {
			return exitFailed
		}
		return exitOK
	}
	if _, ok := scopesOf(cmd); !ok {
		fmt.Fprintf(stderr, "ingester: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}

	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		force   bool
		jsonOut bool
		limit   int
	)
	switch cmd {
	case "once":
		fs.BoolVar(&force, "force", false, "apply the crawl even if the mass-delete guard refuses it")
	case "plan":
		fs.BoolVar(&jsonOut, "json", false, "print the plan as one JSON document (docs/schemas/plan.schema.json), every change listed")
		fs.IntVar(&limit, "limit", defaultPlanLimit, "list at most this many change lines (0: all)")
	case "runs":
		fs.BoolVar(&jsonOut, "json", false, "print the runs as one JSON document (docs/schemas/runs.schema.json)")
		fs.IntVar(&limit, "limit", defaultRunsLimit, fmt.Sprintf("how many runs, newest first (1-%d)", postgres.MaxRuns))
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if (cmd == "plan" && limit < 0) || (cmd == "runs" && (limit < 1 || limit > postgres.MaxRuns)) {
		fmt.Fprintf(stderr, "ingester %s: --limit %d is out of range\n", cmd, limit)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ingester %s: unexpected arguments %v\n", cmd, fs.Args())
		return exitUsage
	}

	scopes, _ := scopesOf(cmd)
	cfg, err := loadConfig(getenv, scopes)
	if err != nil {
		fmt.Fprintf(stderr, "ingester: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	logOut, closeLog, err := telemetry.LogOutput(stderr, cfg.LogFile, "ingester")
	if err != nil {
		fmt.Fprintf(stderr, "ingester: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	defer closeLog()
	log := telemetry.NewLogger(logOut, cfg.LogLevel, "ingester")
	log.Info("starting", "command", cmd, "version", telemetry.Version, "commit", telemetry.Commit, "config", config.LogValue(config.InScope(settings(&cfg), scopes...)))

	switch cmd {
	case "migrate":
		return migrate(cfg, stdout, stderr)
	case "runs":
		return runs(ctx, cfg, jsonOut, limit, stdout, stderr)
	}
	tp, stopTracing, err := telemetry.StartTracing(ctx, "ingester", getenv, log)
	if err != nil {
		fmt.Fprintf(stderr, "ingester: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	defer stopTracing()
	switch cmd {
	case "once":
		return once(ctx, cfg, tp, log, force, stdout, stderr)
	case "plan":
		return plan(ctx, cfg, tp, log, planOutput{json: jsonOut, limit: limit}, stdout, stderr)
	default:
		if err := serve(ctx, cfg, tp, log); err != nil {
			log.Error("ingester stopped", "err", err)
			return exitFailed
		}
		return exitOK
	}
}

func migrate(cfg Config, stdout, stderr io.Writer) int {
	v, err := db.Migrate(cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintf(stderr, "migrate failed: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "migrate ok: schema version %d\n", v)
	return exitOK
}

func once(ctx context.Context, cfg Config, tp trace.TracerProvider, log *slog.Logger, force bool, stdout, stderr io.Writer) int {
	pool, err := postgres.OpenPool(ctx, cfg.DatabaseURL, postgres.PoolConfig{
		MaxConns: cfg.DBMaxConns, AppName: "rickmorty-ingester-once", TracerProvider: tp,
	})
	if err != nil {
		fmt.Fprintf(stderr, "ingest failed: %v\n", err)
		return exitFailed
	}
	defer pool.Close()
	runner := newRunner(cfg, pool, tp, log, nil)
	sum, err := runner.Run(ctx, force)
	switch {
	case errors.Is(err, ingest.ErrLocked):
		fmt.Fprintf(stderr, "ingest skipped: %v; nothing was written\n", err)
		return exitLocked
	case errors.Is(err, postgres.ErrGuard):
		fmt.Fprintf(stderr, "ingest refused: %v\n", err)
		fmt.Fprintln(stderr, "nothing was written; `ingester plan` lists what the sync would change")
		return exitRefused
	case err != nil:
		fmt.Fprintf(stderr, "ingest failed: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "ingest ok: %s\n", sum)
	return exitOK
}

// newRunner wires the crawler and the runner; tp nil means no tracing.
func newRunner(cfg Config, pool *pgxpool.Pool, tp trace.TracerProvider, log *slog.Logger, reg *prometheus.Registry) *ingest.Runner {
	var um *upstream.Metrics
	var im *ingest.Metrics
	if reg != nil {
		um = upstream.NewMetrics(reg)
		im = ingest.NewMetrics(reg)
	}
	client := upstream.New(upstream.Config{
		BaseURL:        cfg.UpstreamURL,
		Timeout:        cfg.Timeout,
		Retries:        cfg.Retries,
		RetryWaitMin:   cfg.RetryWaitMin,
		RetryWaitMax:   cfg.RetryWaitMax,
		MaxRetryAfter:  cfg.MaxRetryAfter,
		Concurrency:    cfg.Concurrency,
		MaxPages:       cfg.MaxPages,
		UserAgent:      "rickmorty-ingester/" + telemetry.Version,
		TracerProvider: tp,
	}, log, um)
	return ingest.NewRunner(client, postgres.NewIngests(pool), log, im, ingest.Options{
		MaxDeleteRatio: cfg.MaxDeleteRatio,
		MaxRejectRatio: cfg.MaxRejectRatio,
		Timeout:        cfg.RunTimeout,
		RetryMin:       cfg.RetryMin,
		RetryMax:       cfg.RetryMax,
		TracerProvider: tp,
	})
}

func serve(ctx context.Context, cfg Config, tp trace.TracerProvider, log *slog.Logger) error {
	schedule, err := ingest.ParseSchedule(cfg.Schedule)
	if err != nil {
		return err
	}
	pool, err := postgres.OpenPool(ctx, cfg.DatabaseURL, postgres.PoolConfig{
		MaxConns: cfg.DBMaxConns, AppName: "rickmorty-ingester", TracerProvider: tp,
	})
	if err != nil {
		return err
	}
	defer pool.Close()

	reg := telemetry.NewRegistry("ingester")
	ingest.RegisterScheduleInterval(reg, schedule)
	runner := newRunner(cfg, pool, tp, log, reg)
	if err := runner.Prime(ctx); err != nil {
		// Not fatal: the database may come up later; the runs will report it.
		log.Warn("could not read the stored state at start", "err", err)
	}

	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
	}
	srv := &http.Server{
		Handler:           opsHandler(reg, pool),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	log.Info("serving metrics and health", "addr", ln.Addr().String())

	done := make(chan struct{})
	go func() {
		defer close(done)
		ingest.Serve(ctx, runner, schedule, log)
	}()

	select {
	case <-ctx.Done():
		log.Info("shutting down: cancelling any ingest in flight")
	case err := <-srvErr:
		return fmt.Errorf("metrics server: %w", err)
	}
	<-done
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Only scrapes and probes use this server, and the ingest has
		// already stopped cleanly: a connection a client opened but never
		// used must not turn a clean stop into a failure.
		log.Warn("metrics server did not drain in time; closing it", "err", err)
		_ = srv.Close()
	}
	log.Info("stopped")
	return nil
}
