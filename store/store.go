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

// Copy writes every key of every bucket of from into to, in batches, and
// returns how many it wrote. Keys only in to are left alone. Locks are not
// copied: they belong to running nodes.
func Copy(ctx context.Context, from, to Store) (int, error) {
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
	for i := 0; i < len(all); i += 100 {
		batch := all[i:min(i+100, len(all))]
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
	}
	return len(all), nil
}
