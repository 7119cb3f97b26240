package controlplane

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the control plane's Prometheus metrics, on a registry of its
// own (so several servers can live in one process, as in tests).
type metrics struct {
	registry           *prometheus.Registry
	requests           *prometheus.CounterVec
	duration           *prometheus.HistogramVec
	migrationsCreated  prometheus.Counter
	migrationsFinished *prometheus.CounterVec
	events             *prometheus.CounterVec
	agentRegistrations prometheus.Counter
	webhooks           *prometheus.CounterVec
	emails             *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livemigrate_http_requests_total", Help: "HTTP requests by route and status code."},
			[]string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "livemigrate_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.DefBuckets}, []string{"route"}),
		migrationsCreated:  prometheus.NewCounter(prometheus.CounterOpts{Name: "livemigrate_migrations_created_total", Help: "Live migrations created."}),
		migrationsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livemigrate_migrations_finished_total", Help: "Live migrations that ended, by status."}, []string{"status"}),
		events:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livemigrate_migration_events_total", Help: "Migration events by type."}, []string{"type"}),
		agentRegistrations: prometheus.NewCounter(prometheus.CounterOpts{Name: "livemigrate_agent_registrations_total", Help: "Agent registrations."}),
		webhooks:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livemigrate_webhook_deliveries_total", Help: "Webhook delivery attempts by result."}, []string{"result"}),
		emails:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "livemigrate_email_deliveries_total", Help: "Email notification attempts by result."}, []string{"result"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.migrationsCreated, m.migrationsFinished, m.events, m.agentRegistrations, m.webhooks, m.emails,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &stateCollector{s: s})
	return m
}

// stateCollector reports gauges read from the store at scrape time.
type stateCollector struct{ s *Server }

var (
	migrationsDesc = prometheus.NewDesc("livemigrate_migrations", "Live migrations by status.", []string{"status"}, nil)
	agentsDesc     = prometheus.NewDesc("livemigrate_agents", "Registered agents by state (live, lost).", []string{"state"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- migrationsDesc
	ch <- agentsDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := map[string]float64{"NEW": 0, "WORKING": 0, "FAILED": 0, "COMPLETE": 0, "EXPIRED": 0}
	// A store error leaves the gauges at 0: a scrape never fails.
	if byStatus, err := c.s.store.MigrationCounts(ctx); err == nil {
		for st, n := range byStatus {
			counts[st] = float64(n)
		}
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(migrationsDesc, prometheus.GaugeValue, n, st)
	}
	live, lost, _ := c.s.store.AgentCounts(ctx)
	ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(live), "live")
	ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(lost), "lost")
}
