package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testForEachFrom: a walk from a start key sees exactly the keys at or
// after it, own writes merged; a batched walk resumed with last+"\x00"
// sees every key once.
func testForEachFrom(t *testing.T, s Store) {
	ctx := context.Background()
	err := s.Update(ctx, func(tx Tx) error {
		for i := range 50 {
			if err := tx.Put(CertificateVersions, fmt.Sprintf("crt_%02d/%010d", i/10, i%10), []byte{byte(i)}); err != nil {
				return err
			}
		}
		return tx.Put(CertificateNames, "z", []byte("other prefix"))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Update(ctx, func(tx Tx) error {
			var keys []string
			_ = tx.ForEach(CertificateVersions, "crt_", func(k string, _ []byte) error { keys = append(keys, k); return nil })
			for _, k := range keys {
				_ = tx.Delete(CertificateVersions, k)
			}
			return tx.Delete(CertificateNames, "z")
		})
	})
	walk := func(tx Tx, prefix, from string) []string {
		var keys []string
		if err := tx.ForEachFrom(CertificateVersions, prefix, from, func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	_ = s.View(ctx, func(tx Tx) error {
		if got := walk(tx, "crt_", "crt_03/0000000007"); len(got) != 13 || got[0] != "crt_03/0000000007" {
			t.Errorf("from crt_03/7: %d keys from %v", len(got), got)
		}
		if got := walk(tx, "crt_02/", "crt_01/"); len(got) != 10 || got[0] != "crt_02/0000000000" {
			t.Errorf("from before the prefix: %v", got)
		}
		if got := walk(tx, "crt_02/", "crt_03/"); len(got) != 0 {
			t.Errorf("from after the prefix: %v", got)
		}
		if got := walk(tx, "", "crt_04/0000000009\x00"); len(got) != 0 {
			t.Errorf("from after the last key: %v", got)
		}
		return nil
	})
	// A batched walk, 7 keys a transaction, resumes where it stopped.
	var all []string
	full := errors.New("batch full")
	for from := ""; ; {
		var batch []string
		err := s.View(ctx, func(tx Tx) error {
			return tx.ForEachFrom(CertificateVersions, "crt_", from, func(k string, _ []byte) error {
				if len(batch) == 7 {
					return full
				}
				batch = append(batch, k)
				return nil
			})
		})
		all = append(all, batch...)
		if !errors.Is(err, full) {
			break
		}
		from = batch[len(batch)-1] + "\x00"
	}
	if len(all) != 50 || all[0] != "crt_00/0000000000" || all[49] != "crt_04/0000000009" {
		t.Errorf("batched walk saw %d keys: %v", len(all), all)
	}
	// Own writes in range are merged; deletes hidden; writes before from skipped.
	_ = s.Update(ctx, func(tx Tx) error {
		_ = tx.Put(CertificateVersions, "crt_00/0000000005x", []byte("own, before"))
		_ = tx.Put(CertificateVersions, "crt_04/0000000003x", []byte("own, after"))
		_ = tx.Delete(CertificateVersions, "crt_04/0000000004")
		got := walk(tx, "crt_04/", "crt_04/0000000002")
		want := "[crt_04/0000000002 crt_04/0000000003 crt_04/0000000003x crt_04/0000000005 crt_04/0000000006 crt_04/0000000007 crt_04/0000000008 crt_04/0000000009]"
		if fmt.Sprint(got) != want {
			t.Errorf("own writes: %v", got)
		}
		return errors.New("roll back")
	})
}

// testRequire: a write conditional on a revision read earlier commits
// while the key is unchanged and fails with ErrConflict after another
// writer changed it.
func testRequire(t *testing.T, s, other Store) {
	ctx := context.Background()
	put := func(st Store, v string) {
		if err := st.Update(ctx, func(tx Tx) error { return tx.Put(Certificates, "fenced", []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	put(s, "v1")
	var rev Rev
	_ = s.View(ctx, func(tx Tx) error {
		var err error
		if rev, err = tx.Revision(Certificates, "fenced"); err != nil || rev == "" {
			t.Fatalf("Revision: %q %v", rev, err)
		}
		if _, err := tx.Revision(Certificates, "absent"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revision of a missing key: %v", err)
		}
		return nil
	})
	fenced := func(st Store, v string) error {
		return st.Update(ctx, func(tx Tx) error {
			if err := tx.Require(Certificates, "fenced", rev); err != nil {
				return err
			}
			return tx.Put(CertificateVersions, "fenced/"+v, []byte(v))
		})
	}
	if err := fenced(s, "a"); err != nil {
		t.Fatalf("fenced write with an unchanged key: %v", err)
	}
	put(other, "v2") // another holder wrote meanwhile
	if err := fenced(s, "b"); !errors.Is(err, ErrConflict) {
		t.Fatalf("fenced write after a change: %v, want ErrConflict", err)
	}
	_ = s.View(ctx, func(tx Tx) error {
		if _, err := tx.Get(CertificateVersions, "fenced/b"); !errors.Is(err, ErrNotFound) {
			t.Error("a write whose fence failed was kept")
		}
		if err := tx.Require(Certificates, "absent", ""); err != nil {
			t.Errorf("Require absent: %v", err)
		}
		if err := tx.Require(Certificates, "fenced", ""); !errors.Is(err, ErrConflict) {
			t.Errorf("Require absent of a present key: %v", err)
		}
		return nil
	})
	_ = s.Update(ctx, func(tx Tx) error {
		for _, k := range []string{"fenced/a", "fenced/b"} {
			_ = tx.Delete(CertificateVersions, k)
		}
		return tx.Delete(Certificates, "fenced")
	})
}

// testLost: a held lock's Lost channel stays open until the lock goes;
// HeldContext ends with it.
func testLost(t *testing.T, s Store) {
	ctx := context.Background()
	f, ok := s.(Fencer)
	if !ok {
		t.Fatalf("%T is not a Fencer", s)
	}
	select {
	case <-f.Lost("fence/x"):
	default:
		t.Error("Lost of a lock not held is open")
	}
	if ok, err := s.TryLock(ctx, "fence/x"); !ok || err != nil {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	hctx, cancel := HeldContext(ctx, s, "fence/x")
	defer cancel()
	select {
	case <-f.Lost("fence/x"):
		t.Fatal("Lost closed while the lock is held")
	case <-hctx.Done():
		t.Fatal("HeldContext ended while the lock is held")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if !strings.Contains(fmt.Sprint(context.Cause(hctx)), "canceled") {
		t.Errorf("cause after cancel: %v", context.Cause(hctx))
	}
	_ = s.Unlock(ctx, "fence/x")
}
