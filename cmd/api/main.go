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
	if len(os.Args) > 1 {
		os.Exit(command(os.Args[1:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}

const usage = `usage: api [config]

Without arguments, serves the API. ` + "`api config`" + ` (or --help) lists the
settings it reads from the environment:

`

// command handles the command line: only the settings listing.
func command(args []string, stdout, stderr io.Writer) int {
	switch args[0] {
	case "config", "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		if err := config.WriteTable(stdout, settings(&Config{}), nil); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "api: unknown argument %q\n\n%s", args[0], usage)
	_ = config.WriteTable(stderr, settings(&Config{}), nil)
	return 2
}

// Config is everything the API reads from the environment.
type Config struct {
	DatabaseURL     string
	DatabaseReadURL string
	HTTPAddr        string
	LogLevel        slog.Level
	DBMaxConns      int
	// DBPrimaryMaxConns caps the DATABASE_URL pool when DATABASE_READ_URL
	// takes the reads; 0: DBMaxConns.
	DBPrimaryMaxConns int
	CacheTTL          time.Duration
	CacheMaxEntries   int
	CacheMaxBytes     int64
	RateLimitRPS      float64
	RateLimitBurst    int
	RateMaxClients    int
	TrustedProxies    []netip.Prefix // parsed from trustedProxies
	trustedProxies    string
	CORSOrigins       []string // parsed from corsOrigins
	corsOrigins       string
	RequestTimeout    time.Duration
	DrainDelay        time.Duration
	ShutdownTimeout   time.Duration
	MaxRefreshAge     time.Duration
	LogFile           telemetry.LogFileConfig
	// CacheControl and CompressMinBytes shape successful answers for
	// browsers, CDNs and the ingress.
	CacheControl     httpapi.CacheControl
	CompressMinBytes int
}

// settings declares every variable of the API once, bound to c's fields:
// loadConfig, the start-up log, `api config` and the drift tests of the
// README and the chart all derive from it.
func settings(c *Config) []config.Setting {
	return []config.Setting{
		{Name: "DATABASE_URL", Kind: config.DatabaseURL, Required: true, Secret: true, Dest: &c.DatabaseURL,
			Usage: "Postgres URL of a SELECT-only role on the primary, reached directly"},
		{Name: "DATABASE_READ_URL", Kind: config.DatabaseURL, Secret: true, Dest: &c.DatabaseReadURL,
			Usage: "where list and item reads go (a hot standby, or a pooler); unset: DATABASE_URL"},
		{Name: "HTTP_ADDR", Kind: config.Addr, Default: ":8080", Dest: &c.HTTPAddr,
			Usage: "listen address (all routes, /metrics included)"},
		{Name: "LOG_LEVEL", Default: "info", Dest: &c.LogLevel,
			Usage: "debug (adds access logs), info, warn or error"},
		{Name: "DB_MAX_CONNS", Default: "8", Min: "1", Max: "1000", Dest: &c.DBMaxConns,
			Usage: "connection pool size (the read pool's, and the primary's unless DB_PRIMARY_MAX_CONNS)"},
		{Name: "DB_PRIMARY_MAX_CONNS", Default: "0", Min: "0", Max: "1000", Dest: &c.DBPrimaryMaxConns,
			Usage: "with DATABASE_READ_URL: the primary pool's size (version reads, health, fallback reads); 0: DB_MAX_CONNS"},
		{Name: "CACHE_TTL", Default: "5m", Min: "0s", Max: "24h", Dest: &c.CacheTTL,
			Usage: "response cache lifetime; 0 turns the cache off"},
		{Name: "CACHE_MAX_ENTRIES", Default: "10000", Min: "1", Max: "10000000", Dest: &c.CacheMaxEntries,
			Usage: "hard bound on cached responses"},
		{Name: "CACHE_MAX_BYTES", Default: "33554432", Min: "1048576", Max: "1099511627776", Dest: &c.CacheMaxBytes,
			Usage: "hard bound on the cached responses' bytes (32 MiB; 1 MiB - 1 TiB)"},
		{Name: "RATE_LIMIT_RPS", Default: "0", Min: "0", Max: "1e9", Dest: &c.RateLimitRPS,
			Usage: "requests per second allowed per client IP; 0 is off"},
		{Name: "RATE_LIMIT_BURST", Default: "20", Min: "1", Max: "1000000", Dest: &c.RateLimitBurst,
			Usage: "burst per client IP"},
		{Name: "RATE_LIMIT_MAX_CLIENTS", Default: "100000", Min: "1", Max: "10000000", Dest: &c.RateMaxClients,
			Usage: "memory bound on tracked client IPs"},
		{Name: "TRUSTED_PROXIES", Check: checkProxies, Dest: &c.trustedProxies,
			Usage: "comma-separated IPs/CIDRs whose X-Forwarded-For is believed"},
		{Name: "CORS_ALLOWED_ORIGINS", Check: checkOrigins, Dest: &c.corsOrigins,
			Usage: "comma-separated origins (scheme://host[:port]) whose pages may read the API, or *; unset: CORS off"},
		{Name: "REQUEST_TIMEOUT", Default: "5s", Min: "10ms", Max: "5m", Dest: &c.RequestTimeout,
			Usage: "limit on database work per request; exceeded answers 503"},
		{Name: "SHUTDOWN_DRAIN_DELAY", Default: "5s", Min: "0s", Max: "5m", Dest: &c.DrainDelay,
			Usage: "how long /readyz fails before the server stops accepting"},
		{Name: "SHUTDOWN_TIMEOUT", Default: "15s", Min: "1s", Max: "10m", Dest: &c.ShutdownTimeout,
			Usage: "time allowed for in-flight requests to finish"},
		{Name: "HEALTH_MAX_REFRESH_AGE", Default: "0", Min: "0s", Max: "8760h", Dest: &c.MaxRefreshAge,
			Usage: "/healthcheck is degraded when the last successful ingest is older; 0 is off"},
		{Name: "CACHE_CONTROL_MAX_AGE", Default: "0s", Min: "0s", Max: "8760h", Check: config.WholeSeconds, Dest: &c.CacheControl.MaxAge,
			Usage: "Cache-Control max-age of list and item answers (whole seconds); all four CACHE_CONTROL_* at 0: no-cache"},
		{Name: "CACHE_CONTROL_S_MAXAGE", Default: "0s", Min: "0s", Max: "8760h", Check: config.WholeSeconds, Dest: &c.CacheControl.SharedMaxAge,
			Usage: "Cache-Control s-maxage: how long shared caches (CDN, ingress) reuse an answer; 0 leaves it out"},
		{Name: "CACHE_CONTROL_STALE_WHILE_REVALIDATE", Default: "0s", Min: "0s", Max: "8760h", Check: config.WholeSeconds, Dest: &c.CacheControl.StaleWhileRevalidate,
			Usage: "Cache-Control stale-while-revalidate; 0 leaves it out"},
		{Name: "CACHE_CONTROL_STALE_IF_ERROR", Default: "0s", Min: "0s", Max: "8760h", Check: config.WholeSeconds, Dest: &c.CacheControl.StaleIfError,
			Usage: "Cache-Control stale-if-error: a cache may serve its copy while the API fails; 0 leaves it out"},
		{Name: "COMPRESSION_MIN_BYTES", Default: "1024", Min: "1", Max: "1073741824", Dest: &c.CompressMinBytes,
			Usage: "answers at least this big are also kept br-, zstd- and gzip-compressed, for clients that accept it"},
		{Name: "LOG_FILE", Dest: &c.LogFile.Path,
			Usage: "also write the JSON log to this file (for a log-shipping sidecar); unset: stdout only"},
		{Name: "LOG_FILE_MAX_BYTES", Default: "10485760", Min: "65536", Max: "1073741824", Dest: &c.LogFile.MaxBytes,
			Usage: "LOG_FILE is rotated to <file>.1 before it would pass this size"},
	}
}

// primaryPoolSize is the size of the DATABASE_URL pool. With a read URL
// the primary serves only version reads, health and fallback reads, and
// DB_PRIMARY_MAX_CONNS may cap it lower, so that a read-path outage (every
// pod falling back at once) cannot exhaust its connections.
func (c Config) primaryPoolSize() int {
	if c.DatabaseReadURL != "" && c.DBPrimaryMaxConns > 0 {
		return c.DBPrimaryMaxConns
	}
	return c.DBMaxConns
}

func loadConfig(getenv func(string) string) (Config, error) {
	var c Config
	r := config.NewReader(getenv)
	r.Load(settings(&c))
	c.TrustedProxies, _ = parseProxies(c.trustedProxies)
	c.CORSOrigins, _ = httpapi.ParseCORSOrigins(c.corsOrigins)
	return c, r.Err()
}

// parseProxies parses TRUSTED_PROXIES, skipping empty items.
func parseProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parsePrefix(item)
		if err != nil {
			return out, fmt.Errorf("%q is not an IP address or CIDR", item)
		}
		out = append(out, p)
	}
	return out, nil
}

func checkProxies(list string) error {
	_, err := parseProxies(list)
	return err
}

func checkOrigins(list string) error {
	_, err := httpapi.ParseCORSOrigins(list)
	return err
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

// LogValue logs the configuration with the database passwords masked.
func (c Config) LogValue() slog.Value { return config.LogValue(settings(&c)) }

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
		MaxConns: cfg.primaryPoolSize(), ReadOnly: true, AppName: "rickmorty-api", TracerProvider: tp,
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

		CacheControl:       cfg.CacheControl,
		CompressMinBytes:   cfg.CompressMinBytes,
		CORSAllowedOrigins: cfg.CORSOrigins,
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
