package renew

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/acme"
	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/internal/pebbletest"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// fenceNode is one renewal loop of a fleet: its store, ACME client and
// renewer.
type fenceNode struct {
	st    *store.Etcd
	certs *cert.Certs
	acme  *acme.Client
	r     *Renewer
	logs  *observer.ObservedLogs
	ok    atomic.Int32 // renewals stored
}

func startFenceNode(t *testing.T, endpoint string, p *pebbletest.Pebble, port int) *fenceNode {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{endpoint}, Prefix: "/fence/", LockTTL: 2 * time.Second,
		OpTimeout: time.Second, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pemRoots, err := os.ReadFile(p.CARootsFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemRoots)
	core, logs := observer.New(zap.DebugLevel)
	n := &fenceNode{st: st, certs: cert.NewCerts(st), logs: logs}
	n.acme, err = acme.New(st, acme.Config{Directory: p.DirectoryURL, Email: "ops@example.com", AgreeTOS: true, CARoots: roots,
		HTTPHost: "127.0.0.1", HTTPPort: port, KnownHost: func(string) bool { return true }, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.acme.Close)
	n.r = NewRenewer(n.certs, n.acme, func() *property.Table { return nil }, st, RenewerConfig{
		CheckInterval: time.Second, Logger: zap.New(core),
		OnRenewal: func(res string) {
			if res == "ok" {
				n.ok.Add(1)
			}
		}})
	return n
}

func (n *fenceNode) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { n.r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// slowChallenges answers Pebble's HTTP-01 requests on port from the
// store (through answer), each only once open is closed: an order that
// stays in flight as long as the test wants.
func slowChallenges(t *testing.T, port int, answer *acme.Client, open <-chan struct{}) (asked *atomic.Int32) {
	asked = new(atomic.Int32)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		select {
		case <-open:
		case <-r.Context().Done():
			return
		}
		host, _, _ := strings.Cut(r.Host, ":")
		token := strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		if !answer.ServeChallenge(w, r, host, token) {
			http.NotFound(w, r)
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return asked
}

// TestLeaseLostDuringOrder: node A's link to etcd freezes in the middle of
// its order, for longer than its lock's lease. A stops its order when it
// learns the lock is lost; B takes the lock over and renews. One version
// is written, by B, and A leaves the record alone when its link returns.
func TestLeaseLostDuringOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd and Pebble")
	}
	ctx := context.Background()
	etcd := etcdtest.Start(t)
	proxy := testutil.StartProxy(t, strings.TrimPrefix(etcd.Endpoint, "http://"))
	port := pebbletest.FreePort(t)
	p := pebbletest.Start(t, pebbletest.Options{HTTPPort: port})
	a := startFenceNode(t, "http://"+proxy.Addr, p, port)
	b := startFenceNode(t, etcd.Endpoint, p, port)
	open := make(chan struct{})
	asked := slowChallenges(t, port, b.acme, open)

	rec := &cert.Certificate{Name: "f", Type: cert.TypeServer, AutoRenew: cert.AutoRenewACME, Status: cert.StatusPending,
		CommonName: "f.fence.example", Renewal: cert.Renewal{State: cert.RenewalScheduled}}
	if err := b.certs.Create(ctx, rec, fixture.SelfSigned(t, "f.fence.example")); err != nil {
		t.Fatal(err)
	}
	a.run(t)
	testutil.WaitForWithin(t, 30*time.Second, "A's order reaching validation", func() bool { return asked.Load() > 0 })
	proxy.Freeze() // A is partitioned mid-order
	frozen := time.Now()
	b.run(t)
	testutil.WaitForWithin(t, 20*time.Second, "B taking the renewal over", func() bool {
		c, err := b.certs.Get(ctx, rec.ID)
		return err == nil && c.Renewal.Attempts >= 2 && c.Renewal.State == cert.RenewalRenewing
	})
	t.Logf("B took the renewal over %v after A was partitioned (lease 2s)", time.Since(frozen).Round(time.Millisecond))
	// A's link comes back before any validation answers: an order A
	// still ran would complete now, and its write would reach the store.
	proxy.Thaw()
	close(open)
	testutil.WaitForWithin(t, 30*time.Second, "B's certificate stored", func() bool { return b.ok.Load() == 1 })
	// A's attempt ends, one way or the other: from then on, anything A
	// would have written is in the store (no sleep to let it land).
	testutil.WaitForWithin(t, 20*time.Second, "A's attempt ending", func() bool {
		return a.logs.FilterMessage("renewal attempt abandoned").Len() > 0 || a.ok.Load() > 0
	})

	vs, err := b.certs.Versions(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || a.ok.Load() != 0 {
		t.Errorf("%d versions (want the self-signed one and B's), A stored %d renewals", len(vs), a.ok.Load())
	}
	c, _ := b.certs.Get(ctx, rec.ID)
	if c.Status != cert.StatusActive || c.Renewal.State != cert.RenewalScheduled || c.Version != 2 {
		t.Errorf("after the takeover: status %s, renewal %s, version %d", c.Status, c.Renewal.State, c.Version)
	}
	if a.logs.FilterMessage("renewal attempt abandoned").Len() == 0 {
		t.Fatal("A's attempt ended without being abandoned")
	}
	t.Logf("A: %v", a.logs.FilterMessage("renewal attempt abandoned").All()[0].ContextMap()["why"])
}
