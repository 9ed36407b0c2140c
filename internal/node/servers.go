package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/h1"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// server is what the node needs of an HTTP server: Go's *http.Server, or
// *h1.Server on the HTTP port when listen.http1_server is "edge".
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
	SetKeepAlivesEnabled(bool)
}

// servers builds the HTTP, HTTPS and admin servers, in that order.
func (n *node) servers(token string) []server {
	var backup func(io.Writer) (int64, error)
	if n.slot != nil {
		backup = n.slot.WriteTo
	}
	adminHandler := admin.Handler(admin.Config{
		Token: token, Certs: n.certs, Properties: n.table.Load, Events: n.events, Issuer: n.renewer,
		Metrics: n.metrics.Handler(), Backup: backup, OriginHealth: n.proxy.OriginHealth,
		Logger: n.log.Named("admin"), Ready: n.readiness, Degraded: n.degraded, Cache: n.purger,
		History: n.dash.history, Fleet: n.dash.fleetNodes(),
	})
	// The HTTPS port's MaxHeaderBytes is set so that HTTP/2 advertises and
	// enforces SETTINGS_MAX_HEADER_LIST_SIZE = limits.max_header_bytes
	// (Go adds 320); HTTP/1.1 over TLS may then read a little more than the
	// limit, and the proxy refuses such a head itself (431, proxy/headers.go).
	httpsHandler := n.metrics.ByProtocol(n.proxy.HTTPSHandler())
	httpsSrv := n.httpServer(httpsHandler, h2HeaderSlop)
	httpsSrv.TLSConfig = n.tls.ServerConfig()
	n.tickets.Apply(httpsSrv.TLSConfig)
	httpsSrv.Protocols = new(http.Protocols)
	httpsSrv.Protocols.SetHTTP1(true)
	httpsSrv.Protocols.SetHTTP2(true)
	// 16 KiB, the protocol's initial value, instead of Go's 1 MiB: a peer's
	// frames stay small (h2spec 4.2/3; nginx and Caddy advertise the same).
	httpsSrv.HTTP2 = &http.HTTP2Config{MaxReadFrameSize: 16 << 10}
	n.rejects.watchTLS(httpsSrv)
	if err := serveH2Batched(httpsSrv, !n.opts.h2NoInline); err != nil {
		n.log.Warn("HTTP/2 with batched writes is off; net/http's own HTTP/2 server serves", zap.Error(err))
	}
	var https server = httpsSrv
	var front *tlsFront
	if n.cfg.Listen.HTTP1Server != config.HTTP1ServerGo {
		// HTTP/2 stays with Go's server; HTTP/1.1 over TLS goes to Edge's
		// front, whose bound on the raw head is exact.
		front = newTLSFront(httpsSrv, n.h1Server(nil))
		front.wrap = n.rejects.tlsConn
		https = front
	}
	servers := []server{n.plainServer(n.metrics.ByProtocol(n.proxy.HTTPHandler())), https, n.httpServer(n.upgradeGate(adminHandler), h1HeaderSlop)}
	n.drain = newDrainer()
	for _, srv := range servers {
		n.drain.watch(srv)
	}
	if front != nil {
		front.shareHooks(httpsHandler) // HTTP/1.1 runs on the connection's goroutine: no stack to grow per request
	}
	httpsSrv.Handler = streamStack(httpsSrv.Handler) // outermost: grows the stack with the fewest frames on it
	return servers
}

// What Go's server adds to MaxHeaderBytes: HTTP/1 reads MaxHeaderBytes
// plus its 4096-byte read buffer before it answers 431, so with this taken
// off, limits.max_header_bytes is the exact bound on a raw HTTP/1.1 head;
// HTTP/2's header list limit is MaxHeaderBytes plus 10 fields of 32 bytes.
const (
	h1HeaderSlop = 4096
	h2HeaderSlop = 320
)

// serve starts the servers on their listeners, and HTTP/3 when h3 is
// not nil; the channel gets the error of each server that stops.
func (n *node) serve(servers []server, lns *listeners, h3 *http3Server) <-chan error {
	errs := make(chan error, len(servers)+1)
	go func() { errs <- servers[0].Serve(n.rejects.listener(lns.http)) }()
	go func() {
		if srv, ok := servers[1].(*http.Server); ok {
			errs <- srv.ServeTLS(lns.https, "", "")
			return
		}
		errs <- servers[1].Serve(lns.https)
	}()
	go func() { errs <- servers[2].Serve(lns.admin) }()
	if h3 != nil {
		go func() { errs <- h3.serve() }()
	}
	return errs
}

// plainServer is the HTTP port's server: Edge's own HTTP/1.x front
// (internal/h1) unless listen.http1_server is "go". Both bound the raw
// request head at exactly limits.max_header_bytes and answer what they
// refuse with the same bytes (the rejects counter reads them). The HTTPS
// port's is a tlsFront then (HTTP/1.1 on internal/h1, HTTP/2 on Go's).
func (n *node) plainServer(h http.Handler) server {
	if n.cfg.Listen.HTTP1Server == config.HTTP1ServerGo {
		return n.httpServer(h, h1HeaderSlop)
	}
	return n.h1Server(h)
}

func (n *node) h1Server(h http.Handler) *h1.Server {
	l := n.cfg.Limits
	return &h1.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout.Std(),
		IdleTimeout:       l.IdleTimeout.Std(),
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          stdLogAt(n.log.Named("http"), zapcore.DebugLevel),
	}
}

func (n *node) httpServer(h http.Handler, headerSlop int) *http.Server {
	l := n.cfg.Limits
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout.Std(),
		IdleTimeout:       l.IdleTimeout.Std(),
		MaxHeaderBytes:    l.MaxHeaderBytes - headerSlop, // config.MinHeaderBytes keeps it > 0
		// Handshake failures and malformed requests from the internet are
		// routine: keep them out of the error level.
		ErrorLog: stdLogAt(n.log.Named("http"), zapcore.DebugLevel),
	}
}

// readiness reports /readyz's checks: properties loaded, listeners up.
func (n *node) readiness(ctx context.Context) map[string]error {
	checks := map[string]error{"properties": nil, "listeners": nil}
	if n.table.Load() == nil {
		checks["properties"] = errors.New("not loaded yet")
	}
	if !n.listening.Load() {
		checks["listeners"] = errors.New("not accepting")
	}
	return checks
}

// degraded reports what works less well without making the node unready:
// an unreachable store (the node serves what it has; renewals pause).
func (n *node) degraded(ctx context.Context) map[string]error {
	err := n.health.err()
	if err == nil {
		if n.slot != nil {
			err = n.slot.Ping(ctx)
		}
	}
	checks := map[string]error{"store": err}
	if n.cache != nil {
		if e := n.cache.DiskError(); e != "" {
			checks["cache"] = fmt.Errorf("the disk tier failed its last write: %s (objects stay in memory)", e)
		} else {
			checks["cache"] = nil
		}
	}
	return checks
}

func webhooks(in []config.WebhookConfig) []events.Webhook {
	out := make([]events.Webhook, len(in))
	for i, w := range in {
		out[i] = events.Webhook{URL: w.URL, Secret: w.Secret, Events: w.Events}
	}
	return out
}
