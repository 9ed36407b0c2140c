package cert

import (
	"context"
	"fmt"

	"github.com/edge-cdn/edge/store"
)

// Fenced writes are those of a lock holder whose lock may lapse while it
// works (a renewal's order can outlast its lease): it reads the record's
// revision under the lock, and its later writes happen only if the record
// is still in that state. Otherwise they fail with store.ErrConflict and
// nothing is written: another node took over.

// Revision returns the token of the state of the certificate record id
// (an id, not a name), for AddVersionIf and UpdateIf.
func (c *Certs) Revision(ctx context.Context, id string) (store.Rev, error) {
	var rev store.Rev
	err := c.st.View(ctx, func(tx store.Tx) (err error) {
		rev, err = tx.Revision(store.Certificates, id)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("certificate %q: %w", id, err)
	}
	return rev, nil
}

// AddVersionIf is AddVersion on condition that the record id is still in
// the state rev (from Revision): else it returns store.ErrConflict.
func (c *Certs) AddVersionIf(ctx context.Context, id string, rev store.Rev, v Version, update func(*Certificate)) (*Certificate, error) {
	return c.addVersion(ctx, requireRev(id, rev), id, func(*Certificate, store.Tx) (Version, error) { return v, nil }, func(rec *Certificate) error {
		if update != nil {
			update(rec)
		}
		return nil
	})
}

// UpdateIf is Update on condition that the record id is still in the
// state rev: else it returns store.ErrConflict.
func (c *Certs) UpdateIf(ctx context.Context, id string, rev store.Rev, fn func(*Certificate) error) (*Certificate, error) {
	return c.update(ctx, requireRev(id, rev), id, fn)
}

func requireRev(id string, rev store.Rev) func(store.Tx) error {
	return func(tx store.Tx) error { return tx.Require(store.Certificates, id, rev) }
}
