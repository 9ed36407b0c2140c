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
