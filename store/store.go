package store

import (
	"context"
	"errors"
)

// Bucket names. Every backend creates all of them.
const (
	Meta                = "meta"
	Certificates        = "certificates"
	CertificateNames    = "certificate_names"
	CertificateVersions = "certificate_versions"
	Events              = "events"
	ACME                = "acme"
)

// SchemaVersion is the layout drawn in doc.go.
const SchemaVersion = "1"

var buckets = []string{Meta, Certificates, CertificateNames, CertificateVersions, Events, ACME}

// ErrNotFound is returned by Tx.Get for a missing key.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned by Tx.Require when a key changed since its
// Revision was read: a fenced write lost its fence. Update does not retry it.
var ErrConflict = errors.New("store: key changed since it was read")

// ErrTxnTooLarge is returned by Update on etcd when one transaction holds
// more writes (or more reads to check) than etcd accepts in one commit.
// Update never splits a transaction; only Copy (migration) writes in
// several commits.
var ErrTxnTooLarge = errors.New("store: transaction too large for one etcd commit")

// Rev is an opaque token of one key's state, from Tx.Revision: etcd's mod
// revision of the key, or for bbolt a digest of its value. Compare it only
// with Tx.Require.
type Rev string

// Tx is one transaction. A Tx from View refuses writes.
type Tx interface {
	// Get returns a copy of the value, or ErrNotFound.
	Get(bucket, key string) ([]byte, error)
	Put(bucket, key string, value []byte) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(bucket, key string) error
	// ForEach calls fn for every key with the prefix, in key order, with a
	// copy of the value. An error from fn stops the walk and is returned.
	ForEach(bucket, prefix string, fn func(key string, value []byte) error) error
	// ForEachFrom is ForEach from the first key >= from: keys before it
	// are not read at all (on etcd the range starts there). A batched
	// walk resumes after its last key k with from = k + "\x00".
	ForEachFrom(bucket, prefix, from string, fn func(key string, value []byte) error) error
	// Revision returns the token of key's current state, or ErrNotFound.
	Revision(bucket, key string) (Rev, error)
	// Require returns ErrConflict unless key is still in the state rev
	// (from Revision, typically read earlier under a lock). In Update the
	// commit is conditional on it too: a write that lands between Require
	// and the commit makes the transaction run again, and Require then
	// fails. rev "" requires the key to be absent. This is the fencing
	// write of a lock holder whose lock may have lapsed.
	Require(bucket, key string, rev Rev) error
}

// Store is what consumers of the store use; both backends implement it.
type Store interface {
	View(ctx context.Context, fn func(Tx) error) error
	Update(ctx context.Context, fn func(Tx) error) error
	Locker
	Close() error
}

// Buckets returns the names of every bucket.
func Buckets() []string { return append([]string(nil), buckets...) }

// batchLimiter is a backend that caps the writes of one transaction.
type batchLimiter interface{ MaxTxnWrites() int }

// MaxTxnWrites is how many writes one Update on st may hold: etcd's
// configured limit, or 0 for no limit (bbolt).
func MaxTxnWrites(st any) int {
	if b, ok := st.(batchLimiter); ok {
		return b.MaxTxnWrites()
	}
	return 0
}

// Copy writes every key of every bucket of from into to, in batches, and
// returns how many it wrote. Keys only in to are left alone. Locks are not
// copied: they belong to running nodes. This is migration, the one place
// where one logical write is split into several commits: an interrupted
// Copy leaves part of the keys copied and is simply run again.
func Copy(ctx context.Context, from, to Store) (int, error) {
	return CopyProgress(ctx, from, to, nil)
}

// CopyProgress is Copy, calling progress (if not nil) with the keys
// written so far and the total after each batch: a migration of 100,000
// certificates takes long enough to show.
func CopyProgress(ctx context.Context, from, to Store, progress func(done, total int)) (int, error) {
	batchSize := 100
	if n := MaxTxnWrites(to); n > 0 {
		batchSize = min(batchSize, n)
	}
	type kv struct {
		b, k string
		v    []byte
	}
	var all []kv
	err := from.View(ctx, func(tx Tx) error {
		for _, b := range buckets {
			if err := tx.ForEach(b, "", func(k string, v []byte) error {
				all = append(all, kv{b, k, v})
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(all); i += batchSize {
		batch := all[i:min(i+batchSize, len(all))]
		if err := to.Update(ctx, func(tx Tx) error {
			for _, e := range batch {
				if err := tx.Put(e.b, e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return i, err
		}
		if progress != nil {
			progress(i+len(batch), len(all))
		}
	}
	return len(all), nil
}
