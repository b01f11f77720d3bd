package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/rickmorty/rickmorty/pkg/postgres"
)

// Metrics describe ingests.
type Metrics struct {
	Runs        *prometheus.CounterVec   // by result: success, failed, refused, locked
	Duration    *prometheus.HistogramVec // by result
	Rows        *prometheus.CounterVec   // by operation: inserted, updated, deleted
	Stored      prometheus.Gauge
	LastSuccess prometheus.Gauge
	DataVersion prometheus.Gauge
	// LockedSince is when runs began finding the lock taken (0: the last
	// run took it); LockHolder names who holds it meanwhile.
	LockedSince prometheus.Gauge
	LockHolder  *prometheus.GaugeVec
	Rejected    *prometheus.CounterVec // by reason (postgres.Rejections)
}

// NewMetrics creates the ingest metrics and registers them on reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rickmorty", Subsystem: "ingest", Name: "runs_total",
			Help: "Ingest runs by result: success, failed, refused (by the mass-delete guard), or locked (skipped because another ingest held the lock).",
		}, []string{"result"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "rickmorty", Subsystem: "ingest", Name: "duration_seconds",
			Help:    "Wall time of ingest runs that took the lock, by result.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"result"}),
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rickmorty", Subsystem: "ingest", Name: "rows_total",
			Help: "Character rows changed by successful ingests, by operation: inserted, updated, deleted.",
		}, []string{"operation"}),
		Stored: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "rickmorty", Name: "characters_stored",
			Help: "Characters in the curated table after the last successful ingest.",
		}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "rickmorty", Subsystem: "ingest", Name: "last_success_timestamp_seconds",
			Help: "Unix time at which the last successful ingest finished (from the database at start).",
		}),
		DataVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "rickmorty", Subsystem: "ingest", Name: "data_version",
			Help: "Data version committed by the last successful ingest of this process.",
		}),
		LockedSince: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "rickmorty", Subsystem: "ingest", Name: "locked_out_since_timestamp_seconds",
			Help: "Unix time since which every run found the ingest lock held by another session; 0 once a run takes it.",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rickmorty", Subsystem: "ingest", Name: "rejected_total",
			Help: "Admitted characters skipped because the store cannot hold them, by reason: nul_byte, name_too_long, field_too_long, too_large.",
		}, []string{"reason"}),
		LockHolder: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "rickmorty", Subsystem: "ingest", Name: "lock_holder_info",
			Help: "1 for the session that held the ingest lock when the last run found it taken (role, application_name); none once a run takes it.",
		}, []string{"role", "application_name"}),
	}
	// Every result is exported from the start, at 0, so that increase()
	// sees the first of each and queries never find the series missing.
	results := []string{postgres.ResultSuccess, postgres.ResultFailed, postgres.ResultRefused}
	for _, r := range append(results, resultLocked) {
		m.Runs.WithLabelValues(r)
	}
	for _, r := range results {
		m.Duration.WithLabelValues(r)
	}
	for _, reason := range postgres.Rejections {
		m.Rejected.WithLabelValues(reason)
	}
	for _, op := range []string{"inserted", "updated", "deleted"} {
		m.Rows.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(m.Runs, m.Duration, m.Rows, m.Stored, m.LastSuccess, m.DataVersion, m.LockedSince, m.LockHolder, m.Rejected)
	}
	return m
}

// RegisterScheduleInterval exports rickmorty_ingest_schedule_interval_seconds,
// the ScheduleInterval of schedule at each scrape, on reg. Only `ingester
// serve` registers it: the RickmortyDataStale alert scales its threshold
// with it (3 intervals).
func RegisterScheduleInterval(reg prometheus.Registerer, schedule cron.Schedule) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "rickmorty", Subsystem: "ingest", Name: "schedule_interval_seconds",
		Help: "Seconds between the next two scheduled ingests (INGEST_SCHEDULE); exported by `ingester serve` only.",
	}, func() float64 { return ScheduleInterval(schedule, time.Now()).Seconds() }))
}
