package httpapi

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rickmorty/rickmorty/pkg/telemetry"
)

// The ingester's NOTIFY says that the data changed. Its payload is a hint,
// never trusted as a number: any role may NOTIFY, and a huge one would make
// everything below it stale for good. On each notification and each
// listener (re)connect the pod reads the version the database holds and
// serves exactly that one, up (an ingest) or down (a restore, a failover to
// an older copy, a migrate down/up).

// OnNotify handles a data-change notification.
func (s *Server) OnNotify(payload string) {
	if _, err := strconv.ParseInt(payload, 10, 64); err != nil {
		s.notifications.WithLabelValues("invalid").Inc()
		s.log.Warn("ignored a data-change notification with an unreadable payload", "payload", truncate(payload, 64))
		return
	}
	s.notifications.WithLabelValues("valid").Inc()
	s.followDatabase("notification")
}

// OnConnect handles a listener (re)connect: notifications sent while it was
// away are lost, so the pod asks the database where it stands.
func (s *Server) OnConnect() { s.followDatabase("listener connected") }

// followDatabase makes the cache serve the database's current version. If
// the version cannot be read, nothing cached can be vouched for: the cache
// is flushed and fills learn the version from what they read.
func (s *Server) followDatabase(why string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	changed, version, err := s.cache.Follow(ctx, s.store.DataVersion)
	switch {
	case err != nil:
		s.cache.Flush()
		s.log.Warn("could not read the data version; cache flushed", "reason", why, "err", err)
	case changed:
		s.log.Info("data version changed; older cached responses dropped", "reason", why, "data_version", version)
	default:
		s.log.Debug("data version unchanged", "reason", why, "data_version", version)
	}
}

func newNotificationCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "listener", Name: "notifications_total",
		Help: "Data-change notifications received, by payload: valid (a version number) or invalid (ignored).",
	}, []string{"payload"})
	c.WithLabelValues("valid")
	c.WithLabelValues("invalid")
	reg.MustRegister(c)
	return c
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
