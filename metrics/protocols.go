package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// protocols counts the proxy's requests by protocol: one node-wide
// series per protocol (never per property), resolved once, so counting
// costs an atomic add.
type protocols struct {
	h10, h11, h2, h3 prometheus.Counter
}

func newProtocols(reg func(prometheus.Collector)) protocols {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edge_http_requests_by_protocol_total",
		Help: "Requests received on the HTTP and HTTPS ports and over QUIC, by protocol."}, []string{"proto"})
	reg(v)
	return protocols{h10: v.WithLabelValues("HTTP/1.0"), h11: v.WithLabelValues("HTTP/1.1"),
		h2: v.WithLabelValues("HTTP/2.0"), h3: v.WithLabelValues("HTTP/3.0")}
}

// ByProtocol wraps a proxy handler so that each request is counted by
// its protocol before it is handled.
func (m *Metrics) ByProtocol(h http.Handler) http.Handler {
	return byProtocol{h, &m.protocols}
}

type byProtocol struct {
	h http.Handler
	p *protocols
}

func (b byProtocol) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.count(r)
	b.h.ServeHTTP(w, r)
}

// ServeInline passes an HTTP/2 server's offer to answer r on the
// connection's goroutine (internal/h2srv's InlineHandler) on to the
// handler, and counts r when it was answered: declined, it comes back
// through ServeHTTP.
func (b byProtocol) ServeInline(w http.ResponseWriter, r *http.Request) bool {
	ih, ok := b.h.(interface {
		ServeInline(http.ResponseWriter, *http.Request) bool
	})
	if !ok || !ih.ServeInline(w, r) {
		return false
	}
	b.count(r)
	return true
}

func (b byProtocol) count(r *http.Request) {
	p := b.p
	switch {
	case r.ProtoMajor == 3:
		p.h3.Inc()
	case r.ProtoMajor == 2:
		p.h2.Inc()
	case r.ProtoMinor == 0:
		p.h10.Inc()
	default:
		p.h11.Inc()
	}
}
