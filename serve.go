package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/metrics"
	"github.com/edge-cdn/edge/proxy"
	"github.com/edge-cdn/edge/store"
	edgetls "github.com/edge-cdn/edge/tls"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// readyFunc, when a context carries one, is told the bound addresses once
// the node serves (tests use it to learn the ports the OS picked).
type readyFunc func(addrs listenAddrs)

type listenAddrs struct{ HTTP, HTTPS, Admin string }

type readyKey struct{}

func withReady(ctx context.Context, fn readyFunc) context.Context {
	return context.WithValue(ctx, readyKey{}, fn)
}

// serve runs the node until ctx is cancelled (SIGINT, SIGTERM), then stops
// accepting, lets requests in flight finish within limits.shutdown_timeout,
// closes the store and returns nil.
func serve(ctx context.Context, file string, stderr io.Writer) error {
	cfg, errs := loadConfig(file)
	if len(errs) > 0 {
		printProblems(stderr, errs)
		return reportedError{fmt.Errorf("config %s has %d problems", file, len(errs))}
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	log = log.With(zap.String("node", cfg.Node.Name))
	defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
	access, stopAccess := newAccessLogger(cfg.Log, stderr)
	defer stopAccess()
	access = access.Named("access").With(zap.String("node", cfg.Node.Name))
	tuneGC()

	// Listeners first, so that a busy port fails at once.
	var lns [3]net.Listener
	for i, l := range []struct{ key, addr string }{{"listen.http", cfg.Listen.HTTP}, {"listen.https", cfg.Listen.HTTPS}, {"listen.admin", cfg.Listen.Admin}} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("%s %s: %w", l.key, l.addr, err)
		}
		defer ln.Close()
		lns[i] = ln
	}
	httpLn, httpsLn, adminLn := lns[0], lns[1], lns[2]

	token, err := adminToken(cfg.Admin.TokenFile)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, log.Named("store"))
	if err != nil {
		return err
	}
	defer st.Close()

	n := &node{cfg: cfg, log: log, store: st, reload: make(chan struct{}, 1)}
	n.certs = cert.NewCerts(st)
	n.tls = edgetls.NewManager(n.certs, log.Named("tls"))
	n.metrics = metrics.New(n.tls.Each)
	n.tls.OnHandshake = n.metrics.Handshake
	if err := n.tls.Load(ctx); err != nil {
		return err
	}
	if n.events, err = events.Open(ctx, st, events.Options{Node: cfg.Node.Name, Logger: log.Named("events")}); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	stopWebhooks := n.events.StartWebhooks(webhooks(cfg.Notify.Webhooks), events.DeliveryOptions{
		UserAgent: "edge/" + version, OnDelivery: n.metrics.WebhookDelivery,
	})
	defer stopWebhooks()
	acme, err := n.newACME(httpLn)
	if err != nil {
		return err
	}
	if acme != nil {
		defer acme.Close()
	}
	n.renewer = n.newRenewer(acme)
	pcfg := proxy.Config{
		Logger:       log,
		NodeName:     cfg.Node.Name,
		AccessLog:    cfg.Log.Access,
		AccessLogger: access,
		HTTPSPort:    cfg.httpsRedirectPort(httpsLn.Addr().(*net.TCPAddr).Port),
		Observer:     n.metrics,
	}
	if acme != nil {
		pcfg.Challenge = acme
	}
	n.proxy = proxy.New(pcfg)
	defer n.proxy.Close()
	if err := n.loadProperties(ctx); err != nil {
		return err
	}
	renewCtx, stopRenewals := context.WithCancel(context.WithoutCancel(ctx))
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		if !cfg.Renewal.Enabled {
			log.Info("renewal.enabled is false: this node orders and renews no certificate")
			return
		}
		n.renewer.Run(renewCtx)
	}()
	defer func() { stopRenewals(); <-renewDone }()
	go n.watchCertificates(renewCtx)

	var listening atomic.Bool
	health := &storeHealth{}
	var backup func(io.Writer) (int64, error)
	if b, ok := st.(*store.Bolt); ok {
		backup = b.WriteTo
	}
	servers := []*http.Server{
		n.httpServer(n.proxy.HTTPHandler()),
		n.httpServer(n.proxy.HTTPSHandler()),
		n.httpServer(admin.Handler(admin.Config{
			Token: token, Certs: n.certs, Properties: n.table.Load, Events: n.events, Issuer: n.renewer,
			Metrics: n.metrics.Handler(), Backup: backup, OriginHealth: n.proxy.OriginHealth,
			Logger: log.Named("admin"), Ready: n.readiness(&listening), Degraded: n.degraded(health),
		})),
	}
	httpsSrv := servers[1]
	httpsSrv.TLSConfig = n.tls.ServerConfig()
	httpsSrv.Protocols = new(http.Protocols)
	httpsSrv.Protocols.SetHTTP1(true)
	httpsSrv.Protocols.SetHTTP2(true)

	serveErr := make(chan error, len(servers))
	go func() { serveErr <- servers[0].Serve(httpLn) }()
	go func() { serveErr <- httpsSrv.ServeTLS(httpsLn, "", "") }()
	go func() { serveErr <- servers[2].Serve(adminLn) }()
	listening.Store(true)
	go n.watchStore(renewCtx, health)

	if w := n.watchProperties(); w != nil {
		defer w.Close()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	addrs := listenAddrs{HTTP: httpLn.Addr().String(), HTTPS: httpsLn.Addr().String(), Admin: adminLn.Addr().String()}
	log.Info("edge serving", zap.String("http", addrs.HTTP), zap.String("https", addrs.HTTPS), zap.String("admin", addrs.Admin),
		zap.Int("properties", len(n.table.Load().Properties())), zap.String("version", version))
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	if fn, ok := ctx.Value(readyKey{}).(readyFunc); ok {
		fn(addrs)
	}

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-serveErr:
			runErr = fmt.Errorf("server stopped: %w", err)
			break loop
		case <-hup:
			log.Info("SIGHUP: reloading properties")
			n.reloadProperties(ctx)
		case <-n.reload:
			n.reloadProperties(ctx)
		}
	}

	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	listening.Store(false)
	stopRenewals() // an order under way is abandoned; the next start retries it
	log.Info("shutting down", zap.Duration("grace", cfg.Limits.ShutdownTimeout.Std()))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Limits.ShutdownTimeout.Std())
	defer cancel()
	shutdown := make(chan error, len(servers))
	for _, s := range servers {
		go func() { shutdown <- s.Shutdown(sctx) }()
	}
	for range servers {
		if err := <-shutdown; err != nil {
			log.Warn("requests still in flight at the end of the grace period were cut", zap.Error(err))
			for _, s := range servers {
				s.Close()
			}
		}
	}
	log.Info("stopped")
	return runErr
}

func (n *node) httpServer(h http.Handler) *http.Server {
	l := n.cfg.Limits
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout.Std(),
		IdleTimeout:       l.IdleTimeout.Std(),
		MaxHeaderBytes:    l.MaxHeaderBytes,
		// Handshake failures and malformed requests from the internet are
		// routine: keep them out of the error level.
		ErrorLog: stdLogAt(n.log.Named("http"), zapcore.DebugLevel),
	}
}

// readiness reports /readyz's checks: properties loaded, listeners up.
func (n *node) readiness(listening *atomic.Bool) func(ctx context.Context) map[string]error {
	return func(ctx context.Context) map[string]error {
		checks := map[string]error{"properties": nil, "listeners": nil}
		if n.table.Load() == nil {
			checks["properties"] = errors.New("not loaded yet")
		}
		if !listening.Load() {
			checks["listeners"] = errors.New("not accepting")
		}
		return checks
	}
}

// degraded reports what works less well without making the node unready:
// an unreachable store (the node serves what it has; renewals pause).
func (n *node) degraded(h *storeHealth) func(ctx context.Context) map[string]error {
	return func(ctx context.Context) map[string]error {
		err := h.err()
		if err == nil {
			if p, ok := n.store.(*store.Bolt); ok {
				err = p.Ping(ctx)
			}
		}
		return map[string]error{"store": err}
	}
}

func webhooks(in []WebhookConfig) []events.Webhook {
	out := make([]events.Webhook, len(in))
	for i, w := range in {
		out[i] = events.Webhook{URL: w.URL, Secret: w.Secret, Events: w.Events}
	}
	return out
}
