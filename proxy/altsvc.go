package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/edge-cdn/edge/property"
)

// AltSvcMaxAge is the ma= of the Alt-Svc header that offers HTTP/3: how
// long a client may remember it. A property that turns HTTP/3 off sends
// "Alt-Svc: clear" for as long, so that every client that remembered the
// offer hears it withdrawn before it would have expired.
const AltSvcMaxAge = 24 * time.Hour

// altSvc decides the Alt-Svc header of a property's HTTPS answers at a
// routing update: the HTTP/3 offer when the node listens for QUIC
// (Config.HTTP3Port) and the property has it on; "clear" until until when
// the property turned it off (now, or at an earlier update still within
// AltSvcMaxAge); nil otherwise. s.mu is held.
func (s *Server) altSvc(p *property.Property, old *property.Table, now time.Time) (v []string, until time.Time) {
	if s.cfg.HTTP3Port <= 0 || p.TLS.Certificate == "" {
		return nil, time.Time{}
	}
	if p.HTTP3 {
		delete(s.h3Off, p.Name)
		return s.altSvcOffer, time.Time{}
	}
	since, ok := s.h3Off[p.Name]
	if !ok {
		if q := old.ByName(p.Name); q == nil || !q.HTTP3 || q.TLS.Certificate == "" {
			return nil, time.Time{} // never offered by this process
		}
		since = now
		s.h3Off[p.Name] = since
	}
	until = since.Add(AltSvcMaxAge)
	if !now.Before(until) {
		delete(s.h3Off, p.Name)
		return nil, time.Time{}
	}
	return altSvcClear, until
}

// altSvcClear withdraws an earlier offer (RFC 7838 §3). Shared by every
// response: never written in place (len == cap, an append copies).
var altSvcClear = []string{"clear"}[:1:1]

func altSvcOffer(port int) []string {
	return []string{`h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.Itoa(int(AltSvcMaxAge/time.Second))}[:1:1]
}

// setAltSvc adds the site's Alt-Svc to an HTTPS answer. It is added when
// serving, after the cache (which stores what the origin sent, without its
// own Alt-Svc: copyResponseHeader drops it).
func (st *site) setAltSvc(h http.Header, now time.Time) {
	if st.altSvc != nil && (st.altSvcUntil.IsZero() || now.Before(st.altSvcUntil)) {
		h["Alt-Svc"] = st.altSvc
	}
}
