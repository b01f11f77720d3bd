// Command api serves the curated characters over HTTP, read-only, from
// Postgres through a per-pod cache that the ingester's NOTIFY invalidates.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rickmorty/rickmorty/db"
	"github.com/rickmorty/rickmorty/pkg/cache"
	"github.com/rickmorty/rickmorty/pkg/config"
	"github.com/rickmorty/rickmorty/pkg/httpapi"
	"github.com/rickmorty/rickmorty/pkg/listen"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

// Config is everything the API reads from the environment.
type Config struct {
	DatabaseURL     string
	DatabaseReadURL string
	HTTPAddr        string
	LogLevel        slog.Level
	DBMaxConns      int
	CacheTTL        time.Duration
	CacheMaxEntries int
	CacheMaxBytes   int64
	RateLimitRPS    float64
	RateLimitBurst  int
	RateMaxClients  int
	TrustedProxies  []netip.Prefix
	RequestTimeout  time.Duration
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	MaxRefreshAge   time.Duration
	LogFile         telemetry.LogFileConfig
}

func loadConfig(getenv func(string) string) (Config, error) {
	r := config.NewReader(getenv)
	c := Config{
		DatabaseURL:     r.DatabaseURL("DATABASE_URL"),
		DatabaseReadURL: r.OptionalDatabaseURL("DATABASE_READ_URL"),
		HTTPAddr:        r.Addr("HTTP_ADDR", ":8080"),
		LogLevel:        r.LogLevel("LOG_LEVEL", slog.LevelInfo),
		DBMaxConns:      r.Int("DB_MAX_CONNS", 8, 1, 1000),
		CacheTTL:        r.Duration("CACHE_TTL", 5*time.Minute, 0, 24*time.Hour),
		CacheMaxEntries: r.Int("CACHE_MAX_ENTRIES", 10_000, 1, 10_000_000),
		CacheMaxBytes:   int64(r.Int("CACHE_MAX_BYTES", 32<<20, 1<<20, 1<<40)),
		RateLimitRPS:    r.Float("RATE_LIMIT_RPS", 0, 0, 1e9),
		RateLimitBurst:  r.Int("RATE_LIMIT_BURST", 20, 1, 1_000_000),
		RateMaxClients:  r.Int("RATE_LIMIT_MAX_CLIENTS", 100_000, 1, 10_000_000),
		RequestTimeout:  r.Duration("REQUEST_TIMEOUT", 5*time.Second, 10*time.Millisecond, 5*time.Minute),
		DrainDelay:      r.Duration("SHUTDOWN_DRAIN_DELAY", 5*time.Second, 0, 5*time.Minute),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 15*time.Second, time.Second, 10*time.Minute),
		MaxRefreshAge:   r.Duration("HEALTH_MAX_REFRESH_AGE", 0, 0, 365*24*time.Hour),
		LogFile:         telemetry.ReadLogFileConfig(r),
	}
	proxies := r.String("TRUSTED_PROXIES", "")
	for item := range strings.SplitSeq(proxies, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parsePrefix(item)
		r.Check(err == nil, "TRUSTED_PROXIES", "%q is not an IP address or CIDR", item)
		if err == nil {
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
	}
	return c, r.Err()
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// LogValue logs the configuration with the database password masked.
func (c Config) LogValue() slog.Value {
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	return slog.GroupValue(
		slog.String("DATABASE_URL", config.MaskURL(c.DatabaseURL)),
		slog.String("DATABASE_READ_URL", config.MaskURL(c.DatabaseReadURL)),
		slog.String("HTTP_ADDR", c.HTTPAddr),
		slog.String("LOG_LEVEL", c.LogLevel.String()),
		slog.Int("DB_MAX_CONNS", c.DBMaxConns),
		slog.String("CACHE_TTL", c.CacheTTL.String()),
		slog.Int("CACHE_MAX_ENTRIES", c.CacheMaxEntries),
		slog.Int64("CACHE_MAX_BYTES", c.CacheMaxBytes),
		slog.Float64("RATE_LIMIT_RPS", c.RateLimitRPS),
		slog.Int("RATE_LIMIT_BURST", c.RateLimitBurst),
		slog.Int("RATE_LIMIT_MAX_CLIENTS", c.RateMaxClients),
		slog.String("TRUSTED_PROXIES", strings.Join(proxies, ",")),
		slog.String("REQUEST_TIMEOUT", c.RequestTimeout.String()),
		slog.String("SHUTDOWN_DRAIN_DELAY", c.DrainDelay.String()),
		slog.String("SHUTDOWN_TIMEOUT", c.ShutdownTimeout.String()),
		slog.String("HEALTH_MAX_REFRESH_AGE", c.MaxRefreshAge.String()),
		slog.String("LOG_FILE", c.LogFile.Path),
		slog.Int64("LOG_FILE_MAX_BYTES", c.LogFile.MaxBytes),
	)
}

// run serves until ctx ends (SIGTERM), then drains and shuts down.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logOut, closeLog, err := telemetry.LogOutput(stdout, cfg.LogFile, "api")
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	defer closeLog()
	log := telemetry.NewLogger(logOut, cfg.LogLevel, "api")
	log.Info("starting", "version", telemetry.Version, "commit", telemetry.Commit, "config", cfg)
	reg := telemetry.NewRegistry("api")

	tp, stopTracing, err := telemetry.StartTracing(ctx, "api", getenv, log)
	if err != nil {
		return err
	}
	defer stopTracing()

	// DATABASE_URL is the primary, reached directly: the listener's LISTEN
	// needs a session of its own, which a transaction pooler cannot give.
	// DATABASE_READ_URL (a standby, or a pooler in front of replicas) takes
	// the list and item reads when set.
	pool, err := postgres.OpenPool(ctx, cfg.DatabaseURL, postgres.PoolConfig{
		MaxConns: cfg.DBMaxConns, ReadOnly: true, AppName: "rickmorty-api", TracerProvider: tp,
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	responses := httpapi.NewCache(cache.Config{
		TTL: cfg.CacheTTL, MaxEntries: cfg.CacheMaxEntries, MaxBytes: cfg.CacheMaxBytes, FillTimeout: cfg.RequestTimeout,
	}, reg)
	storeOpts := []postgres.StoreOption{postgres.WithMinVersion(responses.Version)}
	if cfg.DatabaseReadURL != "" {
		readPool, err := postgres.OpenPool(ctx, cfg.DatabaseReadURL, postgres.PoolConfig{
			MaxConns: cfg.DBMaxConns, ReadOnly: true, Pooled: true, AppName: "rickmorty-api-read",
			ConnectTimeout: 2 * time.Second, TracerProvider: tp,
		})
		if err != nil {
			return fmt.Errorf("DATABASE_READ_URL: %w", err)
		}
		defer readPool.Close()
		storeOpts = append(storeOpts, postgres.WithReplica(readPool))
	}
	store := postgres.NewStore(pool, reg, storeOpts...)

	var srv *httpapi.Server // the listener reports to it once built
	listener := listen.New(listen.Config{
		DatabaseURL: cfg.DatabaseURL,
		Channel:     postgres.NotifyChannel,
		AppName:     "rickmorty-api-listener",
		OnConnect:   func() { srv.OnConnect() },
		OnNotify:    func(payload string) { srv.OnNotify(payload) },
		Logger:      log,
	}, reg)

	srv = httpapi.NewServer(httpapi.Config{
		RequestTimeout: cfg.RequestTimeout,
		RateLimit:      cfg.RateLimitRPS,
		RateBurst:      cfg.RateLimitBurst,
		RateMaxClients: cfg.RateMaxClients,
		TrustedProxies: cfg.TrustedProxies,
		MaxRefreshAge:  cfg.MaxRefreshAge,
	}, httpapi.Deps{Store: store, Cache: responses, Listener: listener, Logger: log, Registry: reg, TracerProvider: tp})

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}

	// Background work outlives ctx until the HTTP server has drained.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	listenerDone := make(chan struct{})
	go func() {
		defer close(listenerDone)
		_ = listener.Run(bg)
	}()
	go waitReady(bg, store, srv, log)

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// Fail readiness first and keep serving for a while, so the endpoints
	// controller and load balancers stop routing here before we stop
	// accepting; then let in-flight requests finish.
	log.Info("shutting down: draining", "drain_delay", cfg.DrainDelay.String())
	srv.StartDraining()
	select {
	case <-time.After(cfg.DrainDelay):
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = hs.Shutdown(sctx)
	stopBG()
	<-listenerDone
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// waitReady marks srv ready once the database answers with the schema
// version this build expects. It only ever sets readiness, never clears it.
func waitReady(ctx context.Context, store *postgres.Store, srv *httpapi.Server, log *slog.Logger) {
	lastProblem := ""
	for {
		problem := checkSchema(ctx, store)
		if problem == "" {
			srv.SetReady()
			log.Info("ready", "schema_version", db.SchemaVersion)
			return
		}
		if problem != lastProblem {
			log.Warn("not ready", "reason", problem)
			lastProblem = problem
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func checkSchema(ctx context.Context, store *postgres.Store) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, dirty, err := store.SchemaVersion(ctx)
	switch {
	case err != nil:
		return err.Error()
	case dirty:
		return fmt.Sprintf("schema version %d is dirty", v)
	case v != db.SchemaVersion:
		return fmt.Sprintf("schema version is %d, this build expects %d", v, db.SchemaVersion)
	}
	return ""
}
