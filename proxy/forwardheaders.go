package proxy

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/edge-cdn/edge/property"
)

// hopByHop reports whether a (canonical) header name is hop-by-hop: it
// describes one connection and is never forwarded (RFC 9110 7.6.1).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// connectionListed reports whether the Connection header values conn name
// k, which is then hop-by-hop too. No allocation: the lists are short.
func connectionListed(conn []string, k string) bool {
	for _, v := range conn {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), k) {
				return true
			}
		}
	}
	return false
}

func hasToken(vv []string, token string) bool {
	return connectionListed(vv, token)
}

// upgradeType returns the protocol a request or response asks to switch
// to ("websocket"), or "".
func upgradeType(h http.Header) string {
	if !hasToken(h["Connection"], "Upgrade") {
		return ""
	}
	if v := h["Upgrade"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func removed(rules *property.HeaderRules, k string) bool {
	for _, n := range rules.Remove {
		if n == k {
			return true
		}
	}
	return false
}

// headerSink receives the headers of a message being built: written
// straight to an origin connection, or into an http.Header.
type headerSink interface {
	add(k, v string)
	// addJoined adds one field whose value is vv joined by ", " then tail.
	addJoined(k string, vv []string, tail string)
}

// outHeaders sends the headers of the request to forward: the client's
// minus hop-by-hop, Connection-listed and edge-owned ones, then the
// property's set rules, the upgrade if any, X-Forwarded-*, Via and the
// request id. Body framing (Content-Length, Transfer-Encoding) and Host
// are the caller's. One pass, no map built.
func (st *site) outHeaders(r *http.Request, req *request, upgrade string, sink headerSink) {
	rules := &st.prop.Headers.Request
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		switch k {
		case "X-Request-Id", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded",
			"Via", "Content-Length", "Host", "Http2-Settings":
			continue
		case "Te":
			// "trailers" is end to end (gRPC needs it); the rest is not.
			if hasToken(vv, "trailers") && !rules.Rules(k) {
				sink.add("Te", "trailers")
			}
			continue
		case "Expect":
			if r.ContentLength == 0 {
				continue // nothing to wait for
			}
		}
		if hopByHop(k) || (len(conn) > 0 && connectionListed(conn, k)) || rules.Rules(k) || st.overridden(k) {
			continue
		}
		for _, v := range vv {
			sink.add(k, v)
		}
	}
	for _, kv := range rules.Set {
		if !removed(rules, kv.Name) {
			sink.add(kv.Name, kv.Value)
		}
	}
	if upgrade != "" {
		sink.add("Connection", "Upgrade")
		sink.add("Upgrade", upgrade)
	}
	// Append to the client's X-Forwarded-For, as most proxies do; origins
	// that trust only the edge read the last entry.
	if !rules.Rules("X-Forwarded-For") {
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		sink.addJoined("X-Forwarded-For", r.Header["X-Forwarded-For"], ip)
	}
	if !rules.Rules("X-Forwarded-Host") {
		sink.add("X-Forwarded-Host", clientHost(r))
	}
	if !rules.Rules("X-Forwarded-Proto") {
		proto := "http"
		if r.TLS != nil {
			proto = "https"
		}
		sink.add("X-Forwarded-Proto", proto)
	}
	if !rules.Rules("Via") {
		sink.addJoined("Via", r.Header["Via"], st.s.via[protoIndex(r)])
	}
	if !rules.Rules("X-Request-Id") {
		sink.add("X-Request-Id", req.id)
	}
}

// overridden reports whether the client's header k is one that would make
// the origin read another URL, method, host, scheme or port than the
// request's (X-Original-URL, X-HTTP-Method-Override, X-Forwarded-Scheme,
// ...; property.OverrideHeader), or an edge-owned header spelled with '_'
// (X_Forwarded_Host, which CGI and PHP read as X-Forwarded-Host): dropped,
// whether the property caches or not, unless the property allows it by
// its exact name (headers.allow_overrides; the cache then keys it).
func (st *site) overridden(k string) bool {
	if canon, ok := property.OverrideHeader(k); ok {
		return canon != k || !slices.Contains(st.prop.Headers.AllowOverrides, k)
	}
	return strings.IndexByte(k, '_') >= 0 && edgeOwned(k)
}

// edgeOwned reports whether k, read with '_' as '-', names a header the
// edge sets itself.
func edgeOwned(k string) bool {
	var buf [24]byte
	if len(k) > len(buf) {
		return false
	}
	switch string(property.FoldHeaderName(buf[:0], k)) {
	case "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-request-id", "via", "host":
		return true
	}
	return false
}

// forwardTrailer reports whether a request trailer field k goes to the
// origin. On a caching property none does: the cache keys no trailer, and
// a request's trailers are not the origin's to read there. Elsewhere the
// fields RFC 9110 §6.5.1 says cannot be trailers (framing, routing,
// authentication, request modifiers, content format), hop-by-hop and
// edge-owned ones and override headers are dropped; others (a checksum,
// say) pass, as Go's ReverseProxy passes them.
func (st *site) forwardTrailer(k string) bool {
	if st.prop.Cache.Enabled && st.s.cfg.Cache != nil {
		return false
	}
	if hopByHop(k) || edgeOwned(k) || strings.HasPrefix(k, "Content-") || strings.HasPrefix(k, "If-") {
		return false
	}
	if _, ok := property.OverrideHeader(k); ok {
		return false
	}
	switch k {
	case "Authorization", "Cookie", "Set-Cookie", "Cache-Control", "Pragma", "Expect", "Max-Forwards",
		"Range", "Date", "Age", "Expires", "Location", "Vary", "Accept", "Accept-Encoding", "Accept-Language",
		"Accept-Charset", "Origin", "Referer", "User-Agent", "Www-Authenticate", "Proxy-Authorization", "Http2-Settings":
		return false
	}
	return true
}

// originHost is the Host sent to the origin: the property's origin_host,
// or the host the request was routed (and cached) by, never the client's
// raw Host with its port, case or trailing dot, which the cache key does
// not hold (issue 17 §2).
func (st *site) originHost(r *http.Request) string {
	if h := st.prop.OriginHost; h != "" {
		return h
	}
	return clientHost(r)
}

// clientHost is the request's host as routed: lower case, no port, no
// trailing dot, as nginx's $host. Recomputed rather than kept in the
// request state (which would grow the one allocation of a cache hit); it
// allocates only for a host not already in that form.
func clientHost(r *http.Request) string {
	if h, code := requestHost(r.Host); code == 0 {
		return h
	}
	return r.Host
}

// copyResponseHeader puts an origin's response headers into h, the
// client's response headers: hop-by-hop, Connection-listed and the
// origin's X-Request-Id are dropped (h already has the edge's), as is its
// Strict-Transport-Security where the property sets its own, and its
// Alt-Svc (it would offer the origin's own alternatives for the edge's
// names; the edge adds its own when serving, altsvc.go). The value
// slices of from are moved, not copied: from is not used after.
func (st *site) copyResponseHeader(h, from http.Header, r *http.Request) {
	rules := &st.prop.Headers.Response
	conn := from["Connection"]
	ownHSTS := st.prop.TLS.HSTS != "" && r.TLS != nil
	for k, vv := range from {
		switch {
		case k == "X-Request-Id", k == "Alt-Svc", k == "Strict-Transport-Security" && ownHSTS,
			hopByHop(k), len(conn) > 0 && connectionListed(conn, k):
			continue
		}
		h[k] = vv
	}
	// Via: the origin's, then this edge's. Only an origin's Via costs an
	// allocation (append); the map growing is the Header's own.
	if vv := from["Via"]; len(vv) > 0 {
		h["Via"] = append(vv, st.s.via[protoIndex(r)])
	} else {
		h["Via"] = st.s.viaHdr[protoIndex(r)]
	}
	applyHeaders(h, *rules)
}

func protoIndex(r *http.Request) int {
	switch {
	case r != nil && r.ProtoMajor == 3:
		return 3
	case r == nil || r.ProtoMajor >= 2:
		return 2
	case r.ProtoMinor == 0:
		return 0
	}
	return 1
}

func applyHeaders(h http.Header, rules property.HeaderRules) {
	for _, kv := range rules.Set {
		h[kv.Name] = []string{kv.Value}
	}
	for _, n := range rules.Remove {
		delete(h, n)
	}
}

// mapSink collects headers into an http.Header (the http.Transport path).
type mapSink http.Header

func (m mapSink) add(k, v string) { m[k] = append(m[k], v) }

func (m mapSink) addJoined(k string, vv []string, tail string) {
	if len(vv) > 0 {
		tail = strings.Join(vv, ", ") + ", " + tail
	}
	m[k] = append(m[k], tail)
}
