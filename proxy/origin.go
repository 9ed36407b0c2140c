package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// origin is one upstream of a property with its connection pool and health.
// It outlives reloads that do not change its settings.
type origin struct {
	name     string // the URL, for logs and metrics
	key      string // originKey: the origins in service are kept by it
	property string
	weight   int
	url      *url.URL
	prefix   string // the URL's escaped path without its final "/"
	// sync: requests go over pool on the client's goroutine (http
	// origins); else through transport (https, which may be HTTP/2).
	sync      atomic.Bool
	pool      *connPool
	transport *http.Transport   // https origins and health checks
	rt        http.RoundTripper // sends requests on the transport path: transport, or a test's
	files     *fileSite         // a file:// origin's directory
	rest      time.Duration
	log       *zap.Logger
	obs       Observer

	restedUntil atomic.Int64 // unix nanos; passive health
	down        atomic.Bool  // the last active check failed

	done     chan struct{}
	stopOnce sync.Once
	loops    sync.WaitGroup // health checks
}

// originKey identifies an origin's settings: an origin whose key is
// unchanged across a reload is reused with its connections and health.
func originKey(p *property.Property, o property.Origin) string {
	return fmt.Sprintf("%s|%s|%d|%s|%v|%+v", p.Name, o.URL, o.Weight, o.CAFile, p.Timeouts, p.HealthCheck)
}

func newOrigin(s *Server, p *property.Property, o property.Origin) *origin {
	org := &origin{
		name: o.URL.String(), property: p.Name, weight: o.Weight, url: o.URL,
		prefix: strings.TrimSuffix(o.URL.EscapedPath(), "/"),
		rest:   s.cfg.PassiveRest, obs: s.cfg.Observer, done: make(chan struct{}),
		log: s.log.With(zap.String("property", p.Name), zap.String("origin", o.URL.String())),
	}
	if o.IsFile() {
		fs, err := openFileSite(o.Dir)
		if err != nil {
			org.log.Error("file origin unusable", zap.Error(err))
		}
		org.files = fs
		return org
	}
	org.transport = newTransport(p, o, org.log)
	org.rt = org.transport
	org.pool = newPool(p, o, org.transport.TLSClientConfig)
	if co, ok := s.cfg.Observer.(ConnObserver); ok {
		org.pool.onOpen = func() { co.OriginConnOpened(p.Name, org.name) }
	}
	// http origins speak HTTP/1.1: the synchronous path from the start.
	// An https origin goes through the transport until a response shows
	// it speaks HTTP/1.1 only (no h2 in ALPN); then it moves over too.
	org.sync.Store(o.URL.Scheme == "http")
	if org.obs != nil {
		org.obs.OriginHealth(org.property, org.name, true)
	}
	if hc := p.HealthCheck; hc != nil {
		org.loops.Go(func() { org.checkLoop(hc, p.OriginHost) })
	}
	return org
}

// newPool makes the pool of an http or https origin's HTTP/1.1
// connections; https connections offer only http/1.1 in ALPN.
func newPool(p *property.Property, o property.Origin, tlsConf *tls.Config) *connPool {
	d := &net.Dialer{Timeout: p.Timeouts.Connect, KeepAlive: 30 * time.Second}
	port := o.URL.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[o.URL.Scheme]
	}
	addr := net.JoinHostPort(o.URL.Hostname(), port)
	pool := &connPool{idleTTL: p.Timeouts.Idle,
		dial: func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }}
	if o.URL.Scheme == "https" {
		conf := tlsConf.Clone()
		conf.NextProtos = []string{"http/1.1"}
		// The dialer's timeout covers the TCP connect and the handshake.
		td := &tls.Dialer{NetDialer: d, Config: conf}
		pool.dial = func(ctx context.Context) (net.Conn, error) { return td.DialContext(ctx, "tcp", addr) }
	}
	return pool
}

// newTransport returns the tuned transport of one origin.
func newTransport(p *property.Property, o property.Origin, log *zap.Logger) *http.Transport {
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: o.URL.Hostname(), // verify the origin by its own name
	}
	if o.CAFile != "" {
		pool := x509.NewCertPool()
		if b, err := os.ReadFile(o.CAFile); err != nil || !pool.AppendCertsFromPEM(b) {
			log.Error("origin ca_file unreadable; trusting no certificate for this origin (never the system roots)", zap.String("file", o.CAFile), zap.Error(err))
		}
		tlsConf.RootCAs = pool // empty when unreadable: fail closed
	}
	d := &net.Dialer{Timeout: p.Timeouts.Connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:           nil, // never route origin traffic through HTTP_PROXY
		DialContext:     d.DialContext,
		TLSClientConfig: tlsConf,
		// HTTP/2 to https origins multiplexes many client requests over few
		// connections; http origins speak HTTP/1.1.
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   p.Timeouts.Connect,
		ResponseHeaderTimeout: p.Timeouts.ResponseHeader,
		IdleConnTimeout:       p.Timeouts.Idle,
		// The default of 2 idle connections per host makes a busy edge
		// open and close origin connections all the time.
		MaxIdleConnsPerHost:   1024,
		ExpectContinueTimeout: time.Second,
		// Pass Accept-Encoding and compressed bodies through untouched.
		DisableCompression: true,
		ReadBufferSize:     32 << 10,
		WriteBufferSize:    32 << 10,
	}
}

// target points u at this origin, keeping the request's path under the
// origin URL's path, if it has one.
func (o *origin) target(u *url.URL) {
	u.Scheme, u.Host = o.url.Scheme, o.url.Host
	if prefix := strings.TrimSuffix(o.url.Path, "/"); prefix != "" {
		if u.RawPath != "" {
			u.RawPath = o.prefix + u.RawPath
		}
		u.Path = prefix + u.Path
	}
}

func (o *origin) healthy(now int64) bool {
	return !o.down.Load() && o.restedUntil.Load() <= now
}

// failed rests the origin after a failed request (passive health).
func (o *origin) failed(err error) {
	now := time.Now()
	if o.restedUntil.Swap(now.Add(o.rest).UnixNano()) <= now.UnixNano() {
		o.log.Warn("origin failed; resting it", zap.Duration("rest", o.rest), zap.Error(err))
		if o.obs != nil {
			o.obs.OriginHealth(o.property, o.name, false)
		}
	}
}

// stop ends the origin's goroutines and waits for them, and closes its
// idle connections and its directory.
func (o *origin) stop() {
	o.stopOnce.Do(func() {
		close(o.done)
		o.loops.Wait()
		if o.transport != nil {
			o.transport.CloseIdleConnections()
		}
		if o.pool != nil {
			o.pool.close()
		}
		if o.files != nil {
			o.files.close()
		}
	})
}

// checkLoop runs active health checks until the origin is stopped.
func (o *origin) checkLoop(hc *property.HealthCheck, host string) {
	t := time.NewTicker(hc.Interval)
	defer t.Stop()
	for {
		o.check(hc, host)
		select {
		case <-o.done:
			return
		case <-t.C:
		}
	}
}

func (o *origin) check(hc *property.HealthCheck, host string) {
	ctx, cancel := context.WithTimeout(context.Background(), hc.Timeout)
	defer cancel()
	u := *o.url
	u.Path = strings.TrimSuffix(u.Path, "/") + hc.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "edge-health-check")
	ok := false
	resp, err := o.rt.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		ok = resp.StatusCode < 400
		if !ok {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	if wasDown := o.down.Swap(!ok); wasDown == ok {
		if ok {
			o.log.Info("origin healthy again")
		} else {
			o.log.Warn("origin health check failed", zap.String("path", hc.Path), zap.Error(err))
		}
		if o.obs != nil {
			o.obs.OriginHealth(o.property, o.name, ok)
		}
	}
}
