package proxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// site serves one property: its origins and its rewrite rules.
type site struct {
	s       *Server
	prop    *property.Property
	origins []*origin
	files   http.Handler // set for a file origin instead of origins
	rp      *httputil.ReverseProxy
}

// maxAttempts bounds the origins one request may try.
const maxAttempts = 3

func (s *Server) newSite(p *property.Property, live map[string]*origin) *site {
	st := &site{s: s, prop: p}
	if len(p.Origins) == 1 && p.Origins[0].IsFile() {
		st.files = newFileHandler(p.Origins[0].Dir)
		return st
	}
	for _, o := range p.Origins {
		key := originKey(p, o)
		org := live[key]
		if org == nil {
			org = s.origins[key]
		}
		if org == nil {
			org = newOrigin(s, p, o)
		}
		live[key] = org
		st.origins = append(st.origins, org)
	}
	st.rp = &httputil.ReverseProxy{
		Rewrite:        st.rewrite,
		Transport:      st,
		ModifyResponse: st.modifyResponse,
		ErrorHandler:   s.proxyError,
		BufferPool:     bufferPool{},
		ErrorLog:       zap.NewStdLog(s.log),
	}
	return st
}

type ctxKey struct{}

func (st *site) serve(w *recorder, r *http.Request, req *request) {
	if st.files != nil {
		req.origin = st.prop.Origins[0].URL.String()
		applyHeaders(w.Header(), st.prop.Headers.Response)
		st.files.ServeHTTP(w, r)
		return
	}
	if isH2CUpgrade(r.Header) {
		// h2c is a hop-by-hop upgrade of this connection, never one to
		// forward; drop it and proxy the request as a plain one.
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
	}
	if r.Body != nil && r.Body != http.NoBody {
		req.body = &trackedBody{rc: r.Body}
		r.Body = req.body
	}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, req))
	if c := st.s.cfg.Cache; c != nil && st.prop.Cache.Enabled {
		c.Serve(w, r, st.prop, st.rp)
		return
	}
	st.rp.ServeHTTP(w, r)
}

func isH2CUpgrade(h http.Header) bool {
	for _, v := range h["Upgrade"] {
		if strings.Contains(strings.ToLower(v), "h2c") {
			return true
		}
	}
	return false
}

func requestOf(ctx context.Context) *request {
	r, _ := ctx.Value(ctxKey{}).(*request)
	return r
}

func (st *site) rewrite(pr *httputil.ProxyRequest) {
	// Append to the client's X-Forwarded-For, as most proxies do; origins
	// that trust only the edge read the last entry.
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = prior
	}
	pr.SetXForwarded()
	pr.Out.Header.Add("Via", st.s.via[protoIndex(pr.In)])
	if req := requestOf(pr.In.Context()); req != nil {
		pr.Out.Header.Set("X-Request-Id", req.id)
	}
	if st.prop.OriginHost != "" {
		pr.Out.Host = st.prop.OriginHost
	}
	applyHeaders(pr.Out.Header, st.prop.Headers.Request)
}

func (st *site) modifyResponse(resp *http.Response) error {
	h := resp.Header
	h.Del("X-Request-Id") // the edge's own is already set
	if st.prop.TLS.HSTS != "" && resp.Request != nil && resp.Request.TLS != nil {
		h.Del("Strict-Transport-Security")
	}
	h.Add("Via", st.s.via[protoIndex(resp.Request)])
	applyHeaders(h, st.prop.Headers.Response)
	return nil
}

func protoIndex(r *http.Request) int {
	switch {
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

// RoundTrip sends the request to an origin, trying another one when that
// is safe (see canRetry).
func (st *site) RoundTrip(out *http.Request) (*http.Response, error) {
	req := requestOf(out.Context())
	var tried uint64
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		i := st.pick(tried)
		if i < 0 {
			break
		}
		o := st.origins[i]
		tried |= 1 << i
		if req != nil {
			req.origin = o.name
		}
		r := *out
		u := *out.URL
		o.target(&u)
		r.URL = &u
		if attempt > 0 && req != nil && req.body != nil {
			// The transport closed ReverseProxy's body wrapper when the
			// dial failed; the client's body itself was never read (see
			// canRetry), so it goes again under a new wrapper.
			r.Body = io.NopCloser(req.body)
		}
		start := time.Now()
		resp, err := o.rt.RoundTrip(&r)
		if obs := st.s.cfg.Observer; obs != nil {
			obs.OriginRequest(st.prop.Name, o.name, err, time.Since(start))
		}
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if out.Context().Err() != nil {
			return nil, err // the client left; not the origin's fault
		}
		o.failed(err)
		if !canRetry(out, err) {
			break
		}
		st.s.log.Debug("retrying on another origin", zap.String("property", st.prop.Name),
			zap.String("origin", o.name), zap.Error(err))
	}
	if lastErr == nil {
		lastErr = errors.New("no origin available")
	}
	return nil, lastErr
}

// canRetry reports whether a failed request may go to another origin: when
// it never reached the origin (the dial failed: the body is untouched), or
// when it has no body and an idempotent method. A request with a body is
// otherwise never retried: the transport may still be reading it.
func canRetry(r *http.Request, err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if r.Body != nil && r.Body != http.NoBody {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// pick returns the index of an untried origin chosen by weight, among the
// healthy ones when there are any; -1 when every origin was tried.
func (st *site) pick(tried uint64) int {
	if len(st.origins) == 1 {
		if tried != 0 {
			return -1
		}
		return 0
	}
	now := time.Now().UnixNano()
	total := 0
	for i, o := range st.origins {
		if tried&(1<<i) == 0 && o.healthy(now) {
			total += o.weight
		}
	}
	healthyOnly := total > 0
	if !healthyOnly {
		for i, o := range st.origins {
			if tried&(1<<i) == 0 {
				total += o.weight
			}
		}
	}
	if total == 0 {
		return -1
	}
	n := rand.IntN(total)
	for i, o := range st.origins {
		if tried&(1<<i) != 0 || (healthyOnly && !o.healthy(now)) {
			continue
		}
		if n -= o.weight; n < 0 {
			return i
		}
	}
	return -1
}

// trackedBody wraps a request body to tell a client's broken body (a 400)
// from an origin's failure, and keeps the client body open across retries.
type trackedBody struct {
	rc  io.ReadCloser
	n   int64
	err error
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// Close does nothing: the server closes the client's body when the handler
// returns, and a retry may still need it.
func (b *trackedBody) Close() error { return nil }
