package cache

import (
	"net/http"
	"sync"
	"time"
	"unsafe"

	"github.com/edge-cdn/edge/property"
)

// Serve answers r for property p from the cache, or through upstream, an
// http.Handler that forwards a request to the origin and writes the
// origin's response (a 502 or 504 when it cannot). A property without
// cache.enabled goes straight to upstream.
func (c *Cache) Serve(w http.ResponseWriter, r *http.Request, p *property.Property, upstream http.Handler) {
	if c.notLookedUp(w, r, p, upstream) {
		return
	}
	r = withKeyedQuery(r, p)
	kb := keyPool.Get().(*[]byte)
	defer keyPool.Put(kb)
	key := keyOf(kb, p, r)
	rd := directivesOf(r, p)
	now := c.now()
	obj, marker := c.lookup(key, r.Header, kb, false)
	st := c.statsOf(p)
	lookupKey := key // the key of obj (or of the variant sought)
	if marker != nil {
		lookupKey = unsafe.String(unsafe.SliceData(*kb), len(*kb))
	}
	if obj != nil && c.serveStored(w, r, p, upstream, st, obj, &rd, now, key) {
		return
	}
	c.serveMiss(w, r, p, upstream, st, obj, marker != nil, &rd, key, lookupKey)
}

// ServeHit answers r from an object in the memory tier that needs nothing
// of the origin (fresh, or stale within the request's max-stale) and
// returns true, with the same counters, headers and body as Serve would
// have; otherwise it writes and counts nothing and returns false, and the
// caller goes on with Serve. It lets a caller skip what only a miss needs (the proxy's
// request state in r's context, an allocation per request) on a hit.
func (c *Cache) ServeHit(w http.ResponseWriter, r *http.Request, p *property.Property) bool {
	return c.serveHit(w, r, p, -1)
}

// ServeSmallHit is ServeHit for objects whose body has at most maxBody
// bytes: it declines a larger one. An HTTP/2 server answers such hits on
// the connection's goroutine (internal/h2srv's InlineHandler), where an
// answer waits for the client's flow control in the connection's write
// queue: the bound keeps that queue small.
func (c *Cache) ServeSmallHit(w http.ResponseWriter, r *http.Request, p *property.Property, maxBody int) bool {
	return c.serveHit(w, r, p, maxBody)
}

func (c *Cache) serveHit(w http.ResponseWriter, r *http.Request, p *property.Property, maxBody int) bool {
	if !lookedUp(r, p) || c.closed.Load() {
		return false
	}
	kb := keyPool.Get().(*[]byte)
	defer keyPool.Put(kb)
	key := keyOf(kb, p, r)
	rd := directivesOf(r, p)
	// Looked up quietly and in memory only: when ServeHit declines, Serve's
	// lookup (which also reads the disk tier and moves what it finds to
	// memory) is the one the admission policy counts; a hit served here
	// counts once, here.
	obj, marker := c.lookup(key, r.Header, kb, true)
	if obj == nil || (maxBody >= 0 && len(obj.body) > maxBody) || !c.serveStored(w, r, p, nil, nil, obj, &rd, c.now(), key) {
		return false
	}
	c.mem.touch(key)
	if marker != nil {
		c.mem.touch(obj.Key)
	}
	return true
}

// lookedUp tells the requests the cache looks up: GET and HEAD of a
// caching property, without an upgrade or a precondition it does not
// evaluate.
func lookedUp(r *http.Request, p *property.Property) bool {
	return p != nil && p.Cache.Enabled && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !bypassRequest(r)
}

// notLookedUp answers the requests the cache does not look up (see
// lookedUp; and every request once the cache is closed) and reports
// whether it did.
func (c *Cache) notLookedUp(w http.ResponseWriter, r *http.Request, p *property.Property, upstream http.Handler) bool {
	switch {
	case lookedUp(r, p) && !c.closed.Load():
		return false
	case p == nil || !p.Cache.Enabled || c.closed.Load():
		upstream.ServeHTTP(w, r)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		c.serveUnsafe(w, r, p, upstream, c.statsOf(p))
	default:
		c.statsOf(p).bypass.Add(1)
		c.passThrough(w, r, upstream, "Edge; fwd=bypass")
	}
	return true
}

// keyOf builds r's primary key for p in kb. The key is only looked up as
// it is: it is copied (primaryCopy) before anything keeps it.
func keyOf(kb *[]byte, p *property.Property, r *http.Request) string {
	*kb = primaryKey((*kb)[:0], p, r)
	return unsafe.String(unsafe.SliceData(*kb), len(*kb))
}

// directivesOf are the request's cache directives as the property lets
// them count (cache.client_directives).
func directivesOf(r *http.Request, p *property.Property) directives {
	rd := requestDirectives(r.Header)
	if !p.Cache.HonourClientDirectives {
		rd.ignoreClient()
	}
	return rd
}

// serveMiss answers a request the stored object (obj, or none) cannot
// answer as it is: from the origin, through the fill of its key (variant
// tells that a variant marker was found but not the variant sought).
func (c *Cache) serveMiss(w http.ResponseWriter, r *http.Request, p *property.Property, upstream http.Handler,
	st *propStats, obj *object, variant bool, rd *directives, key, lookupKey string) {
	switch {
	case rd.onlyIfCached:
		st.misses.Add(1)
		w.Header().Set("Cache-Status", "Edge; fwd=miss; detail=only-if-cached")
		w.Header().Set("Age", "0")
		w.WriteHeader(http.StatusGatewayTimeout)
	case r.Method == http.MethodHead && obj == nil:
		st.bypass.Add(1)
		c.passThrough(w, r, upstream, "Edge; fwd=uri-miss")
	case len(r.Header["Range"]) > 0 && obj == nil:
		// Ranges are served from full objects: the range goes to the
		// origin, and the full object is fetched behind it only when the
		// answer shows it will be stored (rangeMiss).
		st.misses.Add(1)
		c.rangeMiss(w, r, p, upstream, primaryCopy(key))
	case obj != nil:
		st.revalidated.Add(1)
		fwd := "stale"
		if rd.noCache || rd.maxAge >= 0 {
			fwd = "request"
		}
		c.miss(w, r, p, upstream, primaryCopy(key), primaryCopy(lookupKey), obj, fwd)
	default:
		st.misses.Add(1)
		fwd := "uri-miss"
		if variant {
			fwd = "vary-miss"
		}
		c.miss(w, r, p, upstream, primaryCopy(key), primaryCopy(lookupKey), nil, fwd)
	}
}

// statsOf returns p's counters, and remembers p as the property of its
// name (for purges and stats).
func (c *Cache) statsOf(p *property.Property) *propStats {
	if v, ok := c.props.Load(p.Name); !ok || v.(*property.Property) != p {
		c.props.Store(p.Name, p)
	}
	return c.stats.of(p.Name)
}

// serveStored answers from obj when the request allows it as it is (fresh,
// or stale within max-stale or stale-while-revalidate, which also starts a
// background refresh); false means it must be revalidated. With no
// upstream (ServeHit), st is looked up here, and false also means a
// background refresh would be due.
func (c *Cache) serveStored(w http.ResponseWriter, r *http.Request, p *property.Property, upstream http.Handler,
	st *propStats, obj *object, rd *directives, now time.Time, key string) bool {
	u := c.usable(obj, rd, now)
	if u == useRevalidate || (upstream == nil && u == useStaleRefresh) {
		return false
	}
	if st == nil {
		st = c.statsOf(p)
	}
	switch u {
	case useFresh:
		st.hits.Add(1)
	case useStale:
		st.stale.Add(1)
	case useStaleRefresh:
		st.stale.Add(1)
		c.refresh(r, p, upstream, primaryCopy(key), obj)
	}
	st.servedBytes.Add(int64(len(obj.body)))
	c.serveObject(w, r, obj, now, "")
	return true
}

var keyPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func primaryCopy(k string) string { return string([]byte(k)) }

// bypassRequest tells requests the cache does not answer: upgrades and
// preconditions it does not evaluate.
func bypassRequest(r *http.Request) bool {
	h := r.Header
	return len(h["Upgrade"]) > 0 || len(h["If-Match"]) > 0 || len(h["If-Unmodified-Since"]) > 0
}

// lookup finds the object for key and the request header rh, following a
// variant marker; kb then holds the variant key. Quiet looks in memory
// only, without counting the access in the admission policy.
func (c *Cache) lookup(key string, rh http.Header, kb *[]byte, quiet bool) (obj, marker *object) {
	get := c.get
	if quiet {
		get = c.mem.peek
	}
	o := get(key)
	if o == nil || !o.Marker {
		return o, nil
	}
	*kb = secondaryKey(*kb, o.Gen, o.Vary, rh)
	vkey := unsafe.String(unsafe.SliceData(*kb), len(*kb))
	return get(vkey), o
}

type use int

const (
	useRevalidate use = iota
	useFresh
	useStale        // stale, allowed by max-stale
	useStaleRefresh // stale within stale-while-revalidate
)

// usable decides how a stored object may answer a request with directives
// rd at now (RFC 9111 §4, §4.2.4; RFC 5861 §3).
func (c *Cache) usable(o *object, rd *directives, now time.Time) use {
	if rd.noCache || o.NoCache {
		return useRevalidate
	}
	age := o.age(now)
	ttl := o.ttl(now)
	if rd.maxAge >= 0 && age > seconds(rd.maxAge) {
		return useRevalidate
	}
	if ttl > 0 && (rd.minFresh < 0 || ttl >= seconds(rd.minFresh)) {
		return useFresh
	}
	if o.Revalidate {
		return useRevalidate
	}
	if rd.maxStaleAny || (rd.maxStale >= 0 && -ttl <= seconds(rd.maxStale)) {
		return useStale
	}
	if o.SWR > 0 && -ttl <= o.SWR && rd.minFresh < 0 && rd.maxAge < 0 {
		return useStaleRefresh
	}
	return useRevalidate
}

// passThrough forwards r to upstream, marking the response.
func (c *Cache) passThrough(w http.ResponseWriter, r *http.Request, upstream http.Handler, status string) {
	upstream.ServeHTTP(&markWriter{ResponseWriter: w, status: status}, r)
}

// markWriter adds Cache-Status and Age and drops the headers meant for the
// cache only, on a response the cache does not keep.
type markWriter struct {
	http.ResponseWriter
	status string
	code   int
}

func (m *markWriter) WriteHeader(code int) {
	if code >= 200 && m.code == 0 {
		m.code = code
		h := m.Header()
		stripCacheHeaders(h)
		h.Set("Cache-Status", m.status)
		if len(h["Age"]) == 0 {
			h["Age"] = ageZero
		}
	}
	m.ResponseWriter.WriteHeader(code)
}

func (m *markWriter) Write(p []byte) (int, error) {
	if m.code == 0 {
		m.WriteHeader(http.StatusOK)
	}
	return m.ResponseWriter.Write(p)
}

func (m *markWriter) Flush() {
	if m.code == 0 {
		m.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(m.ResponseWriter).Flush()
}

func (m *markWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

var ageZero = []string{"0"}

// stripCacheHeaders removes the headers addressed to the cache alone.
func stripCacheHeaders(h http.Header) {
	for _, k := range cacheOnlyHeaders {
		delete(h, k)
	}
}

var cacheOnlyHeaders = []string{"Surrogate-Key", "Cache-Tag", "Cdn-Cache-Control", "Surrogate-Control"}
