package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bolt is the single-node backend: one bbolt file.
type Bolt struct {
	*localLocks
	db   *bolt.DB
	path string
}

var (
	_ Store  = (*Bolt)(nil)
	_ Locker = (*Bolt)(nil)
)

// OpenBolt opens (creating if needed) the store file at path. A file held by
// another process fails after a second with an error saying so, rather than
// waiting forever.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s is in use by another process (is edge serve already running?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	// bbolt applies the mode only when it creates the file; key material
	// lives here, so tighten an existing file too.
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	b := &Bolt{localLocks: newLocalLocks(), db: db, path: path}
	if err := b.init(); err != nil {
		db.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bolt) init() error {
	return b.db.Update(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("store %s: bucket %s: %w", b.path, name, err)
			}
		}
		m := tx.Bucket([]byte(Meta))
		switch v := m.Get([]byte("schema_version")); {
		case v == nil:
			return m.Put([]byte("schema_version"), []byte(SchemaVersion))
		case string(v) != SchemaVersion:
			return fmt.Errorf("store %s has schema version %s; this edge binary reads version %s", b.path, v, SchemaVersion)
		}
		return nil
	})
}

// Path returns the file's path.
func (b *Bolt) Path() string { return b.path }

// View runs fn in a read-only transaction.
func (b *Bolt) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Update runs fn in a read-write transaction, committed if fn returns nil.
func (b *Bolt) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Sizer is a writer told, before WriteTo writes, how many bytes it will
// write: the admin API sends it as the backup's Content-Length, so that
// `edge backup` can show the time left.
type Sizer interface{ SetSize(n int64) }

// WriteTo writes a consistent copy of the whole file to w.
func (b *Bolt) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		if s, ok := w.(Sizer); ok {
			s.SetSize(tx.Size()) // exactly what tx.WriteTo writes
		}
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Close closes the file.
func (b *Bolt) Close() error { return b.db.Close() }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) bucket(name string) (*bolt.Bucket, error) {
	bk := t.tx.Bucket([]byte(name))
	if bk == nil {
		return nil, fmt.Errorf("store: no bucket %q", name)
	}
	return bk, nil
}

func (t boltTx) Get(bucket, key string) ([]byte, error) {
	bk, err := t.bucket(bucket)
	if err != nil {
		return nil, err
	}
	v := bk.Get([]byte(key))
	if v == nil {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (t boltTx) Put(bucket, key string, value []byte) error {
	bk, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	if key == "" {
		return errors.New("store: empty key")
	}
	return bk.Put([]byte(key), value)
}

func (t boltTx) Delete(bucket, key string) error {
	bk, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return bk.Delete([]byte(key))
}

func (t boltTx) ForEach(bucket, prefix string, fn func(string, []byte) error) error {
	return t.ForEachFrom(bucket, prefix, "", fn)
}

func (t boltTx) ForEachFrom(bucket, prefix, from string, fn func(string, []byte) error) error {
	bk, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	c := bk.Cursor()
	p := []byte(prefix)
	start := p
	if from > prefix {
		start = []byte(from)
	}
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}

// Revision is a digest of the value: one process holds a bbolt file, so
// a lock there cannot lapse, and a value that changed and changed back is
// the same state to whoever compares.
func (t boltTx) Revision(bucket, key string) (Rev, error) {
	v, err := t.Get(bucket, key)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(v)
	return Rev("sha256:" + hex.EncodeToString(sum[:16])), nil
}

func (t boltTx) Require(bucket, key string, rev Rev) error {
	cur, err := t.Revision(bucket, key)
	if errors.Is(err, ErrNotFound) && rev == "" {
		return nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if cur != rev {
		return fmt.Errorf("%s/%s: %w", bucket, key, ErrConflict)
	}
	return nil
}

// OpenBoltReadOnly opens an existing store for reading, beside no writer.
// A missing file is an empty store: it returns ErrNotFound.
func OpenBoltReadOnly(path string) (*Bolt, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, ErrNotFound)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store %s is in use by a running node", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return &Bolt{localLocks: newLocalLocks(), db: db, path: path}, nil
}

// Ping reports whether the file is open.
func (b *Bolt) Ping(ctx context.Context) error {
	return b.View(ctx, func(Tx) error { return nil })
}
