package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// OpenStore opens the configured backend.
func OpenStore(ctx context.Context, cfg *config.Config, log *zap.Logger) (store.Store, error) {
	switch cfg.Store.Backend {
	case "etcd":
		return openEtcd(ctx, cfg, log)
	default:
		return store.OpenBolt(filepath.Join(cfg.DataDir, "edge.db"))
	}
}

func openEtcd(ctx context.Context, cfg *config.Config, log *zap.Logger) (*store.Etcd, error) {
	e := cfg.Store.Etcd
	tc, err := etcdTLS(e.TLS)
	if err != nil {
		return nil, err
	}
	return store.OpenEtcd(ctx, store.EtcdConfig{
		Endpoints: e.Endpoints, Prefix: e.Prefix, Username: e.Username, Password: e.Password,
		TLS: tc, DialTimeout: e.DialTimeout.Std(), OpTimeout: e.OpTimeout.Std(), LockTimeout: e.LockTimeout.Std(),
		MaxTxnOps: e.MaxTxnOps, Logger: log,
	})
}

// etcdTLS builds the client TLS config from store.etcd.tls; nil when no
// file is set.
func etcdTLS(t config.EtcdTLS) (*tls.Config, error) {
	if t.CA == "" && t.Cert == "" && t.Key == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.tls.ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store.etcd.tls.ca: %s holds no PEM certificate", t.CA)
		}
	}
	if t.Cert != "" || t.Key != "" {
		kp, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.tls.cert/key: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

// pinger is a store that can tell whether its server answers.
type pinger interface{ Ping(context.Context) error }

// storeHealth watches the store: when it stops answering (etcd down) the
// node keeps serving from memory, renewals pause, and it says so (log,
// event, metric, /readyz); when it answers again, held events are stored
// and certificates are reloaded.
type storeHealth struct {
	down atomic.Pointer[error]
}

func (h *storeHealth) err() error {
	if p := h.down.Load(); p != nil {
		return *p
	}
	return nil
}

func (n *node) watchStore(ctx context.Context) {
	h := &n.health
	p, ok := n.store.(pinger)
	if !ok {
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := p.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch was := h.err(); {
		case err != nil && was == nil:
			err = fmt.Errorf("store unreachable, serving from memory, renewals paused: %w", err)
			h.down.Store(&err)
			n.metrics.StoreUp(false)
			n.log.Error("store unreachable", zap.Error(err))
			_, _ = n.events.Emit(ctx, events.Event{Type: events.StoreUnavailable, Detail: err.Error()})
		case err == nil && was != nil:
			h.down.Store(nil)
			n.metrics.StoreUp(true)
			n.log.Info("store reachable again; renewals resume")
			_, _ = n.events.Emit(ctx, events.Event{Type: events.StoreAvailable, Detail: "store reachable again; renewals resume"})
			if err := n.tls.Load(ctx); err != nil {
				n.log.Warn("reloading certificates", zap.Error(err))
			}
			n.renewer.Rescan(ctx)
			n.renewer.Wake()
			if n.unapplied.Load() {
				// A reload during the outage could not create its
				// certificates: the main loop reloads again.
				select {
				case n.reload <- struct{}{}:
				default:
				}
			}
		}
	}
}

// watchCertificates keeps the handshake index in step with certificates
// stored by other nodes of the fleet.
func (n *node) watchCertificates(ctx context.Context) {
	w, ok := n.store.(*store.Etcd)
	if !ok {
		return
	}
	w.Watch(ctx, store.Certificates, func(id string) {
		if err := n.tls.Refresh(ctx, id); err != nil && ctx.Err() == nil {
			n.log.Warn("refreshing a certificate changed by another node", zap.String("certificate", id), zap.Error(err))
		}
		n.renewer.Changed(ctx, id)
	}, func() {
		if err := n.tls.Load(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("reloading certificates after a watch gap", zap.Error(err))
		}
		n.renewer.Rescan(ctx)
	})
}

// Migrate copies every key of one backend into the other. Copying again
// writes the same values: it is idempotent.
func Migrate(ctx context.Context, cfg *config.Config, to string, log *zap.Logger, progress func(done, total int)) (int, error) {
	bolt, err := store.OpenBolt(filepath.Join(cfg.DataDir, "edge.db"))
	if err != nil {
		return 0, err
	}
	defer bolt.Close()
	etcd, err := openEtcd(ctx, cfg, log)
	if err != nil {
		return 0, err
	}
	defer etcd.Close()
	var from, dst store.Store = bolt, etcd
	if to == "bbolt" {
		from, dst = etcd, bolt
	}
	return store.CopyProgress(ctx, from, dst, progress)
}
