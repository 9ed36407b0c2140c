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

// noteHTTP3 records, at a routing update, when a property that changed
// from q (nil: new) to p turned HTTP/3 off: it then sends "clear" for
// AltSvcMaxAge from that update on, whenever its site is built. s.mu is
// held.
func (s *Server) noteHTTP3(p, q *property.Property, now time.Time) {
	if p.TLS.Certificate == "" {
		return
	}
	if p.HTTP3 {
		delete(s.h3Off, p.Name)
		return
	}
	if _, ok := s.h3Off[p.Name]; !ok && q != nil && q.HTTP3 && q.TLS.Certificate != "" {
		s.h3Off[p.Name] = now
	}
}

// altSvc decides the Alt-Svc header of a property's HTTPS answers when
// its site is built: the HTTP/3 offer when the node listens for QUIC
// (Config.HTTP3Port) and the property has it on; "clear" until until when
// the property turned it off within AltSvcMaxAge (noteHTTP3); nil
// otherwise. s.mu is held.
func (s *Server) altSvc(p *property.Property, now time.Time) (v []string, until time.Time) {
	if s.cfg.HTTP3Port <= 0 || p.TLS.Certificate == "" {
		return nil, time.Time{}
	}
	if p.HTTP3 {
		return s.altSvcOffer, time.Time{}
	}
	since, ok := s.h3Off[p.Name]
	if !ok {
		return nil, time.Time{} // never offered by this process
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
