package httpapi

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/internal/buildinfo"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// MaxTenantLabels bounds the tenant label: the first this many tenants seen
// get their own series, every other tenant is counted as "other", so the
// number of series stays bounded however many tenants there are.
const MaxTenantLabels = 100

// Metrics are the server's Prometheus metrics.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	denials  *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	mu      sync.Mutex
	tenants map[string]bool

	// The series each request counts, by their labels, so that a request
	// finds them without WithLabelValues' hashing and locking. There are
	// as many as the labels allow (the tenant label is bounded), and
	// series are never deleted, so a child kept here is the one
	// WithLabelValues would return.
	counted sync.Map // requestLabels → *requestSeries
}

// requestLabels are the labels of the series one request counts.
type requestLabels struct {
	tenant, tier, route string
	status              int
}

// requestSeries are the series of one set of requestLabels.
type requestSeries struct {
	requests prometheus.Counter
	denials  prometheus.Counter // nil unless the status is a denial
	latency  prometheus.Observer
}

// series returns the series of l, made on first use.
func (m *Metrics) series(l requestLabels) *requestSeries {
	if s, ok := m.counted.Load(l); ok {
		return s.(*requestSeries)
	}
	status := strconv.Itoa(l.status)
	s := &requestSeries{requests: m.requests.WithLabelValues(l.tenant, l.tier, l.route, status[:1]+"xx"),
		latency: m.latency.WithLabelValues(l.tier, l.route)}
	if l.status == 401 || l.status == 403 || l.status == 404 {
		s.denials = m.denials.WithLabelValues(l.tenant, l.tier, status)
	}
	got, _ := m.counted.LoadOrStore(l, s) //bulkhead:ok metric series by label set, bounded with the tenant label by MaxTenantLabels, holds no tenant data
	return got.(*requestSeries)
}

// NewMetrics makes the metrics and their registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), tenants: map[string]bool{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "bulkhead", Name: "requests_total",
		Help: "HTTP requests by tenant (bounded), tier, route and status class."}, []string{"tenant", "tier", "route", "status"})
	m.denials = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "bulkhead", Name: "denials_total",
		Help: "Requests answered 401, 403 or 404, by tenant (bounded), tier and status."}, []string{"tenant", "tier", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "bulkhead", Name: "request_duration_seconds",
		Help: "Request latency by tier and route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"tier", "route"})
	m.reg.MustRegister(m.requests, m.denials, m.latency, buildInfoGauge(),
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// buildInfoGauge is bulkhead_build_info: always 1, labelled with the
// build and the schema it migrates to, so that a dashboard shows which
// servers run which bulkhead (during a rolling upgrade, say).
func buildInfoGauge() prometheus.Collector {
	i := buildinfo.Read()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "bulkhead", Name: "build_info",
		Help: "Always 1; the labels say which build of bulkhead runs and which schema version it migrates to.",
		ConstLabels: prometheus.Labels{
			"version": i.Version, "revision": i.ShortRevision(), "goversion": i.Go,
			"schema_version": strconv.FormatInt(postgres.SchemaVersion(), 10),
		}}, func() float64 { return 1 })
}

// Handler serves the metrics in Prometheus format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) tenantLabel(slug tenant.Slug) string {
	if slug == "" {
		return "none"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tenants[string(slug)] {
		return string(slug)
	}
	if len(m.tenants) < MaxTenantLabels {
		m.tenants[string(slug)] = true //bulkhead:ok metric label set, bounded by MaxTenantLabels, holds no tenant data
		return string(slug)
	}
	return "other"
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// WriteString lets io.WriteString reach the ResponseWriter's own
// WriteString (net/http's copies into its buffer without converting).
func (s *statusRecorder) WriteString(str string) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return io.WriteString(s.ResponseWriter, str)
}

// principalSlot lets the innermost handler report who the caller was to
// the metrics middleware outside it.
type principalSlot struct {
	p     tenant.Principal
	route string
}

type principalSlotKey struct{}

func (m *Metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		slot := &principalSlot{}
		next.ServeHTTP(rec, r.WithContext(contextWith(r, slot)))
		route := slot.route
		if route == "" {
			route = "unmatched"
		}
		tier := "none"
		if slot.p.Platform {
			tier = "platform"
		}
		if t := slot.p.TenantID; t != "" {
			tier = "tenant"
		}
		s := m.series(requestLabels{tenant: m.tenantLabel(slot.p.Tenant), tier: tier, route: route, status: rec.status})
		s.requests.Inc()
		if s.denials != nil {
			s.denials.Inc()
		}
		s.latency.Observe(time.Since(start).Seconds())
	})
}

func contextWith(r *http.Request, slot *principalSlot) context.Context {
	return context.WithValue(r.Context(), principalSlotKey{}, slot)
}

// notePrincipal tells the metrics middleware who the caller is.
func notePrincipal(r *http.Request, p tenant.Principal) {
	if slot, ok := r.Context().Value(principalSlotKey{}).(*principalSlot); ok {
		slot.p = p
	}
}

// noteRoute tells the metrics middleware which route matched: a bounded
// label, unlike the path.
func noteRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slot, ok := r.Context().Value(principalSlotKey{}).(*principalSlot); ok {
			slot.route = r.Pattern
		}
		next.ServeHTTP(w, r)
	})
}

// WatchAlarms exports the number of firing alarms per rule as
// bulkhead_alarms_firing.
func (m *Metrics) WatchAlarms(a *audit.Alarms) {
	m.reg.MustRegister(alarmCollector{a})
}

// HashingProcess is what the metrics read of a password hashing process
// (hashproc.Process): its pid (0 when none is running) and how many times
// it has been started.
type HashingProcess interface {
	Pid() int
	Starts() uint64
}

// WatchHashing exports whether the password hashing process is running,
// as bulkhead_password_hashing_up, and how many times it has been
// started, as bulkhead_password_hashing_starts_total: more than one start
// means it ended and was restarted.
func (m *Metrics) WatchHashing(p HashingProcess) {
	m.reg.MustRegister(hashingCollector{p})
}

var (
	hashingUpDesc     = prometheus.NewDesc("bulkhead_password_hashing_up", "1 when the password hashing process is running, 0 when it is not (ended, being restarted).", nil, nil)
	hashingStartsDesc = prometheus.NewDesc("bulkhead_password_hashing_starts_total", "Starts of the password hashing process, the first included.", nil, nil)
)

type hashingCollector struct{ p HashingProcess }

func (c hashingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hashingUpDesc
	ch <- hashingStartsDesc
}

func (c hashingCollector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.p.Pid() != 0 {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(hashingUpDesc, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(hashingStartsDesc, prometheus.CounterValue, float64(c.p.Starts()))
}

var alarmsDesc = prometheus.NewDesc("bulkhead_alarms_firing", "Alarms firing now, by rule.", []string{"rule"}, nil)

type alarmCollector struct{ a *audit.Alarms }

func (c alarmCollector) Describe(ch chan<- *prometheus.Desc) { ch <- alarmsDesc }

func (c alarmCollector) Collect(ch chan<- prometheus.Metric) {
	n := map[string]int{"denial_burst": 0, "cross_tenant_probe": 0, "row_security_violation": 0, "invalid_context": 0}
	for _, al := range c.a.State() {
		if al.Firing {
			n[al.Rule]++
		}
	}
	for rule, v := range n {
		ch <- prometheus.MustNewConstMetric(alarmsDesc, prometheus.GaugeValue, float64(v), rule)
	}
}
