package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/testutil"
)

// A lock holder cut off from etcd for longer than its lease: another node
// takes the lock and writes; the first learns it lost the lock (Lost,
// HeldContext), and its late write, conditional on the record revision it
// read under the lock, fails with ErrConflict. One version is written.
func TestFencedWriteAfterALeaseLapse(t *testing.T) {
	t.Parallel() // its own etcd
	etcd := etcdtest.Start(t)
	proxy := testutil.StartProxy(t, etcd.Endpoint[len("http://"):])
	ctx := context.Background()
	const ttl = 2 * time.Second
	cfg := EtcdConfig{Prefix: "/fence/", LockTTL: ttl, OpTimeout: time.Second}
	a := openEtcdTest(t, "http://"+proxy.Addr, cfg)
	b := openEtcdTest(t, etcd.Endpoint, cfg)
	if err := b.Update(ctx, func(tx Tx) error { return tx.Put(Certificates, "crt_1", []byte(`{"version":1}`)) }); err != nil {
		t.Fatal(err)
	}
	// order is what a renewal does under the lock: read the record, then
	// (later) write a version and the record, fenced on what it read.
	order := func(s *Etcd, rev Rev, n string) error {
		return s.Update(ctx, func(tx Tx) error {
			if err := tx.Require(Certificates, "crt_1", rev); err != nil {
				return err
			}
			if err := tx.Put(CertificateVersions, "crt_1/"+n, []byte(n)); err != nil {
				return err
			}
			return tx.Put(Certificates, "crt_1", []byte(`{"version":`+n+`}`))
		})
	}
	readRev := func(s *Etcd) Rev {
		var rev Rev
		if err := s.View(ctx, func(tx Tx) (err error) { rev, err = tx.Revision(Certificates, "crt_1"); return err }); err != nil {
			t.Fatal(err)
		}
		return rev
	}

	if ok, err := a.TryLock(ctx, "renew/crt_1"); !ok || err != nil {
		t.Fatalf("a TryLock: %v %v", ok, err)
	}
	hctx, cancel := HeldContext(ctx, a, "renew/crt_1")
	defer cancel()
	revA := readRev(a)
	proxy.Freeze() // a is partitioned: its keep-alives go nowhere
	frozenAt := time.Now()
	aLost := make(chan time.Time, 1)
	go func() { <-hctx.Done(); aLost <- time.Now() }()

	// b gets the lock once a's lease expires on the server, and renews.
	lctx, lcancel := context.WithTimeout(ctx, ttl+10*time.Second)
	defer lcancel()
	if err := b.Lock(lctx, "renew/crt_1"); err != nil {
		t.Fatalf("b never got the lapsed lock: %v", err)
	}
	bGot := time.Now()
	t.Logf("b took the lock %v after a was partitioned (lease %v)", bGot.Sub(frozenAt).Round(time.Millisecond), ttl)
	if err := order(b, readRev(b), "2"); err != nil {
		t.Fatalf("b's fenced write: %v", err)
	}
	_ = b.Unlock(ctx, "renew/crt_1")

	select {
	case at := <-aLost:
		if !errors.Is(context.Cause(hctx), ErrLockLost) {
			t.Errorf("HeldContext cause %v, want ErrLockLost", context.Cause(hctx))
		}
		t.Logf("a learned it lost the lock %v after the partition", at.Sub(frozenAt).Round(time.Millisecond))
		if at.After(bGot) {
			t.Errorf("a learned it lost the lock %v after b took it", at.Sub(bGot))
		}
	case <-time.After(ttl + 5*time.Second):
		t.Fatal("a was never told its lock was lost")
	}
	proxy.Thaw()
	// a's order, late: refused whatever a believes about its lock.
	var err error
	testutil.WaitFor(t, "a's late write answered", func() bool {
		err = order(a, revA, "3")
		return errors.Is(err, ErrConflict) || err == nil
	}, func() string { return fmt.Sprint(err) })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("a's late write: %v, want ErrConflict", err)
	}
	var versions []string
	_ = b.View(ctx, func(tx Tx) error {
		return tx.ForEach(CertificateVersions, "crt_1/", func(k string, _ []byte) error { versions = append(versions, k); return nil })
	})
	if len(versions) != 1 || versions[0] != "crt_1/2" {
		t.Errorf("versions written: %v, want only b's", versions)
	}
}
