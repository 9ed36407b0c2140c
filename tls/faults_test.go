package tls

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/store"
)

// faultStore is a real bbolt store with faults switched in: down makes
// every transaction fail as an unreachable store does; delay slows every
// read; hold, when set before use, runs after each read and may block it.
type faultStore struct {
	*store.Bolt
	down  atomic.Bool
	delay time.Duration
	views atomic.Int32
	hold  func(ctx context.Context)
}

var errStoreDown = errors.New("store unreachable (fault injected)")

func (f *faultStore) View(ctx context.Context, fn func(store.Tx) error) error {
	f.views.Add(1)
	if f.down.Load() {
		return errStoreDown
	}
	time.Sleep(f.delay)
	err := f.Bolt.View(ctx, fn)
	if f.hold != nil {
		f.hold(ctx)
	}
	return err
}

func (f *faultStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if f.down.Load() {
		return errStoreDown
	}
	return f.Bolt.Update(ctx, fn)
}

// serverCert stores a server certificate for host under name.
func serverCert(t *testing.T, c *cert.Certs, name, host string) *cert.Certificate {
	t.Helper()
	rec := &cert.Certificate{Name: name, Type: cert.TypeServer, AutoRenew: cert.AutoRenewNone, Status: cert.StatusActive}
	if err := c.Create(context.Background(), rec, fixture.SelfSigned(t, host)); err != nil {
		t.Fatal(err)
	}
	return rec
}

// unwarmed loads m and waits for its warm-up, then drops the warmed DER of
// name, as if the warm-up had not reached it yet: its first handshake reads
// the store.
func unwarmed(t *testing.T, m *Manager, name string) *entry {
	t.Helper()
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := m.snap.Load().byName[name]
	testutil.WaitFor(t, "warm-up of "+name, func() bool { return e.der.Load() != nil })
	e.der.Store(nil)
	return e
}

// TestLazyLoadSurvivesEtcdOutage stops the embedded etcd under a serving
// Manager: a parsed certificate keeps serving, a not-yet-loaded one fails
// its handshakes within the load bound, and serves again once etcd is
// back, with no restart and no Refresh. A Load after the outage keeps the
// parsed entries.
func TestLazyLoadSurvivesEtcdOutage(t *testing.T) {
	ctx := context.Background()
	etcd := etcdtest.Start(t)
	st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{etcd.Endpoint}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := cert.NewCerts(st)
	serverCert(t, c, "a", "a.example")
	serverCert(t, c, "b", "b.example")
	m := NewManager(c, nil)
	m.retryDelay, m.loadTimeout = 200*time.Millisecond, 500*time.Millisecond
	eb := unwarmed(t, m, "b")
	ea := m.snap.Load().byName["a"]
	if m.Certificate("a") == nil {
		t.Fatal("a not served before the outage")
	}

	etcd.Stop()
	start := time.Now()
	if m.Certificate("b") != nil {
		t.Fatal("b loaded with etcd stopped")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a handshake waited %s for a stopped store, want at most the load bound", took)
	}
	if m.Certificate("a") == nil {
		t.Error("a parsed certificate stopped serving during the outage")
	}
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	if err := m.Load(lctx); err == nil {
		t.Error("Load succeeded with etcd stopped")
	}
	cancel()
	if m.snap.Load().byName["a"] != ea {
		t.Error("a failed Load replaced the serving snapshot")
	}

	etcd.Restart()
	testutil.WaitForWithin(t, 20*time.Second, "b served after etcd is back", func() bool { return m.Certificate("b") != nil })
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	s := m.snap.Load()
	if s.byName["a"] != ea || s.byName["b"] != eb || ea.cert.Load() == nil || eb.cert.Load() == nil {
		t.Error("Load after the outage discarded parsed entries")
	}
}

// TestLazyLoadsShared: concurrent first handshakes of one certificate make
// one store read, and a handshake whose context ends stops waiting.
func TestLazyLoadsShared(t *testing.T) {
	fs := &faultStore{Bolt: fixture.Bolt(t), delay: 50 * time.Millisecond}
	c := cert.NewCerts(fs)
	serverCert(t, c, "s", "s.example")
	m := NewManager(c, nil)
	e := unwarmed(t, m, "s")
	before := fs.views.Load()
	var wg sync.WaitGroup
	var served atomic.Int32
	for range 20 {
		wg.Go(func() {
			if c, _ := m.get(context.Background(), e); c != nil {
				served.Add(1)
			}
		})
	}
	wg.Wait()
	if n := fs.views.Load() - before; n != 1 || served.Load() != 20 {
		t.Errorf("20 concurrent first handshakes: %d store reads, %d served; want 1 and 20", n, served.Load())
	}

	e2 := &entry{id: e.id, name: "s", version: 2} // no such version: the load fails
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.get(ctx, e2); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled handshake: %v, want context.Canceled", err)
	}
}

// TestFailedLoadRetried: a failed load is not kept for ever; it is tried
// again after retryDelay, and not before (a store that is down is not hit by
// every handshake).
func TestFailedLoadRetried(t *testing.T) {
	fs := &faultStore{Bolt: fixture.Bolt(t)}
	c := cert.NewCerts(fs)
	serverCert(t, c, "s", "s.example")
	m := NewManager(c, nil)
	now := time.Now()
	m.now = func() time.Time { return now }
	e := unwarmed(t, m, "s")

	fs.down.Store(true)
	if m.Certificate("s") != nil {
		t.Fatal("loaded with the store down")
	}
	fs.down.Store(false)
	reads := fs.views.Load()
	if m.Certificate("s") != nil || fs.views.Load() != reads {
		t.Error("a handshake within retryDelay of a failure read the store again")
	}
	now = now.Add(DefaultRetryDelay)
	if m.Certificate("s") == nil || !e.healthy() {
		t.Error("not served after retryDelay: the failure was kept")
	}
}

// TestRecordWriteReplacesBrokenEntry: a write that changes only the record
// replaces an entry whose load failed, at once.
func TestRecordWriteReplacesBrokenEntry(t *testing.T) {
	ctx := context.Background()
	fs := &faultStore{Bolt: fixture.Bolt(t)}
	c := cert.NewCerts(fs)
	serverCert(t, c, "s", "s.example")
	m := NewManager(c, nil)
	m.retryDelay = time.Hour // only the write may bring it back
	unwarmed(t, m, "s")
	fs.down.Store(true)
	if m.Certificate("s") != nil {
		t.Fatal("loaded with the store down")
	}
	fs.down.Store(false)
	if _, err := c.Update(ctx, "s", func(r *cert.Certificate) error { r.StatusDetail = "touched"; return nil }); err != nil {
		t.Fatal(err)
	}
	if m.Certificate("s") == nil {
		t.Error("a record-only write left the broken entry in place")
	}
}

// refreshGate blocks the second store read of the Refresh whose context
// carries it (its Current read) until released.
type refreshGate struct {
	reads   atomic.Int32
	reached chan struct{}
	release chan struct{}
}

type gateKey struct{}

// TestRefreshNeverGoesBack: a Refresh that read version 1 and finishes
// after a Refresh that stored version 2 leaves version 2 serving.
func TestRefreshNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	fs := &faultStore{Bolt: fixture.Bolt(t)}
	fs.hold = func(ctx context.Context) {
		if g, ok := ctx.Value(gateKey{}).(*refreshGate); ok && g.reads.Add(1) == 2 {
			close(g.reached)
			<-g.release
		}
	}
	c := cert.NewCerts(fs)
	rec := serverCert(t, c, "s", "v1.example")
	m := NewManager(c, nil) // made after the write: its snapshot is empty

	g := &refreshGate{reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error)
	go func() { done <- m.Refresh(context.WithValue(ctx, gateKey{}, g), rec.ID) }()
	<-g.reached // the slow refresh has read version 1
	if _, err := c.AddVersion(ctx, "s", fixture.SelfSigned(t, "v2.example"), nil); err != nil {
		t.Fatal(err) // its own refresh stores version 2
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e := m.snap.Load().byID[rec.ID]; e == nil || e.version != 2 || m.Certificate("s").Leaf.Subject.CommonName != "v2.example" {
		t.Errorf("after a late refresh of version 1: serving %+v, want version 2", e)
	}
}

// TestConcurrentRefreshes races refreshes (the etcd watch) against new
// versions (local writes): the newest version serves at the end.
func TestConcurrentRefreshes(t *testing.T) {
	ctx := context.Background()
	c := fixture.Certs(t)
	rec := serverCert(t, c, "s", "s.example")
	m := NewManager(c, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := m.Refresh(ctx, rec.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := 0
	for i := range 30 {
		if _, err := c.AddVersion(ctx, "s", fixture.SelfSigned(t, fmt.Sprintf("v%d.example", i+2)), nil); err != nil {
			t.Fatal(err)
		}
		if v := m.snap.Load().byID[rec.ID].version; v < seen {
			t.Fatalf("served version went back from %d to %d", seen, v)
		} else {
			seen = v
		}
	}
	close(stop)
	wg.Wait()
	if e := m.snap.Load().byID[rec.ID]; e.version != 31 {
		t.Errorf("serving version %d at the end, want 31", e.version)
	}
}

// TestCloseStopsWarmUp: Close stops the background warm-up and waits for
// it: no store read happens after it returns; a new Load stops the
// warm-up of the snapshot it replaces.
func TestCloseStopsWarmUp(t *testing.T) {
	// On fake time: the slow reads take no real time, and "nothing after
	// Close" is checked with every timer run out, not by waiting.
	synctest.Test(t, func(t *testing.T) {
		fs := &faultStore{Bolt: fixture.Bolt(t), delay: 100 * time.Millisecond}
		c := cert.NewCerts(fs)
		serverCert(t, c, "s", "s.example")
		m := NewManager(c, nil)
		for range 3 {
			if err := m.Load(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		m.Close()
		after := fs.views.Load()
		time.Sleep(time.Hour) // fake: any warm-up still running reads now
		synctest.Wait()
		if n := fs.views.Load() - after; n != 0 {
			t.Errorf("%d store reads after Close returned", n)
		}
		if m.Certificate("s") == nil {
			t.Error("not served after Close")
		}
	})
}
