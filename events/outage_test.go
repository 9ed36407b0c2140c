package events

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/store"
)

// reopenable is a real bbolt store that a test can close (every call then
// fails with bbolt's "database not open") and open again: a store outage
// without a network, so that the flusher's loop runs on fake time.
type reopenable struct {
	path string
	mu   sync.Mutex
	b    *store.Bolt
}

func (r *reopenable) cur() *store.Bolt { r.mu.Lock(); defer r.mu.Unlock(); return r.b }
func (r *reopenable) View(ctx context.Context, fn func(store.Tx) error) error {
	return r.cur().View(ctx, fn)
}
func (r *reopenable) Update(ctx context.Context, fn func(store.Tx) error) error {
	return r.cur().Update(ctx, fn)
}
func (r *reopenable) down() { _ = r.cur().Close() }
func (r *reopenable) up(t *testing.T) {
	b, err := store.OpenBolt(r.path)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.b = b
	r.mu.Unlock()
}

// checkSeqs fails unless the stored events are numbered 1..n in the order
// of their Property ("0", "1", ...).
func checkSeqs(t *testing.T, evs []Event, n int) {
	t.Helper()
	if len(evs) != n {
		t.Fatalf("%d events stored, want %d", len(evs), n)
	}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || ev.Property != fmt.Sprint(i) {
			t.Fatalf("event %d: seq %d property %q, want seq %d property %d", i, ev.Seq, ev.Property, i+1, i)
		}
	}
}

// While the store is down Emit returns at once and events wait in order;
// the flusher retries with backoff (fake time) and stores them all, in
// one go, once the store is back; Close during an outage returns when its
// context ends.
func TestEmitAndCloseDuringAStoreOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := &reopenable{path: filepath.Join(t.TempDir(), "edge.db")}
		st.up(t)
		l, err := Open(ctx, st, Options{Node: "n1", Keep: 100, MaxPending: 50, RetryMin: 100 * time.Millisecond, RetryMax: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { // on failure too: no goroutine may outlive the bubble
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_ = l.Close(cctx)
		}()
		_, _ = l.Emit(ctx, Event{Type: PropertyLoaded, Property: "0"})
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		st.down()
		start := time.Now()
		for i := 1; i <= 50; i++ {
			if _, err := l.Emit(ctx, Event{Type: PropertyLoaded, Property: fmt.Sprint(i)}); err != nil {
				t.Fatalf("Emit %d during the outage: %v", i, err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Emit waited %v (fake time) with the store down", d)
		}
		// The bound: the 51st waiting event is refused, and counted.
		if _, err := l.Emit(ctx, Event{Type: PropertyLoaded, Property: "refused"}); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("Emit beyond MaxPending: %v, want ErrQueueFull", err)
		}
		if waiting, dropped := l.Pending(); waiting != 50 || dropped != 1 {
			t.Errorf("Pending = %d waiting, %d dropped; want 50, 1", waiting, dropped)
		}
		// A bounded Flush gives up when its context ends.
		fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = l.Flush(fctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "50 events wait") {
			t.Fatalf("Flush during the outage: %v", err)
		}
		time.Sleep(time.Minute) // the flusher keeps retrying, backing off to RetryMax
		st.up(t)
		time.Sleep(time.Second + time.Millisecond) // within one RetryMax
		synctest.Wait()
		if waiting, _ := l.Pending(); waiting != 0 {
			t.Fatalf("%d events still waiting one retry after the store returned", waiting)
		}
		evs, err := l.After(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		checkSeqs(t, evs, 51)

		// Close while the store is down: bounded by its context.
		_, _ = l.Emit(ctx, Event{Type: PropertyLoaded, Property: "51"})
		synctest.Wait()
		_ = l.Flush(ctx)
		st.down()
		_, _ = l.Emit(ctx, Event{Type: PropertyLoaded, Property: "lost"})
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start = time.Now()
		err = l.Close(cctx)
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("Close took %v (fake time), want its context's 2s", d)
		}
		if err == nil || !strings.Contains(err.Error(), "1 events not stored") {
			t.Errorf("Close: %v", err)
		}
		if _, err := l.Emit(ctx, Event{Type: PropertyLoaded}); !errors.Is(err, ErrClosed) {
			t.Errorf("Emit after Close: %v", err)
		}
	})
}

// Many events go in few transactions: 1200 events on bbolt are stored in
// order with consecutive numbers.
func TestBatchedEventsKeepOrder(t *testing.T) {
	ctx := context.Background()
	l, st := openLog(t, filepath.Join(t.TempDir(), "edge.db"), 5000)
	defer st.Close()
	var wg sync.WaitGroup
	for i := range 1200 {
		if _, err := l.Emit(ctx, Event{Type: PropertyLoaded, Property: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 { // concurrent readers meanwhile
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = l.After(ctx, 0, 10) }()
		}
	}
	wg.Wait()
	evs, err := l.After(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, evs, 1200)
}

// The real outage: the embedded etcd is stopped. Emit returns at once,
// Close of another Log returns when its context ends, and the events
// emitted during the outage are stored, in order, once etcd is back.
func TestEventsRideOutAnEtcdOutage(t *testing.T) {
	etcd := etcdtest.Start(t)
	ctx := context.Background()
	open := func() (*store.Etcd, *Log) {
		st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/ev/", OpTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		l, err := Open(ctx, st, Options{Node: "n1", Keep: 1000})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close(ctx) })
		return st, l
	}
	_, l := open()
	_, other := open()
	recv := &receiver{secret: "s"}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	stopHooks := l.StartWebhooks([]Webhook{{URL: srv.URL, Secret: "s"}}, DeliveryOptions{RetryBase: 20 * time.Millisecond})
	defer stopHooks()
	_, _ = l.Emit(ctx, Event{Type: PropertyLoaded, Property: "0"})
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	etcd.Stop()
	start := time.Now()
	for i := 1; i < 200; i++ {
		if _, err := l.Emit(ctx, Event{Type: PropertyLoaded, Property: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = other.Emit(ctx, Event{Type: StoreUnavailable})
	t.Logf("199 Emits with etcd down took %v", time.Since(start))
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("199 Emits with etcd down took %v", d)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start = time.Now()
	err := other.Close(cctx)
	t.Logf("Close with etcd down returned after %v: %v", time.Since(start), err)
	if d := time.Since(start); d > 2500*time.Millisecond || err == nil {
		t.Errorf("Close with etcd down: %v after %v", err, d)
	}
	etcd.Restart()
	start = time.Now()
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.Flush(fctx); err != nil {
		t.Fatalf("events not stored after etcd returned: %v", err)
	}
	t.Logf("events stored %v after etcd returned", time.Since(start))
	evs, err := l.After(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, evs, 200)
	// The webhook gets every event of the outage, in order, once.
	testutil.WaitFor(t, "200 deliveries", func() bool { return len(recv.events()) >= 200 })
	time.Sleep(100 * time.Millisecond)
	checkSeqs(t, recv.events(), 200)
}
