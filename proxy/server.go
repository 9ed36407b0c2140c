package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
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

// Config configures a Server. Zero values are useful defaults.
type Config struct {
	Logger    *zap.Logger // nil: no logs
	NodeName  string      // in Via headers; "" uses "edge"
	AccessLog bool        // one log line per request
	// AccessLogger receives the access lines; nil: Logger.Named("access").
	AccessLogger *zap.Logger
	// HTTPSPort is the port written in redirects to https; 0 or 443 writes
	// none.
	HTTPSPort   int
	Challenge   ChallengeResponder // nil: no challenges answered
	Observer    Observer           // nil: none
	PassiveRest time.Duration      // how long a failed origin rests; 0: 10s
	Limits      Limits             // request head limits (headers.go)
}

// Server routes requests to properties. Make one with New.
type Server struct {
	cfg    Config
	log    *zap.Logger
	access *zap.Logger
	via    [3]string // by protocol: HTTP/1.0, HTTP/1.1, HTTP/2
	ids    requestIDs

	routes atomic.Pointer[routes]

	mu      sync.Mutex         // serialises Update and Close
	origins map[string]*origin // live origins by key, reused across updates
}

// routes is one immutable routing snapshot.
type routes struct {
	table *property.Table
	sites map[*property.Property]*site
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
		origins: map[string]*origin{}, ids: newRequestIDs()}
	s.via = [3]string{"1.0 " + cfg.NodeName, "1.1 " + cfg.NodeName, "2 " + cfg.NodeName}
	s.routes.Store(&routes{table: &property.Table{}, sites: map[*property.Property]*site{}})
	return s
}

// Update swaps in a new property table. Origins whose settings did not
// change keep their connections and health state; the others are stopped
// once no longer routed. Requests in flight finish on the sites they began.
func (s *Server) Update(t *property.Table) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &routes{table: t, sites: make(map[*property.Property]*site, len(t.Properties()))}
	live := make(map[string]*origin, len(s.origins))
	for _, p := range t.Properties() {
		r.sites[p] = s.newSite(p, live)
	}
	s.routes.Store(r)
	for k, o := range s.origins {
		if _, ok := live[k]; !ok {
			o.stop()
		}
	}
	s.origins = live
}

// Close stops health checks and closes idle origin connections.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.origins {
		o.stop()
	}
	s.origins = map[string]*origin{}
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

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	rec := newRecorder(w)
	defer rec.release()
	req := &request{start: time.Now(), id: s.ids.next()}
	rec.Header().Set("X-Request-Id", req.id)
	s.route(rec, r, req, h.secure)
	if s.cfg.Observer != nil {
		s.cfg.Observer.Request(req.propertyName(), rec.status, time.Since(req.start))
	}
	if s.cfg.AccessLog {
		s.logAccess(rec, r, req)
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
	rt.sites[p].serve(w, r, req)
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
	h := property.HostOnly(hostport)
	if h == "" {
		return "", http.StatusMisdirectedRequest
	}
	n, err := property.Normalize(h)
	if err != nil {
		return "", http.StatusBadRequest
	}
	return n, 0
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

func (s *Server) logAccess(rec *recorder, r *http.Request, req *request) {
	ce := s.access.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	ce.Write(
		zap.String("request_id", req.id),
		zap.String("property", req.propertyName()),
		zap.String("host", r.Host),
		zap.String("method", r.Method),
		zap.String("uri", r.RequestURI),
		zap.String("proto", r.Proto),
		zap.Int("status", rec.status),
		zap.Int64("bytes", rec.bytes),
		zap.Duration("duration", time.Since(req.start)),
		zap.String("origin", req.origin),
		zap.String("remote", r.RemoteAddr),
	)
}

// request is what the proxy knows of one request while serving it.
type request struct {
	start  time.Time
	id     string
	prop   *property.Property
	origin string // the last origin tried
	body   *trackedBody
}

func (r *request) propertyName() string {
	if r.prop == nil {
		return ""
	}
	return r.prop.Name
}

// OriginHealth reports whether each origin of a property is healthy now,
// by URL. File origins are not listed.
func (s *Server) OriginHealth(property string) map[string]bool {
	rt := s.routes.Load()
	p := rt.table.ByName(property)
	if p == nil || rt.sites[p] == nil {
		return nil
	}
	now := time.Now().UnixNano()
	out := map[string]bool{}
	for _, o := range rt.sites[p].origins {
		out[o.name] = o.healthy(now)
	}
	return out
}
