package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	edgeacme "github.com/edge-cdn/edge/acme"
	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/metrics"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/proxy"
	"github.com/edge-cdn/edge/renew"
	"github.com/edge-cdn/edge/store"
	edgetls "github.com/edge-cdn/edge/tls"
	"go.uber.org/zap"
)

// Options are what the command line gives the daemon besides its config.
type Options struct {
	Stderr  io.Writer // logs
	Version string    // the binary's version, for logs and webhooks
}

// node is one running edge: its store, certificates, properties and
// listeners, wired together.
type node struct {
	cfg     *config.Config
	opts    Options
	log     *zap.Logger
	access  *zap.Logger
	store   store.Store
	certs   *cert.Certs
	tls     *edgetls.Manager
	proxy   *proxy.Server
	events  *events.Log
	metrics *metrics.Metrics
	cache   *cache.Cache
	purger  *purger
	renewer *renew.Renewer
	table   atomic.Pointer[property.Table]
	reload  chan struct{}
	// unapplied is set when a reload could not write the certificates
	// its properties need (store down): the store's return reloads again.
	unapplied atomic.Bool
	listening atomic.Bool
	health    storeHealth
	rejects   *rejects
	acme      *edgeacme.Client // nil when ACME is off
	tickets   *edgetls.TicketKeys
	dash      dashboard // the dashboard's history and fleet record (dashboard.go)
}

// listeners are the node's three bound sockets.
type listeners struct{ http, https, admin net.Listener }

// Run runs the node until ctx is cancelled (SIGINT, SIGTERM), then stops
// accepting, lets requests in flight finish within limits.shutdown_timeout,
// closes the store and returns nil.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	log, err := newLogger(cfg.Log, opts.Stderr)
	if err != nil {
		return err
	}
	log = log.With(zap.String("node", cfg.Node.Name))
	defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
	access, stopAccess := newAccessLogger(cfg.Log, opts.Stderr)
	defer stopAccess()
	govern := tuneGC(cfg.Limits.MemoryLimitBytes, cfg.Cache.MemoryBytes)

	// Listeners first, so that a busy port fails at once.
	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	defer lns.close()
	token, err := adminToken(cfg.Admin.TokenFile)
	if err != nil {
		return err
	}
	warnExposures(log, cfg, lns.admin.Addr())
	st, err := OpenStore(ctx, cfg, log.Named("store"))
	if err != nil {
		return err
	}
	defer st.Close()

	n := &node{cfg: cfg, opts: opts, log: log, store: st, reload: make(chan struct{}, 1),
		access: access.Named("access").With(zap.String("node", cfg.Node.Name))}
	stop, err := n.start(ctx, lns)
	defer stop()
	if err != nil {
		return err
	}
	defer n.startMemoryGovernor(ctx, govern)()
	defer n.startDashboard(ctx)()
	servers := n.servers(token)
	serveErr := n.serve(servers, lns)
	n.listening.Store(true)
	renewCtx, stopRenewals := context.WithCancel(context.WithoutCancel(ctx))
	renewDone := n.startRenewals(renewCtx)
	defer func() { stopRenewals(); renewDone() }()

	if w := n.watchProperties(); w != nil {
		defer w.Close()
	}
	n.announceReady(ctx, lns)
	runErr := n.loop(ctx, serveErr)

	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	n.listening.Store(false)
	stopRenewals() // an order under way is abandoned; the next start retries it
	n.shutdown(ctx, servers)
	return runErr
}

// listen binds the three listeners.
func listen(cfg *config.Config) (*listeners, error) {
	var lns [3]net.Listener
	for i, l := range []struct{ key, addr string }{{"listen.http", cfg.Listen.HTTP}, {"listen.https", cfg.Listen.HTTPS}, {"listen.admin", cfg.Listen.Admin}} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, prev := range lns[:i] {
				prev.Close()
			}
			return nil, fmt.Errorf("%s %s: %w", l.key, l.addr, err)
		}
		lns[i] = ln
	}
	return &listeners{http: lns[0], https: lns[1], admin: lns[2]}, nil
}

func (l *listeners) close() {
	l.http.Close()
	l.https.Close()
	l.admin.Close()
}

// start builds the node's parts in order: certificates and their handshake
// index, metrics, events and webhooks, ACME, the renewer, the proxy, then
// the properties. The returned function stops what was started.
func (n *node) start(ctx context.Context, lns *listeners) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	n.certs = cert.NewCerts(n.store)
	n.tls = edgetls.NewManager(n.certs, n.log.Named("tls"))
	stops = append(stops, n.tls.Close) // stops the warm-up and waits for it
	n.metrics = metrics.New(n.tls.Each)
	n.tls.OnHandshake = n.metrics.Handshake
	if err := n.tls.Load(ctx); err != nil {
		return stop, err
	}
	n.startTickets(ctx)
	if n.events, err = events.Open(ctx, n.store, events.Options{Node: n.cfg.Node.Name, Logger: n.log.Named("events")}); err != nil {
		return stop, fmt.Errorf("events: %w", err)
	}
	n.metrics.EventQueue(n.events.Pending)
	stops = append(stops, func() {
		// The flusher stores what is queued while the store answers, for
		// at most a few seconds: shutdown must not wait on an outage.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := n.events.Close(ctx); err != nil {
			n.log.Warn("closing the event log", zap.Error(err))
		}
	})
	stops = append(stops, n.events.StartWebhooks(webhooks(n.cfg.Notify.Webhooks), events.DeliveryOptions{
		UserAgent: "edge/" + n.opts.Version, OnDelivery: n.metrics.WebhookDelivery,
	}))
	acme, err := n.newACME(lns.http)
	if err != nil {
		return stop, err
	}
	if acme != nil {
		stops = append(stops, acme.Close)
		n.acme = acme
		n.rescanChallenges(ctx)
	}
	n.renewer = n.newRenewer(acme)
	if err := n.openCache(ctx); err != nil {
		return stop, err
	}
	stops = append(stops, func() { n.cache.Close() })
	pcfg := proxy.Config{
		Logger:       n.log,
		NodeName:     n.cfg.Node.Name,
		AccessLog:    n.cfg.Log.Access,
		AccessLogger: n.access,
		HTTPSPort:    n.cfg.HTTPSRedirectPort(lns.https.Addr().(*net.TCPAddr).Port),
		Observer:     observer{n.metrics},
		Cache:        n.cache,
	}
	if acme != nil {
		pcfg.Challenge = acme
	}
	pcfg.Limits = proxy.Limits{MaxHeaderBytes: n.cfg.Limits.MaxHeaderBytes, MaxURIBytes: n.cfg.Limits.MaxURIBytes}
	n.rejects = &rejects{log: n.log.Named("http"), count: n.metrics.ServerRejected}
	if n.cfg.Log.Access {
		n.rejects.access = n.access
	}
	n.proxy = proxy.New(pcfg)
	stops = append(stops, n.proxy.Close)
	if err := n.loadProperties(ctx); err != nil {
		return stop, err
	}
	n.replayPurges(ctx)
	return stop, nil
}

// startRenewals runs the renewal loop and the watches that follow the
// store; the returned function waits for them after ctx is cancelled.
func (n *node) startRenewals(ctx context.Context) (wait func()) {
	const watchers = 6
	done := make(chan struct{}, watchers)
	go func() {
		defer func() { done <- struct{}{} }()
		if !n.cfg.Renewal.Enabled {
			n.log.Info("renewal.enabled is false: this node orders and renews no certificate")
			return
		}
		n.renewer.Run(ctx)
	}()
	go func() { defer func() { done <- struct{}{} }(); n.watchCertificates(ctx) }()
	go func() { defer func() { done <- struct{}{} }(); n.watchStore(ctx) }()
	go func() { defer func() { done <- struct{}{} }(); n.purger.watch(ctx) }()
	go func() { defer func() { done <- struct{}{} }(); n.watchChallenges(ctx) }()
	go func() { defer func() { done <- struct{}{} }(); n.tickets.Run(ctx, ticketSyncInterval) }()
	return func() {
		for range watchers {
			<-done
		}
	}
}

// announceReady logs the bound addresses and tells systemd and the tests.
func (n *node) announceReady(ctx context.Context, lns *listeners) {
	addrs := Addrs{HTTP: lns.http.Addr().String(), HTTPS: lns.https.Addr().String(), Admin: lns.admin.Addr().String()}
	n.log.Info("edge serving", zap.String("http", addrs.HTTP), zap.String("https", addrs.HTTPS), zap.String("admin", addrs.Admin),
		zap.Int("properties", len(n.table.Load().Properties())), zap.String("version", n.opts.Version))
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	if fn, ok := ctx.Value(readyKey{}).(func(Addrs)); ok {
		fn(addrs)
	}
}

// loop serves until ctx ends or a server stops, reloading properties on
// SIGHUP and on file changes.
func (n *node) loop(ctx context.Context, serveErr <-chan error) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-serveErr:
			return fmt.Errorf("server stopped: %w", err)
		case <-hup:
			n.log.Info("SIGHUP: reloading properties")
			n.reloadProperties(ctx)
		case <-n.reload:
			n.reloadProperties(ctx)
		}
	}
}

// shutdown lets requests in flight finish within limits.shutdown_timeout,
// then cuts the rest.
func (n *node) shutdown(ctx context.Context, servers []*http.Server) {
	grace := n.cfg.Limits.ShutdownTimeout.Std()
	n.log.Info("shutting down", zap.Duration("grace", grace))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	done := make(chan error, len(servers))
	for _, s := range servers {
		go func() { done <- s.Shutdown(sctx) }()
	}
	for range servers {
		if err := <-done; err != nil {
			n.log.Warn("requests still in flight at the end of the grace period were cut", zap.Error(err))
			for _, s := range servers {
				s.Close()
			}
		}
	}
	n.log.Info("stopped")
}

// openCache opens the shared cache, its disk tier indexed.
func (n *node) openCache(ctx context.Context) error {
	c := n.cfg.Cache
	var err error
	n.cache, err = cache.New(cache.Config{MemorySize: c.MemoryBytes, DiskSize: c.DiskBytes, Dir: c.Dir,
		Logger: n.log, Registerer: n.metrics.Registerer()})
	if err != nil {
		return err
	}
	n.purger = &purger{cache: n.cache, node: n.cfg.Node.Name, log: n.log.Named("cache"), now: time.Now,
		served: func(name string) bool { return n.table.Load().ByName(name) != nil }}
	if e, ok := n.store.(*store.Etcd); ok {
		n.purger.fleet = e
	}
	return nil
}

// observer gives the proxy the node's metrics, with the per-property ones
// resolved once per routing update.
type observer struct{ *metrics.Metrics }

var (
	_ proxy.PropertyObserver = observer{}
	_ proxy.ConnObserver     = observer{}
)

func (o observer) ForProperty(property string) proxy.SiteObserver {
	return o.Metrics.ForProperty(property)
}

// replayPurges applies the purges the fleet made while this node was away,
// once the properties are known (purge keys follow their query settings)
// and before anything serves from the disk tier.
func (n *node) replayPurges(ctx context.Context) {
	if err := n.purger.replay(ctx); err != nil {
		// Serving from a disk tier that may hold purged objects is worse
		// than starting cold.
		n.log.Error("cannot read the fleet's purges; the cache starts empty", zap.Error(err))
		n.cache.Purge(cache.Purge{All: true})
	}
}
