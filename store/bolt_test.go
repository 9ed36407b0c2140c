package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "edge.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, path
}

func TestBoltRoundTrip(t *testing.T) {
	ctx := context.Background()
	b, path := openTemp(t)
	err := b.Update(ctx, func(tx Tx) error {
		for i := range 5 {
			if err := tx.Put(CertificateVersions, fmt.Sprintf("crt_a/%010d", i), []byte{byte(i)}); err != nil {
				return err
			}
		}
		return tx.Put(CertificateVersions, "crt_b/0000000001", []byte("b"))
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	err = b.View(ctx, func(tx Tx) error {
		return tx.ForEach(CertificateVersions, "crt_a/", func(k string, v []byte) error {
			keys = append(keys, k)
			return nil
		})
	})
	if err != nil || len(keys) != 5 || keys[0] != "crt_a/0000000000" {
		t.Fatalf("ForEach: %v, %v", keys, err)
	}
	// Writes are refused in a read transaction, and a failing Update
	// changes nothing.
	if err := b.View(ctx, func(tx Tx) error { return tx.Put(Events, "x", nil) }); err == nil {
		t.Error("Put in View succeeded")
	}
	boom := errors.New("boom")
	if err := b.Update(ctx, func(tx Tx) error {
		_ = tx.Delete(CertificateVersions, "crt_b/0000000001")
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("Update returned %v, want boom", err)
	}
	// Reopen: the data is on disk, with mode 0600.
	b.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("store file mode %v, want 0600 (%v)", st.Mode().Perm(), err)
	}
	b2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	err = b2.View(ctx, func(tx Tx) error {
		v, err := tx.Get(CertificateVersions, "crt_b/0000000001")
		if string(v) != "b" {
			return fmt.Errorf("got %q, %v", v, err)
		}
		if _, err := tx.Get(CertificateVersions, "missing"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("missing key: %v, want ErrNotFound", err)
		}
		if _, err := tx.Get("nobucket", "x"); err == nil {
			return errors.New("unknown bucket accepted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBoltSecondOpenFailsClearly(t *testing.T) {
	_, path := openTemp(t)
	_, err := OpenBolt(path)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second open: %v, want 'in use by another process'", err)
	}
}

func TestBoltTightensMode(t *testing.T) {
	b, path := openTemp(t)
	b.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	b2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	b2.Close()
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after reopen, want 0600", st.Mode().Perm())
	}
}

func TestBoltRefusesNewerSchema(t *testing.T) {
	b, path := openTemp(t)
	b.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(Meta)).Put([]byte("schema_version"), []byte("99")) })
	db.Close()
	if _, err := OpenBolt(path); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Fatalf("open: %v, want a schema version error", err)
	}
}

func TestBoltCancelledContext(t *testing.T) {
	b, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Update(ctx, func(Tx) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Update with cancelled ctx: %v", err)
	}
}
