package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
	// Handover, when set, hands the listening sockets to a new binary on
	// SIGUSR2 (see Handover); nil: SIGUSR2 is refused.
	Handover *Handover

	// h2NoInline: HTTP/2 answers every request on a goroutine of its
	// own, as x/net does (tests compare the inline path with it).
	h2NoInline bool
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
	handover  *Handover
	slot      *boltSlot // the bbolt store, which an upgrade hands over; nil on etcd
	// upgrading is set while a binary upgrade has the store: admin
	// requests that need it answer 503, reloads wait.
	upgrading atomic.Bool
	// stopRenewals stops and waits for the renewals and store watches;
	// nil while they are paused. Only Run's goroutine uses it.
	stopRenewals func()
	drain        *drainer    // the servers' connections, for the end of an upgrade
	clock        *startClock // the start's stages; nil in tests that build a node by hand
	// lastGoodSaved is set when the last save of the last good property
	// versions succeeded: a reload then saves only its changes.
	lastGoodSaved atomic.Bool
	// snapshots hands the table in service to the snapshot writer
	// (startSnapshots); nil before it runs.
	snapshots chan *property.Table
	// startCertificates are the certificate summaries read by the start's
	// handshake index, for the first property load; nil after it.
	startCertificates map[string]cert.Summary
	dash              dashboard // the dashboard's history and fleet record (dashboard.go)
}

// listeners are the node's three bound sockets, and the UDP socket of
// HTTP/3 (nil when off).
type listeners struct {
	http, https, admin net.Listener
	h3                 net.PacketConn
}

// Run runs the node until ctx is cancelled (SIGINT, SIGTERM) or, on
// SIGUSR2 with opts.Handover, a new process of the binary at the path has
// taken its sockets over and is ready (see Handover); it then stops
// accepting, lets requests in flight finish within limits.shutdown_timeout,
// closes the store and returns nil.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	log, err := newLogger(cfg.Log, opts.Stderr)
	if err != nil {
		return err
	}
	log = log.With(zap.String("node", cfg.Node.Name))
	defer log.Sync() //nolint:errcheck // stderr sync errors are not actionable
	clock := newStartClock(log)
	stopProfile := startCPUProfile(log)
	defer stopProfile()
	clock.onStage, _ = ctx.Value(stageHookKey{}).(func(string))
	// Every signal the node handles is registered first, long before it
	// announces readiness: a SIGHUP that arrives once systemd (or a test)
	// has been told "ready" must reload, and Go's default action for an
	// unhandled SIGHUP ends the process. One sent during startup waits in
	// the channel and reloads once the loop runs.
	sigs := make(chan os.Signal, len(handledSignals)) // a SIGHUP does not crowd out a SIGUSR2
	signal.Notify(sigs, handledSignals...)
	defer signal.Stop(sigs)
	access, stopAccess := newAccessLogger(cfg.Log, opts.Stderr)
	defer stopAccess()
	govern := tuneGC(cfg.Limits.MemoryLimitBytes, cfg.Cache.MemoryBytes)

	// Listeners first, so that a busy port fails at once.
	lns, err := listen(cfg, opts.Handover)
	if err != nil {
		return err
	}
	defer lns.close()
	if err := lns.listenHTTP3(cfg, opts.Handover); err != nil {
		return err
	}
	defer lns.closeHTTP3()
	clock.stage("listeners", zap.Bool("inherited", opts.Handover.inherited()))
	var probe *startProbe
	if !opts.Handover.inherited() {
		probe = startStartProbe(lns.admin, clock)
		defer probe.stop()
	}
	token, err := adminToken(cfg.Admin.TokenFile)
	if err != nil {
		return err
	}
	warnExposures(log, cfg, lns.admin.Addr())
	st, err := OpenStore(ctx, cfg, log.Named("store"))
	if err != nil {
		return err
	}
	clock.stage("store", zap.String("backend", cfg.Store.Backend))
	n := &node{cfg: cfg, opts: opts, log: log, store: st, reload: make(chan struct{}, 1),
		access: access.Named("access").With(zap.String("node", cfg.Node.Name)), handover: opts.Handover, clock: clock}
	if b, ok := st.(*store.Bolt); ok {
		n.slot = newBoltSlot(b)
		n.store = n.slot
	}
	defer n.store.Close()
	stop, err := n.start(ctx, lns)
	defer stop()
	if err != nil {
		return err
	}
	n.releaseStoreMapping() // the start read every certificate record
	defer n.startMemoryGovernor(ctx, govern)()
	defer startGCPacer()() // after the start: a large start-up keeps GOGC 200 (issue 22)
	defer n.startDashboard(ctx)()
	servers := n.servers(token)
	h3, err := n.http3Server(lns)
	if err != nil {
		return err
	}
	probe.stop()
	serveErr := n.serve(servers, lns, h3)
	n.listening.Store(true)
	n.resumeRenewals(ctx)
	defer n.pauseRenewals()

	if w := n.watchProperties(); w != nil {
		defer w.Close()
	}
	n.announceReady(ctx, lns)
	stopProfile()
	// Once serving, not before: reading every certificate version into
	// memory took a fifth of the CPU of the start; until it reaches a
	// certificate, its first handshake loads it.
	n.tls.Warm()
	// Once serving, not before (cmd/bench -properties, 100,000 files on a
	// first start: 4.7 s to store the files' last good versions).
	n.saveLastGood(context.WithoutCancel(ctx), n.table.Load()) // even if told to stop already
	defer n.startSnapshots()()
	n.offerSnapshot(n.table.Load())
	if ps := len(n.table.Load().Properties()); ps >= 1000 {
		releaseStartGarbage(ps)
		n.releaseStoreMapping()
	}
	_ = releaseBinaryPages() // the start's code and tables: best effort
	runErr := n.loop(ctx, serveErr, sigs)
	upgraded := errors.Is(runErr, errUpgraded)
	if upgraded {
		// The new process is ready and told systemd its PID: this one
		// only stops accepting and finishes its requests.
		runErr = nil
	} else {
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
		defer n.handover.removePIDFile()
	}
	n.listening.Store(false)
	n.pauseRenewals() // an order under way is abandoned; the next start retries it
	n.shutdown(ctx, servers, lns, h3, upgraded)
	return runErr
}

// listen binds the three listeners, or takes them from the process an
// upgrade replaces (h).
func listen(cfg *config.Config, h *Handover) (*listeners, error) {
	var lns [3]net.Listener
	for i, l := range []struct{ key, addr string }{{"listen.http", cfg.Listen.HTTP}, {"listen.https", cfg.Listen.HTTPS}, {"listen.admin", cfg.Listen.Admin}} {
		ln, err := h.Listen(l.addr)
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
	n.tls.OnWarm = func(versions int) {
		if versions >= 1000 {
			// The warm-up's garbage too (decoded records), as the start's.
			releaseStartGarbage(versions)
			n.releaseStoreMapping()
		}
		// It ends after readiness: the code it ran, once, as the start's.
		_ = releaseBinaryPages()
	}
	// The one pass over the certificate records: the handshake index,
	// and what the properties' load needs of them (certificatesByName).
	known := map[string]cert.Summary{}
	if err := n.tls.LoadCold(ctx, func(s cert.Summary) { known[s.Name] = s }); err != nil {
		return stop, err
	}
	n.startCertificates = known
	certs := 0
	n.tls.Each(func(string, time.Time) { certs++ })
	n.clock.stage("certificates", zap.Int("certificates", certs))
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
	n.clock.stage("events and ACME")
	if err := n.openCache(ctx); err != nil {
		return stop, err
	}
	stops = append(stops, func() { n.cache.Close() })
	n.clock.stage("cache", zap.Int64("disk_bytes", n.cfg.Cache.DiskBytes))
	pcfg := proxy.Config{
		Logger:       n.log,
		NodeName:     n.cfg.Node.Name,
		AccessLog:    n.cfg.Log.Access,
		AccessLogger: n.access,
		HTTPSPort:    n.cfg.HTTPSRedirectPort(lns.https.Addr().(*net.TCPAddr).Port),
		HTTP3Port:    http3Port(n.cfg, lns),
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
	n.clock.stage("properties", zap.Int("properties", len(n.table.Load().Properties())))
	n.replayPurges(ctx)
	n.clock.stage("purges replayed")
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
	if lns.h3 != nil {
		addrs.HTTP3 = lns.h3.LocalAddr().String()
	}
	n.log.Info("edge serving", zap.String("http", addrs.HTTP), zap.String("https", addrs.HTTPS), zap.String("admin", addrs.Admin),
		zap.String("http3", addrs.HTTP3),
		zap.Int("properties", len(n.table.Load().Properties())), zap.String("version", n.opts.Version),
		zap.Int("pid", os.Getpid()), zap.Bool("upgrade", n.handover.inherited()))
	n.clock.stage("ready")
	n.clock.register(n.metrics.Registerer())
	n.handover.ready(n.log)
	if fn, ok := ctx.Value(readyKey{}).(func(Addrs)); ok {
		fn(addrs)
	}
}

// handledSignals are the signals Run registers before anything else
// (SIGINT and SIGTERM cancel the context main gives Run).
var handledSignals = []os.Signal{syscall.SIGHUP, syscall.SIGUSR2}

// loop serves until ctx ends or a server stops, reloading properties on
// SIGHUP (sigs, registered by Run) and on file changes, and upgrading on
// SIGUSR2: it returns errUpgraded once a new process is ready.
func (n *node) loop(ctx context.Context, serveErr <-chan error, sigs <-chan os.Signal) error {
	var upgrade <-chan error // the upgrade under way
	reloadWaits := false     // a reload that arrived during it
	for {
		select {
		case <-ctx.Done():
			n.abandonUpgrade(upgrade)
			return nil
		case err := <-serveErr:
			n.abandonUpgrade(upgrade)
			return fmt.Errorf("server stopped: %w", err)
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGUSR2 && upgrade != nil:
				n.log.Info("SIGUSR2 ignored: an upgrade is under way")
			case sig == syscall.SIGUSR2:
				upgrade = n.startUpgrade(ctx)
			case upgrade != nil:
				n.log.Info("SIGHUP: the reload waits for the upgrade under way (the new process reads the files anyway)")
				reloadWaits = true
			default:
				n.log.Info("SIGHUP: reloading properties")
				n.reloadProperties(ctx)
			}
		case err := <-upgrade:
			upgrade = nil
			if err == nil {
				n.handover.announceSuccessor(n.log.Named("upgrade"))
				return errUpgraded
			}
			n.upgradeFailed(ctx, err)
			if reloadWaits {
				reloadWaits = false
				n.reloadProperties(ctx)
			}
		case <-n.reload:
			if upgrade != nil {
				reloadWaits = true
				continue
			}
			n.reloadProperties(ctx)
		}
	}
}

// shutdown lets requests in flight finish within limits.shutdown_timeout,
// then cuts the rest. It first stops accepting and lets every HTTP/1
// connection answer the request it has or is receiving (see drainer): after
// an upgrade, nothing the new process did not take is lost; on a plain
// stop, no accepted connection is closed unanswered. HTTP/3 (h3, nil when
// off) sends GOAWAY and waits alike on a stop; after an upgrade it stops
// reading the UDP socket, which the new process reads, within
// h3UpgradeGrace (its clients reconnect, to the new process).
func (n *node) shutdown(ctx context.Context, servers []server, lns *listeners, h3 *http3Server, upgraded bool) {
	grace := n.cfg.Limits.ShutdownTimeout.Std()
	n.log.Info("shutting down", zap.Duration("grace", grace))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	// Keep-alive off first: a request read once the listeners are closed
	// is answered with Connection: close, never left on a connection that
	// the drain then closes under the client's next request.
	for _, s := range servers {
		s.SetKeepAlivesEnabled(false) // and closes idle HTTP/1 connections
	}
	lns.close()
	n.drain.wait(sctx)
	done := make(chan error, len(servers))
	for _, s := range servers {
		go func() { done <- s.Shutdown(sctx) }()
	}
	h3done := make(chan struct{})
	go func() {
		defer close(h3done)
		if h3 == nil {
			return
		}
		h3ctx := sctx
		if upgraded {
			var cancel context.CancelFunc
			h3ctx, cancel = context.WithTimeout(sctx, h3UpgradeGrace)
			defer cancel()
		}
		// It cuts what is left at the end of the grace period itself.
		if err := h3.shutdown(h3ctx); err != nil && !upgraded {
			n.log.Warn("HTTP/3 requests still in flight at the end of the grace period were cut", zap.Error(err))
		}
	}()
	for range servers {
		// The listeners are closed already: not a failure.
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			n.log.Warn("requests still in flight at the end of the grace period were cut", zap.Error(err))
			for _, s := range servers {
				s.Close()
			}
		}
	}
	<-h3done
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
