package cert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/edge-cdn/edge/store"
)

// Errors of the certificate repository.
var (
	ErrNotFound = errors.New("certificate not found")
	ErrExists   = errors.New("a certificate with that name already exists")
)

// Certs stores certificate records and their versions. It is safe for
// concurrent use; every method is one store transaction.
type Certs struct {
	st  Store
	now func() time.Time

	mu       sync.Mutex
	onChange []func(id string)
}

// Store is what Certs needs of the store: transactions.
type Store interface {
	View(ctx context.Context, fn func(store.Tx) error) error
	Update(ctx context.Context, fn func(store.Tx) error) error
}

// NewCerts returns a repository over st.
func NewCerts(st Store) *Certs { return &Certs{st: st, now: time.Now} }

// OnChange registers fn to be called, after the write commits, with the id
// of every certificate created, changed or deleted.
func (c *Certs) OnChange(fn func(id string)) {
	c.mu.Lock()
	c.onChange = append(c.onChange, fn)
	c.mu.Unlock()
}

func (c *Certs) changed(id string) {
	c.mu.Lock()
	fns := c.onChange
	c.mu.Unlock()
	for _, fn := range fns {
		fn(id)
	}
}

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "crt_" + hex.EncodeToString(b[:])
}

func versionKey(id string, v int) string { return fmt.Sprintf("%s/%010d", id, v) }

// Create stores a new certificate with v as its version 1. rec's ID,
// Version, dates and the facts of v are filled in; rec is updated in place.
func (c *Certs) Create(ctx context.Context, rec *Certificate, v Version) error {
	now := c.now().UTC()
	rec.ID = newID()
	rec.CreatedAt, rec.UpdatedAt = now, now
	err := c.st.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Get(store.CertificateNames, rec.Name); err == nil {
			return fmt.Errorf("certificate %q: %w", rec.Name, ErrExists)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		v.Version = 1
		applyVersion(rec, &v)
		return Put(tx, rec, &v)
	})
	if err != nil {
		return err
	}
	c.changed(rec.ID)
	return nil
}

// Put writes rec, its name and, when v is not nil, v as its version
// v.Version, in tx, as Create does after its checks. It is for bulk loads
// that write many certificates in one transaction (benchmarks, imports): it
// checks nothing and runs no change hook.
func Put(tx store.Tx, rec *Certificate, v *Version) error {
	if v != nil {
		if err := putJSON(tx, store.CertificateVersions, versionKey(rec.ID, v.Version), v); err != nil {
			return err
		}
	}
	if err := tx.Put(store.CertificateNames, rec.Name, []byte(rec.ID)); err != nil {
		return err
	}
	return putJSON(tx, store.Certificates, rec.ID, rec)
}

func applyVersion(rec *Certificate, v *Version) {
	rec.Version = v.Version
	rec.SubjectNames = v.SubjectNames
	rec.Issuer = v.Issuer
	rec.NotBefore, rec.NotAfter = v.NotBefore, v.NotAfter
	rec.Source = v.Source
}

// AddVersion stores v as the next version of the certificate and makes it
// current; update, if not nil, changes the record in the same transaction.
// Versions beyond the newest KeepVersions are pruned. It returns the record
// as stored.
func (c *Certs) AddVersion(ctx context.Context, idOrName string, v Version, update func(*Certificate)) (*Certificate, error) {
	return c.addVersion(ctx, nil, idOrName, func(*Certificate, store.Tx) (Version, error) { return v, nil }, func(rec *Certificate) error {
		if update != nil {
			update(rec)
		}
		return nil
	})
}

// addVersion is AddVersion with the version made inside the transaction
// from the record as stored (rollback reads a kept version), and an update
// that may refuse the change: an error from either aborts it and nothing
// is written. fence, if not nil, runs first in the transaction: an error
// from it aborts the change too.
func (c *Certs) addVersion(ctx context.Context, fence Fence, idOrName string, make func(*Certificate, store.Tx) (Version, error), update func(*Certificate) error) (*Certificate, error) {
	var rec *Certificate
	err := c.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if rec, err = getFenced(tx, fence, idOrName); err != nil {
			return err
		}
		v, err := make(rec, tx)
		if err != nil {
			return err
		}
		v.Version = rec.Version + 1
		applyVersion(rec, &v)
		if err := update(rec); err != nil {
			return err
		}
		rec.UpdatedAt = c.now().UTC()
		if err := putJSON(tx, store.CertificateVersions, versionKey(rec.ID, v.Version), &v); err != nil {
			return err
		}
		if old := v.Version - KeepVersions; old >= 1 {
			if err := tx.Delete(store.CertificateVersions, versionKey(rec.ID, old)); err != nil {
				return err
			}
		}
		return putJSON(tx, store.Certificates, rec.ID, rec)
	})
	if err != nil {
		return nil, err
	}
	c.changed(rec.ID)
	return rec, nil
}

// getFenced runs fence, if not nil, then reads the record: the start of
// every fenced write.
func getFenced(tx store.Tx, fence Fence, idOrName string) (*Certificate, error) {
	if fence != nil {
		if err := fence(tx); err != nil {
			return nil, err
		}
	}
	return get(tx, idOrName)
}

// Update changes a certificate's record (not its versions) with fn. An error
// from fn aborts the change and is returned.
func (c *Certs) Update(ctx context.Context, idOrName string, fn func(*Certificate) error) (*Certificate, error) {
	return c.update(ctx, nil, idOrName, fn)
}

// update is Update with an optional fence run first in the transaction.
func (c *Certs) update(ctx context.Context, fence Fence, idOrName string, fn func(*Certificate) error) (*Certificate, error) {
	var rec *Certificate
	err := c.st.Update(ctx, func(tx store.Tx) error {
		var err error
		if rec, err = getFenced(tx, fence, idOrName); err != nil {
			return err
		}
		id, name := rec.ID, rec.Name
		if err := fn(rec); err != nil {
			return err
		}
		rec.ID, rec.Name = id, name
		rec.UpdatedAt = c.now().UTC()
		return putJSON(tx, store.Certificates, rec.ID, rec)
	})
	if err != nil {
		return nil, err
	}
	c.changed(rec.ID)
	return rec, nil
}

// Get returns the certificate with that id, or else that name.
func (c *Certs) Get(ctx context.Context, idOrName string) (*Certificate, error) {
	var rec *Certificate
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		rec, err = get(tx, idOrName)
		return err
	})
	return rec, err
}

func get(tx store.Tx, idOrName string) (*Certificate, error) {
	b, err := tx.Get(store.Certificates, idOrName)
	if errors.Is(err, store.ErrNotFound) {
		var id []byte
		if id, err = tx.Get(store.CertificateNames, idOrName); err == nil {
			b, err = tx.Get(store.Certificates, string(id))
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("certificate %q: %w", idOrName, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	rec := new(Certificate)
	if err := json.Unmarshal(b, rec); err != nil {
		return nil, fmt.Errorf("certificate %q: stored record is corrupt: %w", idOrName, err)
	}
	return rec, nil
}

// List returns every certificate, in id order.
func (c *Certs) List(ctx context.Context) ([]*Certificate, error) {
	var out []*Certificate
	err := c.st.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.Certificates, "", func(k string, v []byte) error {
			rec := new(Certificate)
			if err := json.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("certificate %s: stored record is corrupt: %w", k, err)
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// Current returns the certificate and its current version, key included.
func (c *Certs) Current(ctx context.Context, idOrName string) (*Certificate, *Version, error) {
	var rec *Certificate
	var v *Version
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		if rec, err = get(tx, idOrName); err != nil {
			return err
		}
		v, err = getVersion(tx, rec.ID, rec.Version)
		return err
	})
	return rec, v, err
}

func getVersion(tx store.Tx, id string, n int) (*Version, error) {
	b, err := tx.Get(store.CertificateVersions, versionKey(id, n))
	if err != nil {
		return nil, fmt.Errorf("certificate %s version %d: %w", id, n, err)
	}
	v := new(Version)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("certificate %s version %d: stored version is corrupt: %w", id, n, err)
	}
	return v, nil
}

// Versions returns the kept versions of a certificate, oldest first, without
// their private keys.
func (c *Certs) Versions(ctx context.Context, idOrName string) ([]Version, error) {
	var out []Version
	err := c.st.View(ctx, func(tx store.Tx) error {
		rec, err := get(tx, idOrName)
		if err != nil {
			return err
		}
		return tx.ForEach(store.CertificateVersions, rec.ID+"/", func(k string, b []byte) error {
			var v Version
			if err := json.Unmarshal(b, &v); err != nil {
				return fmt.Errorf("%s: stored version is corrupt: %w", k, err)
			}
			v.KeyPEM = ""
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// Delete removes a certificate and all its versions.
func (c *Certs) Delete(ctx context.Context, idOrName string) error {
	var id string
	err := c.st.Update(ctx, func(tx store.Tx) error {
		rec, err := get(tx, idOrName)
		if err != nil {
			return err
		}
		id = rec.ID
		var keys []string
		if err := tx.ForEach(store.CertificateVersions, rec.ID+"/", func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(store.CertificateVersions, k); err != nil {
				return err
			}
		}
		if err := tx.Delete(store.CertificateNames, rec.Name); err != nil {
			return err
		}
		return tx.Delete(store.Certificates, rec.ID)
	})
	if err != nil {
		return err
	}
	c.changed(id)
	return nil
}

func putJSON(tx store.Tx, bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(bucket, key, b)
}

// Types returns the type of every certificate by name.
func (c *Certs) Types(ctx context.Context) (map[string]string, error) {
	list, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(list))
	for _, rec := range list {
		out[rec.Name] = rec.Type
	}
	return out, nil
}

// Summary is the few facts of a certificate record that a start or a
// property reload needs: the handshake index (ID, Name, Type, Version,
// NotAfter) and the properties' checks (Type, and AutoRenew for
// tls.renew_automation).
type Summary struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	AutoRenew string    `json:"auto_renew"`
	Version   int       `json:"version"`
	NotAfter  time.Time `json:"not_after"`
}

// EachRecord calls fn with the Summary of every certificate record, in
// key order, decoding nothing else (a full record costs about four times
// as much: 2 s of a start with 100,000 certificates). The records are
// decoded in batches on every CPU.
func (c *Certs) EachRecord(ctx context.Context, fn func(Summary)) error {
	var batch []summaryJob
	return c.st.View(ctx, func(tx store.Tx) error {
		batch = batch[:0] // a View that runs again starts over
		if err := tx.ForEach(store.Certificates, "", func(k string, b []byte) error {
			batch = append(batch, summaryJob{key: k, raw: b})
			if len(batch) < summaryBatch {
				return nil
			}
			err := decodeSummaries(batch, fn)
			batch = batch[:0]
			return err
		}); err != nil {
			return err
		}
		return decodeSummaries(batch, fn)
	})
}

// summaryBatch is how many records EachRecord decodes at once: enough to
// share among the CPUs, few enough that their bytes stay small.
const summaryBatch = 1024

// summaryJob is one record for decodeSummaries.
type summaryJob struct {
	key string
	raw []byte
	sum Summary
	err error
}

// decodeSummaries decodes jobs, on every CPU when there are many, then
// calls fn with each in order; a corrupt record ends it with its error.
func decodeSummaries(jobs []summaryJob, fn func(Summary)) error {
	decode := func(j *summaryJob) {
		if j.err = json.Unmarshal(j.raw, &j.sum); j.err == nil {
			j.sum.Type, j.sum.AutoRenew = internSetting(j.sum.Type), internSetting(j.sum.AutoRenew)
		}
		j.raw = nil
	}
	if workers := min(runtime.GOMAXPROCS(0), len(jobs)/64); workers > 1 {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(jobs); i += workers {
					decode(&jobs[i])
				}
			})
		}
		wg.Wait()
	} else {
		for i := range jobs {
			decode(&jobs[i])
		}
	}
	for i := range jobs {
		if jobs[i].err != nil {
			return fmt.Errorf("certificate %s: stored record is corrupt: %w", jobs[i].key, jobs[i].err)
		}
		fn(jobs[i].sum)
	}
	return nil
}

// internSetting returns the constant of a known type or auto_renew value,
// so that 100,000 summaries do not each hold a copy.
func internSetting(s string) string {
	switch s {
	case TypeServer:
		return TypeServer
	case TypeCA:
		return TypeCA
	case AutoRenewACME:
		return AutoRenewACME
	case AutoRenewNone:
		return AutoRenewNone
	}
	return s
}

// EachVersion calls fn with every stored version, key included, in
// batches of read transactions so that writers are not held up long.
func (c *Certs) EachVersion(ctx context.Context, fn func(id string, v *Version)) (int, error) {
	n, from := 0, ""
	for {
		var last string
		batch := 0
		err := c.st.View(ctx, func(tx store.Tx) error {
			// Each batch starts after the last: on etcd the range read
			// starts there, so a batch never reads the keys before it.
			return tx.ForEachFrom(store.CertificateVersions, "", from, func(k string, b []byte) error {
				if batch == 2000 {
					return errBatchFull
				}
				var v Version
				if err := json.Unmarshal(b, &v); err == nil {
					fn(k[:strings.IndexByte(k, '/')], &v)
				}
				last, batch = k, batch+1
				return nil
			})
		})
		if err != nil && !errors.Is(err, errBatchFull) {
			return n, err
		}
		n += batch
		if !errors.Is(err, errBatchFull) {
			return n, nil
		}
		from = last + "\x00"
	}
}

var errBatchFull = errors.New("batch full")

// VersionOf reads one version of a certificate.
func (c *Certs) VersionOf(ctx context.Context, id string, n int) (*Version, error) {
	var v *Version
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		v, err = getVersion(tx, id, n)
		return err
	})
	return v, err
}
