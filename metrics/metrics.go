// Package metrics holds the node's Prometheus metrics (SPEC §8). Label sets
// are bounded: property names, origin URLs, certificate names and fixed
// results; never paths or clients.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the node's registry and its collectors.
type Metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	requestTime   *prometheus.HistogramVec
	originTime    *prometheus.HistogramVec
	originErrors  *prometheus.CounterVec
	originHealthy *prometheus.GaugeVec
	handshakes    *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	renewals      *prometheus.CounterVec
	orders        *prometheus.CounterVec
	webhooks      *prometheus.CounterVec
	originConns   *prometheus.CounterVec
	rejected      prometheus.Gauge
	storeUp       prometheus.Gauge
	rejects       rejects
	// The handshake counters, resolved once: Handshake runs on every TLS
	// handshake.
	handshakeOK, handshakeUnknown prometheus.Counter
	protocols                     protocols
}

// CertificateLister reports every served certificate's expiry, for the
// not-after gauge, read at scrape time so it is never stale.
type CertificateLister func(fn func(name string, notAfter time.Time))

// New registers the node's metrics; certs may be nil.
func New(certs CertificateLister) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.protocols = newProtocols(f)
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_http_requests_total",
		Help: "Requests answered, by property and status class."}, []string{"property", "code"})
	m.requestTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "edge_http_request_duration_seconds",
		Help: "Time to answer a request, by property.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, []string{"property"})
	m.originTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "edge_origin_request_duration_seconds",
		Help: "Time to an origin's response headers, by property.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, []string{"property"})
	m.originErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_origin_errors_total",
		Help: "Failed origin requests (connection, timeout, bad response), by property and origin."}, []string{"property", "origin"})
	m.originHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "edge_origin_healthy",
		Help: "1 when the origin is healthy, 0 while rested or failing its health check."}, []string{"property", "origin"})
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_tls_handshakes_total",
		Help: "Certificate choices at TLS handshakes, by result."}, []string{"result"})
	m.handshakeOK, m.handshakeUnknown = m.handshakes.WithLabelValues("ok"), m.handshakes.WithLabelValues("unrecognized_name")
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_property_reloads_total",
		Help: "Property table reloads, by result (ok, rejected: some files refused, error: the directory unreadable)."}, []string{"result"})
	m.renewals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_renewal_attempts_total",
		Help: "Certificate renewal attempts, by result."}, []string{"result"})
	m.orders = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_acme_orders_total",
		Help: "ACME orders placed, by result."}, []string{"result"})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_webhook_deliveries_total",
		Help: "Webhook delivery attempts, by result."}, []string{"result"})
	m.originConns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_origin_connections_opened_total",
		Help: "Connections opened to an origin on the HTTP/1.1 path; requests per connection is keep-alive reuse."}, []string{"property", "origin"})
	m.rejected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "edge_property_files_rejected",
		Help: "Property files the serving table refused (their last good version serves, if any)."})
	m.storeUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "edge_store_up",
		Help: "1 while the store (bbolt or etcd) answers, 0 while the node serves from memory."})
	m.storeUp.Set(1)
	for _, c := range []prometheus.Collector{m.storeUp, m.requests, m.requestTime, m.originTime, m.originErrors, m.originHealthy,
		m.handshakes, m.reloads, m.renewals, m.orders, m.webhooks, m.originConns, m.rejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	m.rejects = newRejects(m.reg)
	if certs != nil {
		f(notAfterCollector{certs})
	}
	return m
}

// Registerer is where other parts of the node (the cache) register their
// collectors.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func codeClass(status int) string {
	if i := status/100 - 1; i >= 0 && i < len(classes) {
		return classes[i]
	}
	return strconv.Itoa(status)
}

func propertyLabel(p string) string {
	if p == "" {
		return "none"
	}
	return p
}

// Request implements proxy.Observer.
func (m *Metrics) Request(property string, status int, elapsed time.Duration) {
	property = propertyLabel(property)
	m.requests.WithLabelValues(property, codeClass(status)).Inc()
	m.requestTime.WithLabelValues(property).Observe(elapsed.Seconds())
}

// OriginRequest implements proxy.Observer.
func (m *Metrics) OriginRequest(property, origin string, err error, elapsed time.Duration) {
	if err != nil {
		m.originErrors.WithLabelValues(property, origin).Inc()
		return
	}
	m.originTime.WithLabelValues(property).Observe(elapsed.Seconds())
}

// OriginHealth implements proxy.Observer.
func (m *Metrics) OriginHealth(property, origin string, healthy bool) {
	v := 0.0
	if healthy {
		v = 1
	}
	m.originHealthy.WithLabelValues(property, origin).Set(v)
}

// Handshake counts one certificate choice ("ok", "unrecognized_name").
func (m *Metrics) Handshake(result string) {
	switch result {
	case "ok":
		m.handshakeOK.Inc()
	case "unrecognized_name":
		m.handshakeUnknown.Inc()
	default:
		m.handshakes.WithLabelValues(result).Inc()
	}
}

// Reload counts one property reload.
func (m *Metrics) Reload(result string) { m.reloads.WithLabelValues(result).Inc() }

// Rejected sets how many property files the serving table refused.
func (m *Metrics) Rejected(files int) { m.rejected.Set(float64(files)) }

// Renewal counts one renewal attempt.
func (m *Metrics) Renewal(result string) { m.renewals.WithLabelValues(result).Inc() }

// Order counts one ACME order.
func (m *Metrics) Order(result string) { m.orders.WithLabelValues(result).Inc() }

// WebhookDelivery counts one webhook delivery attempt.
func (m *Metrics) WebhookDelivery(result string) { m.webhooks.WithLabelValues(result).Inc() }

var notAfterDesc = prometheus.NewDesc("edge_certificate_not_after_timestamp_seconds",
	"Expiry of each served certificate's current version, as a Unix time.", []string{"certificate"}, nil)

type notAfterCollector struct{ list CertificateLister }

func (c notAfterCollector) Describe(ch chan<- *prometheus.Desc) { ch <- notAfterDesc }

func (c notAfterCollector) Collect(ch chan<- prometheus.Metric) {
	c.list(func(name string, notAfter time.Time) {
		ch <- prometheus.MustNewConstMetric(notAfterDesc, prometheus.GaugeValue, float64(notAfter.Unix()), name)
	})
}

// StoreUp records whether the store answers.
func (m *Metrics) StoreUp(up bool) {
	if up {
		m.storeUp.Set(1)
	} else {
		m.storeUp.Set(0)
	}
}

// OriginConnOpened implements proxy.ConnObserver.
func (m *Metrics) OriginConnOpened(property, origin string) {
	m.originConns.WithLabelValues(property, origin).Inc()
}

// SiteMetrics are one property's request metrics with their labels
// resolved once per routing update (proxy.PropertyObserver), so a request
// costs no label lookup.
type SiteMetrics struct {
	m        *Metrics
	property string
	label    string
	codes    [6]prometheus.Counter // by status class: 1xx … 5xx
	time     prometheus.Observer
	origin   prometheus.Observer
}

// ForProperty implements proxy.PropertyObserver.
func (m *Metrics) ForProperty(property string) *SiteMetrics {
	label := propertyLabel(property)
	s := &SiteMetrics{m: m, property: property, label: label, time: m.requestTime.WithLabelValues(label),
		origin: m.originTime.WithLabelValues(label)}
	for i := 1; i < len(s.codes); i++ {
		s.codes[i] = m.requests.WithLabelValues(label, codeClass(i*100))
	}
	return s
}

// Request implements proxy.SiteObserver.
func (s *SiteMetrics) Request(status int, elapsed time.Duration) {
	if i := status / 100; i >= 1 && i < len(s.codes) {
		s.codes[i].Inc()
	} else {
		s.m.requests.WithLabelValues(s.label, codeClass(status)).Inc()
	}
	s.time.Observe(elapsed.Seconds())
}

// OriginRequest implements proxy.SiteObserver.
func (s *SiteMetrics) OriginRequest(origin string, err error, elapsed time.Duration) {
	if err != nil {
		s.m.originErrors.WithLabelValues(s.property, origin).Inc()
		return
	}
	s.origin.Observe(elapsed.Seconds())
}

// EventQueue exports the event log's queue: events waiting for the store
// and events refused because the queue was full (issue 13: the store may be
// down for a while).
func (m *Metrics) EventQueue(pending func() (waiting int, dropped uint64)) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edge_events_waiting",
		Help: "Events queued in memory, waiting for the store."}, func() float64 { w, _ := pending(); return float64(w) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edge_events_dropped_total",
		Help: "Events refused because the queue was full while the store did not answer (they are in the log)."},
		func() float64 { _, d := pending(); return float64(d) }))
}
