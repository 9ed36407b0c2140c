package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/testutil"
)

func openEtcdTest(t *testing.T, endpoint string, c EtcdConfig) *Etcd {
	t.Helper()
	c.Endpoints = []string{endpoint}
	e, err := OpenEtcd(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// An Update too large for one etcd commit fails whole with ErrTxnTooLarge
// instead of being split into commits that another node could see half
// done; Copy (migration) still copies any number of keys.
func TestEtcdUpdateNeverSplits(t *testing.T) {
	t.Parallel() // its own etcd
	etcd := etcdtest.Start(t)
	ctx := context.Background()
	e := openEtcdTest(t, etcd.Endpoint, EtcdConfig{Prefix: "/big/", MaxTxnOps: 128})
	err := e.Update(ctx, func(tx Tx) error {
		for i := range 200 {
			if err := tx.Put(Events, fmt.Sprintf("%05d", i), []byte("x")); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, ErrTxnTooLarge) {
		t.Fatalf("200 writes in one Update: %v, want ErrTxnTooLarge", err)
	}
	n := 0
	_ = e.View(ctx, func(tx Tx) error {
		return tx.ForEach(Events, "", func(string, []byte) error { n++; return nil })
	})
	if n != 0 {
		t.Fatalf("a refused Update wrote %d keys", n)
	}
	// Too many reads to check is refused too.
	err = e.Update(ctx, func(tx Tx) error {
		for i := range 200 {
			_, _ = tx.Get(Events, fmt.Sprint(i))
		}
		return tx.Put(Meta, "x", []byte("1"))
	})
	if !errors.Is(err, ErrTxnTooLarge) {
		t.Fatalf("200 reads to check: %v, want ErrTxnTooLarge", err)
	}
	// Migration splits, explicitly.
	b, err := OpenBolt(t.TempDir() + "/edge.db")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_ = b.Update(ctx, func(tx Tx) error {
		for i := range 300 {
			_ = tx.Put(Events, fmt.Sprintf("%05d", i), []byte("x"))
		}
		return nil
	})
	if n, err := Copy(ctx, b, e); err != nil || n < 300 {
		t.Fatalf("Copy: %d %v", n, err)
	}
}

// within fails the test unless call returns within limit; it returns the
// call's error and how long it took.
func within(t *testing.T, what string, limit time.Duration, call func() error) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		d := time.Since(start)
		t.Logf("%s: returned after %v: %v", what, d.Round(time.Millisecond), err)
		return d, err
	case <-time.After(limit):
		t.Fatalf("%s: still blocked after %v", what, limit)
		return 0, nil
	}
}

// With etcd stopped, every call returns within its deadline although the
// caller passed context.Background(); a held lock is reported lost; a
// lease grant in flight does not hold up the mutex; after etcd returns,
// the same Etcd works again.
func TestEtcdCallsHaveDeadlinesDuringAnOutage(t *testing.T) {
	t.Parallel() // its own etcd
	etcd := etcdtest.Start(t)
	bg := context.Background()
	const op, lockWait, ttl = time.Second, 2 * time.Second, 2 * time.Second
	cfg := EtcdConfig{Prefix: "/outage/", OpTimeout: op, LockTimeout: lockWait, LockTTL: ttl}
	e, other := openEtcdTest(t, etcd.Endpoint, cfg), openEtcdTest(t, etcd.Endpoint, cfg)
	if ok, err := e.TryLock(bg, "renew/held"); !ok || err != nil {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	if ok, err := other.TryLock(bg, "renew/busy"); !ok || err != nil {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	// In flight when etcd stops: a Lock waiting for another node's lock,
	// and a stream of reads and writes.
	var wg sync.WaitGroup
	lockErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := within(t, "Lock waiting when etcd stopped", lockWait+op+time.Second, func() error { return e.Lock(bg, "renew/busy") })
		lockErr <- err
	}()
	stopLoop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopLoop:
				return
			default:
			}
			_, _ = within(t, "Update in flight", 2*op+time.Second, func() error {
				return e.Update(bg, func(tx Tx) error {
					_, _ = tx.Get(Meta, "n")
					return tx.Put(Meta, "n", []byte(fmt.Sprint(i)))
				})
			})
		}
	}()
	time.Sleep(300 * time.Millisecond)
	stoppedAt := time.Now()
	etcd.Stop()
	t.Logf("etcd.Stop took %v", time.Since(stoppedAt).Round(time.Millisecond))
	lostAfter := make(chan time.Duration, 1)
	go func() {
		select {
		case <-e.Lost("renew/held"):
			lostAfter <- time.Since(stoppedAt)
		case <-time.After(ttl + 10*time.Second):
			close(lostAfter)
		}
	}()

	limit := op + time.Second
	calls := map[string]func() error{
		"View":    func() error { return e.View(bg, func(tx Tx) error { _, err := tx.Get(Meta, "n"); return err }) },
		"ForEach": func() error { return e.View(bg, func(tx Tx) error { return tx.ForEach(Events, "", nil) }) },
		"Update":  func() error { return e.Update(bg, func(tx Tx) error { return tx.Put(Meta, "x", []byte("1")) }) },
		"Ping":    func() error { return e.Ping(bg) },
		"TryLock": func() error { _, err := e.TryLock(bg, "renew/new"); return err },
		"Unlock":  func() error { return other.Unlock(bg, "renew/busy") },
	}
	for name, call := range calls {
		if _, err := within(t, name, limit, call); err == nil && name != "Unlock" && name != "TryLock" {
			t.Errorf("%s succeeded with etcd stopped", name)
		}
	}
	close(stopLoop)
	if err := <-lockErr; err == nil {
		t.Error("Lock succeeded with etcd stopped")
	}
	// The lease lapses: the held lock is reported lost.
	d, ok := <-lostAfter
	if !ok {
		t.Fatal("a lock whose lease lapsed is not reported lost")
	}
	t.Logf("lock reported lost %v after etcd began to stop (lease %v)", d.Round(time.Millisecond), ttl)
	// The holder gives the lost lock up (etcd is down: bounded).
	within(t, "Unlock of the lost lock", limit, func() error { return e.Unlock(bg, "renew/held") })
	// A new lease is needed now; its grant hangs until OpTimeout, without
	// holding the mutex that Lost and Unlock take.
	granting := make(chan struct{})
	go func() { defer close(granting); _, _ = e.TryLock(bg, "renew/other") }()
	time.Sleep(100 * time.Millisecond)
	within(t, "Lost while a lease grant hangs", 100*time.Millisecond, func() error { <-e.Lost("renew/x"); return nil })
	within(t, "Unlock of an unheld lock while a lease grant hangs", 100*time.Millisecond, func() error { return e.Unlock(bg, "renew/x") })
	<-granting
	wg.Wait()

	etcd.Restart()
	restartedAt := time.Now()
	var err error
	testutil.WaitForWithin(t, ttl+10*time.Second, "a lock after etcd returned", func() bool {
		var ok bool
		ok, err = e.TryLock(bg, "renew/held")
		return ok
	}, func() string { return fmt.Sprint(err) })
	t.Logf("locks work again %v after etcd returned", time.Since(restartedAt).Round(time.Millisecond))
	if err := e.Update(bg, func(tx Tx) error { return tx.Put(Meta, "after", []byte("1")) }); err != nil {
		t.Fatalf("Update after etcd returned: %v", err)
	}
}

// A partition (bytes held, connections open: calls hang rather than
// fail) is bounded the same way, and the Etcd works again once it heals.
func TestEtcdCallsHaveDeadlinesDuringAPartition(t *testing.T) {
	t.Parallel() // its own etcd
	etcd := etcdtest.Start(t)
	proxy := testutil.StartProxy(t, strings.TrimPrefix(etcd.Endpoint, "http://"))
	bg := context.Background()
	const op = time.Second
	e := openEtcdTest(t, "http://"+proxy.Addr, EtcdConfig{Prefix: "/part/", OpTimeout: op, LockTimeout: 2 * op})
	proxy.Freeze()
	limit := op + time.Second
	for name, call := range map[string]func() error{
		"View":    func() error { return e.View(bg, func(tx Tx) error { _, err := tx.Get(Meta, "n"); return err }) },
		"Update":  func() error { return e.Update(bg, func(tx Tx) error { return tx.Put(Meta, "x", []byte("1")) }) },
		"Ping":    func() error { return e.Ping(bg) },
		"TryLock": func() error { _, err := e.TryLock(bg, "renew/x"); return err },
		"Lock":    func() error { return e.Lock(bg, "renew/y") },
	} {
		if _, err := within(t, name, limit+op, call); err == nil {
			t.Errorf("%s succeeded through a frozen network", name)
		}
	}
	proxy.Thaw()
	if err := e.Update(bg, func(tx Tx) error { return tx.Put(Meta, "x", []byte("1")) }); err != nil {
		t.Fatalf("Update after the partition healed: %v", err)
	}
	within(t, "Close", limit, e.Close)
}
