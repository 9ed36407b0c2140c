package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ChallengeResponder answers ACME HTTP-01 challenges.
type ChallengeResponder interface {
	// ServeChallenge answers the token for host and returns true, or
	// returns false, having written nothing, when it does not know it.
	ServeChallenge(w http.ResponseWriter, r *http.Request, host, token string) bool
}

// Observer is told about every request, for metrics. Methods must be fast
// and safe for concurrent use.
type Observer interface {
	Request(property string, status int, elapsed time.Duration)
	OriginRequest(property, origin string, err error, elapsed time.Duration)
	OriginHealth(property, origin string, healthy bool)
}

// ConnObserver, when the Observer implements it too, is told about every
// connection opened to an origin on the synchronous HTTP/1.1 path (for a
// counter: requests per connection shows keep-alive reuse).
type ConnObserver interface {
	OriginConnOpened(property, origin string)
}

// PropertyObserver, when the Observer implements it too, resolves a
// property's metrics once per routing update (labels looked up then, not
// per request): the proxy then reports that property's requests to the
// returned SiteObserver instead of the Observer's Request and
// OriginRequest.
type PropertyObserver interface {
	ForProperty(property string) SiteObserver
}

// SiteObserver is one property's metrics (see PropertyObserver).
type SiteObserver interface {
	Request(status int, elapsed time.Duration)
	OriginRequest(origin string, err error, elapsed time.Duration)
}

// Config configures a Server. Zero values are useful defaults.
type Config struct {
	Logger    *zap.Logger // nil: no logs
	NodeName  string      // in Via headers; "" uses "edge"
	AccessLog bool        // one log line per request
	// AccessLogger receives the access lines; nil: Logger.Named("access").
	// Its core must encode an entry before Write returns (zap's ioCore and
	// BufferedWriteSyncer do): a line's fields point into pooled state
	// that is reused once Write returns.
	AccessLogger *zap.Logger
	// HTTPSPort is the port written in redirects to https; 0 or 443 writes
	// none.
	HTTPSPort   int
	Challenge   ChallengeResponder // nil: no challenges answered
	Observer    Observer           // nil: none
	PassiveRest time.Duration      // how long a failed origin rests; 0: 10s
	// Cache, when set, answers the requests of properties with
	// cache.enabled, calling upstream for what it cannot serve.
	Cache  Cache
	Limits Limits // request head limits (headers.go)
	// HTTP3Port is the public UDP port of the node's HTTP/3 listener,
	// offered in Alt-Svc on the HTTPS answers of properties with http3 on;
	// 0: the node does not listen for HTTP/3 (no Alt-Svc at all).
	HTTP3Port int
}

// Cache is a shared HTTP cache in front of a property's origins. upstream
// forwards a request to the origins and writes their response (a 502 or
// 504 when they fail).
type Cache interface {
	Serve(w http.ResponseWriter, r *http.Request, p *property.Property, upstream http.Handler)
}

// HitCache, when the Cache implements it too, answers a request from a
// stored object that needs nothing of the origin, before the proxy builds
// what a forwarded request needs. ServeHit returns false, having written
// nothing, when Serve must answer instead.
type HitCache interface {
	ServeHit(w http.ResponseWriter, r *http.Request, p *property.Property) bool
}

// SmallHitCache, when the Cache implements it too, is HitCache for
// objects of at most maxBody bytes: what the proxy answers inline (see
// handler.ServeInline).
type SmallHitCache interface {
	ServeSmallHit(w http.ResponseWriter, r *http.Request, p *property.Property, maxBody int) bool
}

// inlineBodyMax bounds the body of a hit given inline (-1: none). The
// HTTP/2 server queues a stored body of more than 4 KiB as it is, without
// a copy (internal/h2srv's InlineHandler: a stored body never changes),
// and copies a smaller one: the frames of a client that does not read
// hold the objects they answer with, as a blocked handler goroutine
// writing them would, and 4 KiB per stream of copies. With 16 KiB (inline
// answers were copied), every hit past it took a handler goroutine that
// waited for its frames: bench cache-h2-100k (50 connections x 10
// streams, 100 KiB) kept ~500 of them, 6 MB of stacks, which the
// collector's goal counts too.
const inlineBodyMax = -1

// BackgroundCache, when the Cache implements it too, tells the requests of
// the fills no client waits on (a stale-while-revalidate refresh): their
// origin is not the client's.
type BackgroundCache interface {
	Background(ctx context.Context) bool
}

// Server routes requests to properties. Make one with New.
type Server struct {
	cfg    Config
	log    *zap.Logger
	access *zap.Logger
	via    [4]string // by protocol: HTTP/1.0, HTTP/1.1, HTTP/2, HTTP/3
	// viaHdr holds via as header values, shared by all responses that
	// had no Via (saves an allocation each). Never written in place: a
	// slice with len == cap, so an append copies.
	viaHdr [4][]string
	ids    requestIDs

	routes atomic.Pointer[routes]
	// originBytes counts the body bytes received from origins (the
	// dashboard's history shows them beside the bytes served from cache).
	originBytes atomic.Int64

	mu      sync.Mutex         // serialises Update, Close and the building of sites
	origins map[string]*origin // live origins by key, reused across updates
	// built are the sites built for the current routes, by property:
	// what an Update carries over or rebuilds. Guarded by mu.
	built map[*property.Property]*site
	// closed is set by Close: a site built after it does not register
	// its origins (nothing would stop them). Guarded by mu.
	closed bool

	// h3Off holds when each property that had HTTP/3 on turned it off
	// (it then sends Alt-Svc: clear for AltSvcMaxAge); altSvcOffer is the
	// shared Alt-Svc value of the others. Guarded by mu.
	h3Off       map[string]time.Time
	altSvcOffer []string

	stopExpiry chan struct{} // closed by Close
	expiryDone chan struct{}
	closeOnce  sync.Once
}

// routes is one routing snapshot: an immutable table, and the sites of
// its properties, each built on the property's first request (site), not
// at the update: a start with 100,000 properties builds none, and a
// reload only those of the properties that changed and had been used.
type routes struct {
	table *property.Table
	sites sync.Map // *property.Property → *site
}

// New returns a Server with no properties.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.NodeName == "" {
		cfg.NodeName = "edge"
	}
	if cfg.PassiveRest == 0 {
		cfg.PassiveRest = 10 * time.Second
	}
	access := cfg.AccessLogger
	if access == nil {
		access = cfg.Logger.Named("access")
	}
	s := &Server{cfg: cfg, log: cfg.Logger.Named("proxy"), access: access,
		origins: map[string]*origin{}, built: map[*property.Property]*site{}, ids: newRequestIDs(),
		stopExpiry: make(chan struct{}), expiryDone: make(chan struct{})}
	s.via = [4]string{"1.0 " + cfg.NodeName, "1.1 " + cfg.NodeName, "2 " + cfg.NodeName, "3 " + cfg.NodeName}
	s.h3Off = map[string]time.Time{}
	if cfg.HTTP3Port > 0 {
		s.altSvcOffer = altSvcOffer(cfg.HTTP3Port)
	}
	for i, v := range s.via {
		s.viaHdr[i] = []string{v}[:1:1]
	}
	s.routes.Store(&routes{table: &property.Table{}})
	go s.expireLoop()
	return s
}

// Update swaps in a new property table. Origins whose settings did not
// change keep their connections and health state; the others are stopped
// once no longer routed. Requests in flight finish on the sites they began.
//
// Sites are built lazily (see routes): Update carries over the sites of
// the unchanged properties that were built, builds at once those of the
// changed properties that were (so that their unchanged origins keep
// their connections) and those of the properties with an active health
// check (whose checks start at load, as they always did); every other
// site is built by its property's first request. Its cost is proportional
// to the sites built, not to the table.
func (s *Server) Update(t *property.Table) {
	s.mu.Lock()
	old, now := s.routes.Load().table, time.Now()
	r := &routes{table: t}
	if s.cfg.HTTP3Port > 0 {
		for _, p := range t.Properties() {
			if q := old.ByName(p.Name); q != p {
				s.noteHTTP3(p, q, now)
			}
		}
	}
	live := make(map[string]*origin, len(s.origins))
	built := make(map[*property.Property]*site, len(s.built))
	for p, st := range s.built {
		switch q := t.ByName(p.Name); {
		case q == p:
			r.sites.Store(p, st)
			built[p] = st
			st.keepOrigins(live)
		case q != nil:
			built[q] = s.buildSite(r, q, live, now)
		}
	}
	for _, p := range t.Properties() {
		if p.HealthCheck != nil && built[p] == nil {
			built[p] = s.buildSite(r, p, live, now)
		}
	}
	s.routes.Store(r)
	var gone []*origin
	for k, o := range s.origins {
		if _, ok := live[k]; !ok {
			gone = append(gone, o)
		}
	}
	s.origins, s.built = live, built
	s.mu.Unlock()
	// Stopping waits for health checks (bounded by their timeout): not
	// under the lock.
	for _, o := range gone {
		o.stop()
	}
}

// buildSite builds p's site in r, taking its origins from live or else
// from the origins in service (which keeps their connections), else
// making them; they are added to live. s.mu is held.
func (s *Server) buildSite(r *routes, p *property.Property, live map[string]*origin, now time.Time) *site {
	st := s.newSite(p, live)
	st.altSvc, st.altSvcUntil = s.altSvc(p, now)
	r.sites.Store(p, st)
	return st
}

// site returns p's site in rt, built on p's first request; nil when a
// reload replaced p after rt was looked up and before its site was built:
// the request is then routed again, on the new table. The first request
// of a property waits for its site (tens of microseconds: its origins'
// transports and pools, its metrics; see BenchmarkFirstRequestSite); the
// others find it with one lookup.
func (s *Server) site(rt *routes, p *property.Property) *site {
	if v, ok := rt.sites.Load(p); ok {
		return v.(*site)
	}
	s.mu.Lock()
	var orphans map[string]*origin
	st := s.siteLocked(rt, p, &orphans)
	s.mu.Unlock()
	for _, o := range orphans {
		o.stop() // waits for a health check: not under the lock
	}
	return st
}

// siteLocked is site with s.mu held. After Close, the site's new origins
// are put in *orphans, for the caller to stop.
func (s *Server) siteLocked(rt *routes, p *property.Property, orphans *map[string]*origin) *site {
	if v, ok := rt.sites.Load(p); ok { // built while this one waited
		return v.(*site)
	}
	cur := s.routes.Load()
	if cur != rt {
		if cur.table.ByName(p.Name) != p {
			return nil
		}
		// p is unchanged in the table that replaced rt: one site for both.
		st := s.siteLocked(cur, p, orphans)
		rt.sites.Store(p, st)
		return st
	}
	if s.closed {
		// Shut down (requests after Close are a caller's race): serve,
		// without registering origins that nothing would stop.
		*orphans = map[string]*origin{}
		return s.newSite(p, *orphans)
	}
	st := s.buildSite(rt, p, s.origins, time.Now())
	s.built[p] = st
	return st
}

// Close stops health checks and closes idle origin connections.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.stopExpiry)
		<-s.expiryDone
	})
	s.mu.Lock()
	gone := s.origins
	s.origins, s.built, s.closed = map[string]*origin{}, map[*property.Property]*site{}, true
	s.mu.Unlock()
	// As in Update: stopping waits for health checks, not under the lock.
	for _, o := range gone {
		o.stop()
	}
}

// expiryTick is how often idle origin connections past their idle
// timeout are closed: one goroutine for all origins (a goroutine each
// would cost memory with many properties).
const expiryTick = time.Second

// expireLoop closes idle origin connections past their idle timeout until
// Close.
func (s *Server) expireLoop() {
	defer close(s.expiryDone)
	t := time.NewTicker(expiryTick)
	defer t.Stop()
	var pools []*connPool
	for {
		select {
		case <-s.stopExpiry:
			return
		case now := <-t.C:
			pools = pools[:0]
			s.mu.Lock()
			for _, o := range s.origins {
				if o.pool != nil {
					pools = append(pools, o.pool)
				}
			}
			s.mu.Unlock()
			for _, p := range pools { // closing connections: not under s.mu
				p.expire(now)
			}
			clear(pools)
		}
	}
}

// HTTPHandler serves the plain HTTP port.
func (s *Server) HTTPHandler() http.Handler { return handler{s: s, secure: false} }

// HTTPSHandler serves the TLS port.
func (s *Server) HTTPSHandler() http.Handler { return handler{s: s, secure: true} }

type handler struct {
	s      *Server
	secure bool
}

const challengePrefix = "/.well-known/acme-challenge/"

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.serve(w, r, false) }

// ServeInline answers r if it can without blocking, on the HTTP/2
// connection's goroutine (internal/h2srv's InlineHandler): a small hit
// from the memory tier, or an answer the proxy gives without its origins
// or the cache (a refusal, 421, ...). It goes through the same routing,
// screening, cache, metrics and access log as ServeHTTP. Otherwise it
// returns false having written nothing to w (headers it set there are
// dropped by the server) and logged or counted nothing but the header
// fields with an underscore that screening dropped from r (then gone:
// counted once), and the server calls ServeHTTP on a goroutine of the
// request's own. A declined request used up one request id.
func (h handler) ServeInline(w http.ResponseWriter, r *http.Request) bool {
	if !h.secure {
		return false // HTTP/2 is the TLS port's; keeps the challenge path out
	}
	// Most declines are known from the property alone: decline those
	// before the request's state is made (route decides the rest, and
	// answers what it answers the same way whatever this says).
	if host, code := requestHost(r.Host); code == 0 {
		if p := h.s.routes.Load().table.Lookup(host); p != nil && !p.Cache.Enabled {
			return false
		}
	}
	return h.serve(w, r, true)
}

// serve answers r; inline: see ServeInline.
func (h handler) serve(w http.ResponseWriter, r *http.Request, inline bool) bool {
	s := h.s
	rec := newRecorder(w)
	// The request's state: one allocation, its id and the id's header
	// value inside it.
	req := &request{began: monoNow(), inline: inline}
	s.ids.next(req)
	if r.ProtoMajor == 2 {
		// HPACK: Go's HTTP/2 server indexes every response field in the
		// connection's dynamic table, which keeps the last ~64 ids for the
		// connection's life, and for limits.idle_timeout more when it
		// closes with streams open (its idle timer is re-armed as they
		// close). An id inside the request state kept all of it, and the
		// stream's context with it (issue 22: 2.5 MiB more live heap per
		// 50×10-stream run); a copy keeps 24 bytes.
		req.idHdr[0] = strings.Clone(req.id)
	}
	rec.Header()["X-Request-Id"] = req.idHdr[:]
	defer func() {
		// An aborted response (the origin failed mid-body) is logged and
		// counted too, then the abort goes on to the server.
		if p := recover(); p != nil {
			s.finish(rec, r, req)
			rec.release()
			panic(p)
		}
	}()
	s.route(rec, r, req, h.secure)
	if req.declined {
		rec.release()
		return false
	}
	s.finish(rec, r, req)
	rec.release()
	return true
}

func (s *Server) finish(rec *recorder, r *http.Request, req *request) {
	elapsed := monoNow() - req.began // one clock read for the metrics and the log
	if req.siteObs != nil {
		req.siteObs.Request(rec.status, elapsed)
	} else if s.cfg.Observer != nil {
		s.cfg.Observer.Request(req.propertyName(), rec.status, elapsed)
	}
	if s.cfg.AccessLog {
		s.logAccess(rec, r, req, elapsed)
	}
}

func (s *Server) route(w *recorder, r *http.Request, req *request, secure bool) {
	host, code := requestHost(r.Host)
	if code != 0 {
		plainError(w, code, req.id)
		return
	}
	rt := s.routes.Load()
	p := rt.table.Lookup(host)
	req.prop = p
	if s.screen(w, r, req) {
		return
	}
	if !secure && strings.HasPrefix(r.URL.Path, challengePrefix) {
		if s.cfg.Challenge != nil && r.Method == http.MethodGet &&
			s.cfg.Challenge.ServeChallenge(w, r, host, r.URL.Path[len(challengePrefix):]) {
			return
		}
		if p == nil || p.TLS.RenewAutomation {
			plainError(w, http.StatusNotFound, req.id)
			return
		}
	}
	if p == nil {
		plainError(w, http.StatusMisdirectedRequest, req.id)
		return
	}
	if secure {
		if !sameCertificate(rt.table, r, p) {
			plainError(w, http.StatusMisdirectedRequest, req.id)
			return
		}
		if p.TLS.HSTS != "" {
			w.Header().Set("Strict-Transport-Security", p.TLS.HSTS)
		}
	} else if p.TLS.RedirectHTTP && !strings.HasPrefix(r.URL.Path, challengePrefix) {
		s.redirect(w, r, host)
		return
	}
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// Go's parser drops a Content-Length sent beside Transfer-Encoding
		// and reads the body chunked, which cannot be seen from here. Close
		// the client connection after such a request so that a peer that
		// framed it otherwise cannot smuggle a request behind it.
		w.Header().Set("Connection", "close")
	}
	st := s.site(rt, p)
	if st == nil {
		// A reload replaced p after the lookup, before its first request
		// built its site: route on the new table.
		s.route(w, r, req, secure)
		return
	}
	if secure {
		var now time.Time
		if !st.altSvcUntil.IsZero() {
			now = time.Now() // only a site that turned HTTP/3 off needs the time
		}
		st.setAltSvc(w.Header(), now)
	}
	req.siteObs = st.obs
	st.serve(w, r, req)
}

// sameCertificate reports whether the TLS connection's SNI names a
// property served with the same certificate as p, Host's property.
func sameCertificate(t *property.Table, r *http.Request, p *property.Property) bool {
	if r.TLS == nil {
		return true
	}
	sni, err := property.Normalize(r.TLS.ServerName) // "" is an error too
	if err != nil {
		return false
	}
	q := t.Lookup(sni)
	return q == p || (q != nil && q.TLS.Certificate != "" && q.TLS.Certificate == p.TLS.Certificate)
}

// requestHost returns the normalised host of a Host header, or a status:
// 421 for a missing host or an IP literal (never a property), 400 for a
// malformed one.
func requestHost(hostport string) (string, int) {
	if hostport == "" {
		return "", http.StatusMisdirectedRequest
	}
	h := hostOnly(hostport)
	if h == "" {
		return "", http.StatusMisdirectedRequest
	}
	n, err := property.Normalize(h)
	if err != nil {
		return "", http.StatusBadRequest
	}
	return n, 0
}

// hostOnly is property.HostOnly without its one allocation per request:
// that parses every host as an IP literal, and net.ParseIP allocates the
// error it makes of a name. A host (port stripped) with no ':' or '['
// whose last byte is a letter is no IP literal (an IPv4 literal ends with
// a digit, an IPv6 one holds ':'), so it is returned unparsed; anything
// else goes to property.HostOnly.
func hostOnly(hostport string) string {
	if strings.IndexByte(hostport, '[') >= 0 || strings.IndexByte(hostport, ']') >= 0 { // not ContainsAny: it builds a byte set per call
		return property.HostOnly(hostport)
	}
	h := hostport
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	if n := len(h); n > 0 && strings.IndexByte(h, ':') < 0 && (h[n-1]|0x20 >= 'a' && h[n-1]|0x20 <= 'z') {
		return h
	}
	return property.HostOnly(hostport)
}

func (s *Server) redirect(w http.ResponseWriter, r *http.Request, host string) {
	target := "https://" + host
	if p := s.cfg.HTTPSPort; p != 0 && p != 443 {
		target += ":" + strconv.Itoa(p)
	}
	target += r.URL.RequestURI()
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusPermanentRedirect)
}

func (s *Server) logAccess(rec *recorder, r *http.Request, req *request, elapsed time.Duration) {
	ce := s.access.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	// The line's fields are one inline object (its MarshalLogObject adds
	// them in order, straight to the encoder) and the error: building and
	// switching on 12 zap.Fields costs more. The pooled line and its field
	// array are encoded before Write returns.
	l := accessLines.Get().(*accessLine)
	l.rec, l.r, l.req, l.elapsed = rec, r, req, elapsed
	l.fields[0] = zap.Inline(l)
	l.fields[1] = zap.Error(req.err) // zap.Skip() when nil
	ce.Write(l.fields[:]...)
	*l = accessLine{}
	accessLines.Put(l)
}

// accessLine is one access-log line's fields but the error, in their
// order; the keys are part of the log's contract.
type accessLine struct {
	rec     *recorder
	r       *http.Request
	req     *request
	elapsed time.Duration
	fields  [2]zap.Field
}

func (l *accessLine) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("request_id", l.req.id)
	enc.AddString("property", l.req.propertyName())
	enc.AddString("host", l.r.Host)
	enc.AddString("method", l.r.Method)
	enc.AddString("uri", l.r.RequestURI)
	enc.AddString("proto", l.r.Proto)
	enc.AddInt64("status", int64(l.rec.status))
	enc.AddInt64("bytes", l.rec.bytes)
	enc.AddDuration("duration", l.elapsed)
	enc.AddString("origin", l.req.originName())
	enc.AddString("remote", l.r.RemoteAddr)
	return nil
}

var accessLines = sync.Pool{New: func() any { return new(accessLine) }}

// request is what the proxy knows of one request while serving it. It is
// the context of the request handed to the upstream (Value(ctxKey{})
// returns it), which saves context.WithValue's allocation.
type request struct {
	context.Context // the client request's; set when it is proxied

	began   time.Duration // monoNow() when it came
	id      string
	idHdr   [1]string // the X-Request-Id header value: id
	idBuf   [24]byte  // id's bytes
	prop    *property.Property
	siteObs SiteObserver // the property's metrics, when resolved
	origin  string       // the last origin tried
	// fillOrigin is the origin tried by a cache fill made for this request
	// on a state of its own (forward's parent), for this request's access
	// line: the fill's goroutine sets it while this one serves.
	fillOrigin atomic.Pointer[string]
	parent     *request // a fill's: the request it was made for
	body       *trackedBody
	err        error // an origin failure after the response began
	// inline: the request is served on the HTTP/2 connection's goroutine
	// and must not block (handler.ServeInline); declined: it would have
	// to, nothing was written, and it is served again the ordinary way.
	inline, declined bool
}

// monoBase is the origin of monoNow.
var monoBase = time.Now()

// monoNow is the time since monoBase on the monotonic clock: one clock read
// (time.Now reads the wall clock too), for durations.
func monoNow() time.Duration { return time.Since(monoBase) }

type ctxKey struct{}

func (r *request) Value(key any) any {
	if key == (ctxKey{}) {
		return r
	}
	return r.Context.Value(key)
}

func (r *request) setID(id string) {
	r.id = id
	r.idHdr[0] = id
}

// requestOf returns the request state carried by ctx, or nil.
func requestOf(ctx context.Context) *request {
	if r, ok := ctx.(*request); ok {
		return r
	}
	r, _ := ctx.Value(ctxKey{}).(*request)
	return r
}

// originName is the last origin tried for r, by r itself or by the cache
// fill made for it.
func (r *request) originName() string {
	if r.origin == "" {
		if o := r.fillOrigin.Load(); o != nil {
			return *o
		}
	}
	return r.origin
}

func (r *request) propertyName() string {
	if r.prop == nil {
		return ""
	}
	return r.prop.Name
}

// OriginStats are an origin's counters since it was made.
type OriginStats struct {
	Requests    uint64 // requests sent on the synchronous path
	ConnsOpened uint64 // connections dialled for them
}

// OriginStats reports the counters of each http(s) origin of a property, by
// URL: the share of requests that reused a connection is
// 1 - ConnsOpened/Requests.
func (s *Server) OriginStats(property string) map[string]OriginStats {
	st := s.builtSite(property)
	if st == nil {
		return nil
	}
	out := map[string]OriginStats{}
	for _, o := range st.origins {
		if o.pool != nil {
			out[o.name] = OriginStats{Requests: o.pool.requests.Load(), ConnsOpened: o.pool.opened.Load()}
		}
	}
	return out
}

// OriginHealth reports whether each origin of a property is healthy now,
// by URL. File origins are not listed. The origins of a property that has
// had no request yet (its site is built then) are healthy: none has
// failed, and a property with an active health check is built at load.
func (s *Server) OriginHealth(property string) map[string]bool {
	st := s.builtSite(property)
	if st == nil {
		p := s.routes.Load().table.ByName(property)
		if p == nil {
			return nil
		}
		out := map[string]bool{}
		for _, o := range p.Origins {
			if !o.IsFile() {
				out[o.URL.String()] = true
			}
		}
		return out
	}
	now := time.Now().UnixNano()
	out := map[string]bool{}
	for _, o := range st.origins {
		out[o.name] = o.healthy(now)
	}
	return out
}

// builtSite returns the site of the named property in the current routes
// if its first request built it, else nil; it builds none.
func (s *Server) builtSite(property string) *site {
	rt := s.routes.Load()
	p := rt.table.ByName(property)
	if p == nil {
		return nil
	}
	if v, ok := rt.sites.Load(p); ok {
		return v.(*site)
	}
	return nil
}

// OriginBytes is how many body bytes the proxy has received from origins
// since it started: misses, cache fills and pass-through responses.
func (s *Server) OriginBytes() int64 { return s.originBytes.Load() }
