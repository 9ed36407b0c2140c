package cache

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// miss answers r through the fill of its key: it joins the fill in flight
// or starts one. base is the stale object to revalidate, or nil.
func (c *Cache) miss(w http.ResponseWriter, r *http.Request, p *property.Property, upstream http.Handler,
	primary, fkey string, base *object, fwd string) {
	if c.pass.has(fkey) {
		// The last response for this key was not storable: do not queue
		// behind another request, but store the response if it now is.
		f := c.newFill(r, p, upstream, primary, fkey, base, fwd, false)
		pos, _ := f.join()
		c.start(f)
		c.follow(w, r, f, pos, true, upstream, fwd)
		return
	}
	c.fillsMu.Lock()
	f, running := c.fills[fkey]
	if !running {
		f = c.newFill(r, p, upstream, primary, fkey, base, fwd, false)
		c.fills[fkey] = f
	}
	c.fillsMu.Unlock()
	pos, ok := f.join()
	if !ok {
		c.passThrough(w, r, upstream, "Edge; fwd="+fwd)
		return
	}
	if !running {
		c.start(f)
	}
	c.follow(w, r, f, pos, !running, upstream, fwd)
}

// refresh starts a background fill of key unless one runs already: a
// stale-while-revalidate refresh (base set) or the fetch of a full object
// for a Range miss.
func (c *Cache) refresh(r *http.Request, p *property.Property, upstream http.Handler, primary string, base *object) {
	fkey := primary
	if base != nil {
		fkey = base.Key
	} else if c.pass.has(fkey) {
		return // not storable last time: no full fetch behind a Range
	} else if o := c.get(primary); o != nil && !o.Marker {
		return // stored meanwhile by another request's fill
	}
	c.fillsMu.Lock()
	if _, running := c.fills[fkey]; running {
		c.fillsMu.Unlock()
		return
	}
	f := c.newFill(r, p, upstream, primary, fkey, base, "stale", true)
	c.fills[fkey] = f
	c.fillsMu.Unlock()
	c.start(f)
}

// rangeMiss passes a Range request for a key not in the cache to the
// origin. When the answer shows that the full object would be stored (a 206
// whose Content-Range gives the full length, or a 200 with a
// Content-Length, within the object bound, and a head the policy stores),
// the full object is fetched in the background, once per key (refresh
// collapses; a key found stored or hit-for-pass is not fetched). A range
// of an object that will not be stored costs the origin that range alone,
// as with nginx's slice module, never a full fetch per request.
func (c *Cache) rangeMiss(w http.ResponseWriter, r *http.Request, p *property.Property, upstream http.Handler, primary string) {
	rw := &rangeWriter{markWriter: markWriter{ResponseWriter: w, status: "Edge; fwd=uri-miss"}}
	rw.onHead = func(code int, h http.Header) {
		if code != http.StatusPartialContent && code != http.StatusOK {
			return
		}
		size := fullLength(code, h)
		pol := policyOf(p)
		limit := c.objectMax
		if pol.MaxObjectSize > 0 {
			limit = min(limit, pol.MaxObjectSize)
		}
		if size < 0 || size > limit {
			return // unknown or too large: never stored, so never fetched whole
		}
		fh := h.Clone()
		delete(fh, "Content-Range")
		if d := Decide(http.MethodGet, r.URL.Path, r.Header, http.StatusOK, fh, c.now(), pol); !d.Store {
			return
		}
		c.refresh(r, p, upstream, primary, nil)
	}
	upstream.ServeHTTP(rw, r)
}

// fullLength is the length of the full representation a 206 (its
// Content-Range) or a 200 (its Content-Length) tells; -1 when unknown.
func fullLength(code int, h http.Header) int64 {
	v := h.Get("Content-Length")
	if code == http.StatusPartialContent {
		cr := h.Get("Content-Range")
		i := strings.LastIndexByte(cr, '/')
		if !strings.HasPrefix(cr, "bytes ") || i < 0 {
			return -1
		}
		v = cr[i+1:]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// rangeWriter is the markWriter of a Range miss that looks at the origin's
// head (before the cache-only fields are dropped) once.
type rangeWriter struct {
	markWriter
	onHead func(code int, h http.Header)
}

func (rw *rangeWriter) WriteHeader(code int) {
	if code >= 200 && rw.onHead != nil {
		f := rw.onHead
		rw.onHead = nil
		f(code, rw.Header())
	}
	rw.markWriter.WriteHeader(code)
}

func (rw *rangeWriter) Write(p []byte) (int, error) {
	if rw.code == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.markWriter.Write(p)
}

func (rw *rangeWriter) Flush() {
	if rw.code == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	rw.markWriter.Flush()
}

type backgroundKey struct{}

// Background reports whether ctx is the context of a background fill's
// request to the origin: one that no client waits on. The proxy does not
// name its origin in the access line of the client whose hit started it.
func (c *Cache) Background(ctx context.Context) bool { return ctx.Value(backgroundKey{}) != nil }

// unregister removes f from the fills, if it is still the one for its key.
func (c *Cache) unregister(f *fill) {
	c.fillsMu.Lock()
	if c.fills[f.key] == f {
		delete(c.fills, f.key)
	}
	c.fillsMu.Unlock()
}

// newFill prepares the fill of fkey: the request sent upstream is r as a
// plain GET, without the client's validators and range (and its
// Cache-Control and Pragma, unless the property honours them), with the stored
// object's validators when one is revalidated, and with a context that
// keeps r's values but not its cancellation. A background fill (no client
// waits on it: a stale-while-revalidate refresh, the full fetch behind a
// Range miss) says so in its context (Background).
func (c *Cache) newFill(r *http.Request, p *property.Property, upstream http.Handler, primary, fkey string, base *object, fwd string, background bool) *fill {
	parent := context.WithoutCancel(r.Context())
	if background {
		parent = context.WithValue(parent, backgroundKey{}, true)
	}
	ctx, cancel := context.WithCancel(parent)
	req := r.Clone(ctx)
	req.Method = http.MethodGet
	req.Body, req.ContentLength, req.GetBody = http.NoBody, 0, nil
	for _, k := range []string{"If-None-Match", "If-Modified-Since", "Range", "If-Range"} {
		delete(req.Header, k)
	}
	if !p.Cache.HonourClientDirectives {
		for _, k := range clientCacheHeaders {
			delete(req.Header, k) // ignored by the cache, so not the origin's to see
		}
	}
	if base != nil {
		if e := base.etag(); e != "" {
			req.Header.Set("If-None-Match", e)
		}
		if lm := base.lastModified(); lm != "" {
			req.Header.Set("If-Modified-Since", lm)
		}
	}
	return &fill{c: c, key: fkey, base: base, cancel: cancel, head: make(chan struct{}), interim: make(chan interimResponse, 4),
		readers: map[*int64]struct{}{}, wake: make(chan struct{}), declared: -1,
		job: &fillJob{req: req, upstream: upstream, prop: p.Name, primary: primary, policy: policyOf(p), fwd: fwd,
			bodyIdle: p.Timeouts.BodyIdle}}
}

// fillJob is what a fill's goroutine needs.
type fillJob struct {
	req      *http.Request
	upstream http.Handler
	prop     string
	primary  string
	policy   Policy
	fwd      string
	decision Decision
	reqTime  time.Time
	header   http.Header // the origin's head, as stored
	bodyIdle time.Duration
}

func policyOf(p *property.Property) Policy {
	rules := &p.Headers.Request
	return Policy{DefaultTTL: p.Cache.DefaultTTL, MaxObjectSize: p.Cache.MaxObjectSize,
		StaleWhileRevalidate: p.Cache.StaleWhileRevalidate, StaleIfError: p.Cache.StaleIfError,
		NoDeceptionArmor: p.Cache.NoDeceptionArmor, CookieRuled: rules.Rules("Cookie"), AuthorizationRuled: rules.Rules("Authorization")}
}

// maxSize is the largest body f may store: the property's
// cache.max_object_size, within the node's bound of one object.
func (c *Cache) maxSize(f *fill) int64 {
	if m := f.job.policy.MaxObjectSize; m > 0 {
		return min(m, c.objectMax)
	}
	return c.objectMax
}

// start runs the fill on a goroutine the Cache owns; Close cancels it.
func (c *Cache) start(f *fill) {
	if c.onStart != nil {
		c.onStart(f)
	}
	stop := context.AfterFunc(c.ctx, f.cancel)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer stop()
		defer f.cancel()
		defer c.unregister(f)
		c.run(f)
	}()
}

// run calls upstream and stores what may be stored.
func (c *Cache) run(f *fill) {
	j := f.job
	j.reqTime = c.now()
	fw := &fillWriter{f: f, ctx: j.req.Context(), h: http.Header{}, reqT: j.reqTime}
	failed := false
	func() {
		defer func() {
			if v := recover(); v != nil {
				failed = true
				if v != http.ErrAbortHandler {
					c.log.Error("cache: upstream panicked during a fill", zap.String("property", j.prop), zap.Any("panic", v))
				}
			}
		}()
		j.upstream.ServeHTTP(fw, j.req)
	}()
	if !fw.wrote {
		// Upstream wrote nothing: an error, as a 502 would be.
		fw.h = http.Header{}
		fw.WriteHeader(http.StatusBadGateway)
		failed = false
	}
	// A fill cancelled (Close, or nobody left to read it) is cut short.
	fw.stopIdle()
	body, store := f.finish(failed || fw.err != nil || j.req.Context().Err() != nil)
	if store {
		c.store(f, body)
	}
	f.close()
	f.releaseAll()
}
