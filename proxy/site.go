package proxy

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/edge-cdn/edge/property"
)

// site serves one property: its origins and its rewrite rules.
type site struct {
	s       *Server
	prop    *property.Property
	origins []*origin
	files   *origin // set for a file origin instead of origins
	budget  *retryBudget
	obs     SiteObserver // nil: report to the Server's Observer
	// altSvc is the Alt-Svc of its HTTPS answers (altsvc.go), sent until
	// altSvcUntil when that is set.
	altSvc      []string
	altSvcUntil time.Time
	// upstream forwards a request to the origins and writes the response
	// (st.forward): the seam where the cache sits in front (see serve).
	upstream http.Handler
}

func (s *Server) newSite(p *property.Property, live map[string]*origin) *site {
	st := &site{s: s, prop: p, budget: newRetryBudget()}
	st.upstream = http.HandlerFunc(st.forward)
	if po, ok := s.cfg.Observer.(PropertyObserver); ok {
		st.obs = po.ForProperty(p.Name)
	}
	for _, o := range p.Origins {
		key := originKey(p, o)
		org := live[key]
		if org == nil {
			org = s.origins[key]
		}
		if org == nil {
			org = newOrigin(s, p, o)
			org.key = key
		}
		live[key] = org
		if o.IsFile() {
			st.files = org
			break
		}
		st.origins = append(st.origins, org)
	}
	return st
}

// keepOrigins adds the site's origins to live, by key: an Update that
// carries the site over keeps them.
func (st *site) keepOrigins(live map[string]*origin) {
	if st.files != nil {
		live[st.files.key] = st.files
	}
	for _, o := range st.origins {
		live[o.key] = o
	}
}

// serve answers one request of the property: from a file origin, or
// through the upstream. Request paths with dot-segments are refused
// before either (see hasDotSegment).
func (st *site) serve(w *recorder, r *http.Request, req *request) {
	if req.inline && st.files != nil {
		req.declined = true // files are read from disk
		return
	}
	if st.files != nil {
		req.origin = st.files.name
		applyHeaders(w.Header(), st.prop.Headers.Response)
		if st.files.files == nil {
			plainError(w, http.StatusServiceUnavailable, req.id)
			return
		}
		st.files.files.handler.ServeHTTP(w, r)
		return
	}
	if hasDotSegment(r.URL.Path) || badTarget(r) {
		plainError(w, http.StatusBadRequest, req.id)
		return
	}
	if r.Method == http.MethodConnect {
		plainError(w, http.StatusMethodNotAllowed, req.id)
		return
	}
	if req.inline {
		// Only a small hit from memory is answered on the connection's
		// goroutine: anything else may wait on the origin or the disk.
		c := st.s.cfg.Cache
		if hc, ok := c.(SmallHitCache); ok && st.prop.Cache.Enabled && !hasBody(r) &&
			hc.ServeSmallHit(w, r, st.prop, inlineBodyMax) {
			return
		}
		req.declined = true
		return
	}
	if isH2CUpgrade(r.Header) {
		// h2c is a hop-by-hop upgrade of this connection, never one to
		// forward; drop it and proxy the request as a plain one.
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
	}
	if hasBody(r) {
		req.body = &trackedBody{rc: r.Body}
		r.Body = req.body
	}
	c := st.s.cfg.Cache
	cached := c != nil && st.prop.Cache.Enabled
	if cached {
		// A hit needs nothing of the request state in r's context: serve it
		// before the hand-over below, saving its allocation.
		if hc, ok := c.(HitCache); ok && hc.ServeHit(w, r, st.prop) {
			return
		}
	}
	if !cached {
		// Straight to the origins, the state in hand.
		st.forwardReq(w, r, req, false)
		return
	}
	// The request travels to the cache in r's context (request is a
	// context.Context): the upstream the cache calls finds it with
	// requestOf. WithContext copies the *http.Request: the one allocation
	// of this hand-over.
	req.Context = r.Context()
	r = r.WithContext(req)
	c.Serve(w, r, st.prop, st.upstream)
}

func isH2CUpgrade(h http.Header) bool {
	for _, v := range h["Upgrade"] {
		if strings.Contains(strings.ToLower(v), "h2c") {
			return true
		}
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
