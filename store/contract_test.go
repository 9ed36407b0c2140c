package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/testutil"
)

// backend opens stores of one kind; two opens from the same backend share
// their data, as two nodes of a fleet (or, for bbolt, one node) would.
type backend struct {
	name string
	open func(t *testing.T) Store
}

func backends(t *testing.T) []backend {
	boltPath := filepath.Join(t.TempDir(), "edge.db")
	var bolt *Bolt
	etcd := etcdtest.Start(t)
	prefix := "/contract-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/"
	return []backend{
		{"bbolt", func(t *testing.T) Store {
			if bolt == nil {
				b, err := OpenBolt(boltPath)
				if err != nil {
					t.Fatal(err)
				}
				bolt = b
				t.Cleanup(func() { b.Close(); bolt = nil })
			}
			return bolt
		}},
		{"etcd", func(t *testing.T) Store {
			e, err := OpenEtcd(context.Background(), EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: prefix, LockTTL: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			return e
		}},
	}
}

func TestStoreContract(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := b.open(t)
			t.Run("get put delete foreach", func(t *testing.T) {
				for from := 0; from < 600; from += 100 { // more than one etcd page
					err := s.Update(ctx, func(tx Tx) error {
						for i := from; i < from+100; i++ {
							if err := tx.Put(Events, fmt.Sprintf("%05d", i), []byte{byte(i)}); err != nil {
								return err
							}
						}
						return tx.Put(ACME, "a/b", []byte("x"))
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				var n int
				var last string
				err := s.View(ctx, func(tx Tx) error {
					if v, err := tx.Get(ACME, "a/b"); err != nil || string(v) != "x" {
						return fmt.Errorf("Get: %q %v", v, err)
					}
					if _, err := tx.Get(ACME, "a/c"); !errors.Is(err, ErrNotFound) {
						return fmt.Errorf("missing key: %v", err)
					}
					if _, err := tx.Get("nobucket", "x"); err == nil {
						return errors.New("unknown bucket accepted")
					}
					if err := tx.Put(ACME, "x", nil); err == nil {
						return errors.New("write in View accepted")
					}
					return tx.ForEach(Events, "", func(k string, v []byte) error {
						if k <= last {
							return fmt.Errorf("ForEach out of order: %s after %s", k, last)
						}
						last = k
						n++
						return nil
					})
				})
				if err != nil || n != 600 {
					t.Fatalf("%v, ForEach saw %d of 600", err, n)
				}
				// A prefix; deletes; deleting a missing key is fine.
				for from := 0; from < 600; from += 100 {
					err = s.Update(ctx, func(tx Tx) error {
						for i := from; i < from+100; i++ {
							if err := tx.Delete(Events, fmt.Sprintf("%05d", i)); err != nil {
								return err
							}
						}
						return tx.Delete(Events, "never-there")
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				_ = s.View(ctx, func(tx Tx) error {
					return tx.ForEach(Events, "", func(k string, _ []byte) error { t.Errorf("left after delete: %s", k); return nil })
				})
			})
			t.Run("failed update writes nothing; own writes visible", func(t *testing.T) {
				boom := errors.New("boom")
				err := s.Update(ctx, func(tx Tx) error {
					_ = tx.Put(Meta, "k1", []byte("1"))
					return boom
				})
				if !errors.Is(err, boom) {
					t.Fatal(err)
				}
				_ = s.Update(ctx, func(tx Tx) error {
					if _, err := tx.Get(Meta, "k1"); !errors.Is(err, ErrNotFound) {
						t.Error("a failed Update's write was kept")
					}
					_ = tx.Put(Meta, "own/b", []byte("b"))
					_ = tx.Put(Meta, "own/a", []byte("a"))
					if v, _ := tx.Get(Meta, "own/a"); string(v) != "a" {
						t.Error("own write not visible to Get")
					}
					var keys []string
					_ = tx.ForEach(Meta, "own/", func(k string, _ []byte) error { keys = append(keys, k); return nil })
					if fmt.Sprint(keys) != "[own/a own/b]" {
						t.Errorf("own writes in ForEach: %v", keys)
					}
					return nil
				})
			})
			t.Run("foreach from a start key", func(t *testing.T) { testForEachFrom(t, s) })
			t.Run("revision and require", func(t *testing.T) { testRequire(t, s, b.open(t)) })
			t.Run("lost locks", func(t *testing.T) { testLost(t, s) })
			t.Run("concurrent updates do not lose writes", func(t *testing.T) {
				other := b.open(t)
				var wg sync.WaitGroup
				for _, st := range []Store{s, other} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 15 {
							err := st.Update(ctx, func(tx Tx) error {
								v, err := tx.Get(Meta, "counter")
								n := 0
								if err == nil {
									n, _ = strconv.Atoi(string(v))
								}
								return tx.Put(Meta, "counter", []byte(strconv.Itoa(n+1)))
							})
							if err != nil {
								t.Error(err)
							}
						}
					}()
				}
				wg.Wait()
				_ = s.View(ctx, func(tx Tx) error {
					if v, _ := tx.Get(Meta, "counter"); string(v) != "30" {
						t.Errorf("counter %s, want 30", v)
					}
					return nil
				})
			})
			t.Run("locks", func(t *testing.T) {
				other := b.open(t)
				if ok, err := s.TryLock(ctx, "renew/x"); !ok || err != nil {
					t.Fatalf("TryLock: %v %v", ok, err)
				}
				if ok, _ := other.TryLock(ctx, "renew/x"); ok {
					t.Fatal("two holders of one lock")
				}
				short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				defer cancel()
				if err := other.Lock(short, "renew/x"); err == nil {
					t.Fatal("Lock did not wait for the holder")
				}
				done := make(chan error, 1)
				go func() { done <- other.Lock(ctx, "renew/x") }()
				time.Sleep(50 * time.Millisecond)
				s.Unlock(ctx, "renew/x")
				if err := <-done; err != nil {
					t.Fatalf("Lock after Unlock: %v", err)
				}
				other.Unlock(ctx, "renew/x")
			})
		})
	}
}

func TestEtcdLockEndsWithItsHolder(t *testing.T) {
	t.Parallel() // its own etcd
	etcd := etcdtest.Start(t)
	ctx := context.Background()
	open := func() *Etcd {
		e, err := OpenEtcd(ctx, EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/lease/", LockTTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	holder, other := open(), open()
	defer other.Close()
	if ok, _ := holder.TryLock(ctx, "renew/x"); !ok {
		t.Fatal("no lock")
	}
	// The holder dies: its client stops, its lease is never revoked.
	holder.Client().Close()
	if ok, _ := other.TryLock(ctx, "renew/x"); ok {
		t.Fatal("lock free before the lease expired")
	}
	testutil.WaitForWithin(t, 15*time.Second, "the dead holder's lock to expire", func() bool {
		ok, _ := other.TryLock(ctx, "renew/x")
		return ok
	})
}

func TestEtcdWatch(t *testing.T) {
	t.Parallel() // its own etcd
	etcd := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := OpenEtcd(ctx, EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/w/"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := OpenEtcd(ctx, EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/w/"})
	defer b.Close()
	seen := make(chan string, 10)
	var wg sync.WaitGroup
	wg.Go(func() { a.Watch(ctx, Certificates, func(k string) { seen <- k }, func() {}) })
	defer wg.Wait()
	defer cancel()
	// The watch starts at some point after Watch is called: another node
	// writes until a write is seen (no sleep for the watch to start).
	for i := 0; ; i++ {
		_ = b.Update(ctx, func(tx Tx) error { return tx.Put(Certificates, "crt_1", []byte("{}")) })
		select {
		case k := <-seen:
			if k != "crt_1" {
				t.Errorf("watched %q", k)
			}
			return
		case <-time.After(100 * time.Millisecond):
			if i == 50 {
				t.Fatal("no watch event for another node's write")
			}
		}
	}
}
