package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/proxy"
	"github.com/edge-cdn/edge/store"
	edgetls "github.com/edge-cdn/edge/tls"
	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// node is one running edge: its store, certificates, properties and
// listeners, wired together.
type node struct {
	cfg    *Config
	log    *zap.Logger
	store  *store.Bolt
	certs  *edgetls.Certs
	tls    *edgetls.Manager
	proxy  *proxy.Server
	table  atomic.Pointer[property.Table]
	reload chan struct{}
}

// readyFunc, when a context carries one, is told the bound addresses once
// the node serves (tests use it to learn the ports the OS picked).
type readyFunc func(addrs listenAddrs)

type listenAddrs struct{ HTTP, HTTPS string }

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
	if cfg.Store.Backend != "bbolt" {
		return fmt.Errorf("store.backend %q is not supported by this build yet; use bbolt", cfg.Store.Backend)
	}

	// Listeners first, so that a busy port fails at once.
	httpLn, err := net.Listen("tcp", cfg.Listen.HTTP)
	if err != nil {
		return fmt.Errorf("listen.http %s: %w", cfg.Listen.HTTP, err)
	}
	defer httpLn.Close()
	httpsLn, err := net.Listen("tcp", cfg.Listen.HTTPS)
	if err != nil {
		return fmt.Errorf("listen.https %s: %w", cfg.Listen.HTTPS, err)
	}
	defer httpsLn.Close()

	st, err := store.OpenBolt(filepath.Join(cfg.DataDir, "edge.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	n := &node{cfg: cfg, log: log, store: st, reload: make(chan struct{}, 1)}
	n.certs = edgetls.NewCerts(st)
	n.tls = edgetls.NewManager(n.certs, log.Named("tls"))
	if err := n.tls.Load(ctx); err != nil {
		return err
	}
	n.proxy = proxy.New(proxy.Config{
		Logger:    log,
		NodeName:  cfg.Node.Name,
		AccessLog: cfg.Log.Access,
		HTTPSPort: cfg.httpsRedirectPort(httpsLn.Addr().(*net.TCPAddr).Port),
	})
	defer n.proxy.Close()
	if err := n.loadProperties(ctx); err != nil {
		return err
	}

	httpSrv := n.httpServer(n.proxy.HTTPHandler())
	httpsSrv := n.httpServer(n.proxy.HTTPSHandler())
	httpsSrv.TLSConfig = n.tls.ServerConfig()
	httpsSrv.Protocols = new(http.Protocols)
	httpsSrv.Protocols.SetHTTP1(true)
	httpsSrv.Protocols.SetHTTP2(true)

	serveErr := make(chan error, 2)
	go func() { serveErr <- httpSrv.Serve(httpLn) }()
	go func() { serveErr <- httpsSrv.ServeTLS(httpsLn, "", "") }()

	watcher := n.watchProperties()
	if watcher != nil {
		defer watcher.Close()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	addrs := listenAddrs{HTTP: httpLn.Addr().String(), HTTPS: httpsLn.Addr().String()}
	log.Info("edge serving", zap.String("http", addrs.HTTP), zap.String("https", addrs.HTTPS),
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
	log.Info("shutting down", zap.Duration("grace", cfg.Limits.ShutdownTimeout.Std()))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Limits.ShutdownTimeout.Std())
	defer cancel()
	shutdown := make(chan error, 2)
	go func() { shutdown <- httpSrv.Shutdown(sctx) }()
	go func() { shutdown <- httpsSrv.Shutdown(sctx) }()
	for range 2 {
		if err := <-shutdown; err != nil {
			log.Warn("requests still in flight at the end of the grace period were cut", zap.Error(err))
			httpSrv.Close()
			httpsSrv.Close()
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

// loadProperties loads the properties at start; an unreadable directory is
// fatal here, while a bad file only is rejected.
func (n *node) loadProperties(ctx context.Context) error {
	t, err := property.LoadDir(n.cfg.PropertiesDir, nil, n.propertyOptions(ctx))
	if err != nil {
		return err
	}
	n.apply(ctx, t)
	return nil
}

// reloadProperties rebuilds the table; on any error the last good table
// keeps serving.
func (n *node) reloadProperties(ctx context.Context) {
	t, err := property.LoadDir(n.cfg.PropertiesDir, n.table.Load(), n.propertyOptions(ctx))
	if err != nil {
		n.log.Error("property reload failed; the last good properties keep serving", zap.Error(err))
		return
	}
	n.apply(ctx, t)
}

func (n *node) propertyOptions(ctx context.Context) property.Options {
	return property.Options{
		MaxNamesPerCertificate: n.cfg.maxNamesPerOrder(),
		CertificateType: func(name string) (string, bool) {
			c, err := n.certs.Get(ctx, name)
			if err != nil {
				return "", false
			}
			return c.Type, true
		},
	}
}

// apply makes t the serving table: bootstrap certificates first, so that
// every property with a certificate name can complete a handshake, then the
// handshake index and the proxy.
func (n *node) apply(ctx context.Context, t *property.Table) {
	for _, r := range t.Rejected() {
		fields := []zap.Field{zap.String("file", r.File), zap.Errors("errors", r.Errors)}
		if r.Serving != nil {
			fields = append(fields, zap.String("property", r.Serving.Name), zap.Bool("last_good_version_serving", true))
		}
		n.log.Warn("property rejected", fields...)
	}
	made, err := n.certs.Bootstrap(ctx, t)
	for _, c := range made {
		n.log.Info("self-signed bootstrap certificate created", zap.String("certificate", c.Name),
			zap.Strings("names", c.SubjectNames), zap.String("auto_renew", c.AutoRenew))
	}
	if err != nil {
		n.log.Error("bootstrap certificates", zap.Error(err))
	}
	n.tls.SetProperties(t)
	n.proxy.Update(t)
	n.table.Store(t)
	n.log.Info("properties loaded", zap.Int("properties", len(t.Properties())), zap.Int("rejected", len(t.Rejected())))
}

// watchProperties asks for a reload when a file of properties_dir changes,
// after a short quiet time so that an editor's save is one reload.
func (n *node) watchProperties() *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(n.cfg.PropertiesDir)
	}
	if err != nil {
		n.log.Warn("cannot watch properties_dir; reload with SIGHUP", zap.Error(err))
		if w != nil {
			w.Close()
		}
		return nil
	}
	go func() {
		const quiet = 200 * time.Millisecond
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					timer.Stop()
					return
				}
				if property.IsPropertyFile(ev.Name) {
					timer.Reset(quiet)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				n.log.Warn("watching properties_dir", zap.Error(err))
			case <-timer.C:
				select {
				case n.reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	return w
}
