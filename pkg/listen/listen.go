// Package listen keeps a LISTEN open on a dedicated Postgres connection and
// reports every (re)connect and notification, reconnecting by itself.
package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

// Config describes what to listen to and what to do about it.
type Config struct {
	// DatabaseURL is connected to directly, not through a pool: a LISTEN
	// belongs to one session, which a pool would hand to other users.
	DatabaseURL string
	Channel     string
	// AppName shows in pg_stat_activity, so operators (and tests) can find
	// the listener's backend.
	AppName string
	// OnConnect runs after every successful LISTEN, before waiting:
	// notifications sent while disconnected are lost, so the caller must
	// assume anything changed.
	OnConnect func()
	// OnNotify runs for each notification with its payload.
	OnNotify func(payload string)
	// MinBackoff and MaxBackoff bound the wait between connection attempts.
	MinBackoff, MaxBackoff time.Duration
	// KeepAlive is how long to wait for a notification before pinging, so
	// a silently dead connection is noticed.
	KeepAlive time.Duration
	Logger    *slog.Logger
}

// Listener is a running LISTEN loop.
type Listener struct {
	cfg        Config
	connected  atomic.Bool
	reconnects prometheus.Counter
	gauge      prometheus.Gauge
}

// New returns a Listener and registers its metrics with reg (nil skips).
func New(cfg Config, reg prometheus.Registerer) *Listener {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnConnect == nil {
		cfg.OnConnect = func() {}
	}
	if cfg.OnNotify == nil {
		cfg.OnNotify = func(string) {}
	}
	l := &Listener{
		cfg: cfg,
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: telemetry.Namespace, Subsystem: "listener", Name: "reconnects_total",
			Help: "Times the NOTIFY listener connected again after losing its connection.",
		}),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: telemetry.Namespace, Subsystem: "listener", Name: "connected",
			Help: "1 while the NOTIFY listener holds a LISTEN on the database, else 0.",
		}),
	}
	if reg != nil {
		reg.MustRegister(l.reconnects, l.gauge)
	}
	return l
}

// Connected reports whether a LISTEN is currently in place.
func (l *Listener) Connected() bool { return l.connected.Load() }

// Run listens until ctx ends, reconnecting with exponential backoff after
// any failure. It returns nil when ctx ends.
func (l *Listener) Run(ctx context.Context) error {
	backoff := l.cfg.MinBackoff
	everConnected := false
	for {
		err := l.session(ctx, func() {
			if everConnected {
				l.reconnects.Inc()
			}
			everConnected = true
			backoff = l.cfg.MinBackoff
		})
		l.setConnected(false)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // ctx ended: Run's contract is nil on cancellation; the session's error is only its consequence
		}
		l.cfg.Logger.Warn("notify listener lost its connection; reconnecting", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, l.cfg.MaxBackoff)
	}
}

// session connects, LISTENs and waits for notifications until the
// connection fails or ctx ends.
func (l *Listener) session(ctx context.Context, connected func()) error {
	cc, err := pgx.ParseConfig(l.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	if l.cfg.AppName != "" {
		cc.RuntimeParams["application_name"] = l.cfg.AppName
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cc)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx) // the connection is being abandoned either way
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.cfg.Channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	connected()
	l.setConnected(true)
	l.cfg.Logger.Info("notify listener connected", "channel", l.cfg.Channel)
	// After LISTEN, so that a change committed from here on is either in
	// what the caller reloads or arrives as a notification.
	l.cfg.OnConnect()

	for {
		wctx, cancel := context.WithTimeout(ctx, l.cfg.KeepAlive)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			l.cfg.OnNotify(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet for a while: prove the connection still works.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("keepalive: %w", err)
			}
		default:
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

func (l *Listener) setConnected(ok bool) {
	l.connected.Store(ok)
	if ok {
		l.gauge.Set(1)
	} else {
		l.gauge.Set(0)
	}
}
