package metrics

import "github.com/prometheus/client_golang/prometheus"

// rejects counts what the proxy refuses or strips before routing: request
// fields dropped for an underscore in their name, and answers that Go's
// HTTP server writes itself (malformed requests, oversized heads, HTTP/2
// protocol errors), which never reach the proxy's handler.
type rejects struct {
	dropped *prometheus.CounterVec
	server  *prometheus.CounterVec
}

func newRejects(reg *prometheus.Registry) rejects {
	r := rejects{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_http_dropped_headers_total",
			Help: "Request header fields dropped before forwarding because their name holds an underscore, by property."},
			[]string{"property"}),
		server: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_http_server_rejected_total",
			Help: "Requests answered or cut by the HTTP server itself (Edge's HTTP/1.x front or Go's), before the proxy saw them, by protocol and reason " +
				"(an HTTP/1 status such as 400 or 431; \"unparsed\" for a TLS connection whose request was refused or abandoned, with listen.http1_server: go; " +
				"an HTTP/2 error type)."},
			[]string{"proto", "reason"}),
	}
	reg.MustRegister(r.dropped, r.server)
	return r
}

// DroppedHeader implements proxy.HeaderObserver.
func (m *Metrics) DroppedHeader(property string) {
	m.rejects.dropped.WithLabelValues(propertyLabel(property)).Inc()
}

// ServerRejected counts one answer Go's HTTP server wrote (or one request
// it cut) without calling the proxy: proto is "http/1.1" or "h2", reason a
// status code or an error type from a fixed set.
func (m *Metrics) ServerRejected(proto, reason string) {
	m.rejects.server.WithLabelValues(proto, reason).Inc()
}
