package cert

import (
	"context"
	"fmt"
	"time"

	"github.com/edge-cdn/edge/store"
)

// Fenced writes are those of a renewal attempt whose lock may lapse while
// it works (an order can outlast its lease). The attempt marked the record
// renewing with its own LastAttemptAt under the lock; its later writes
// happen only while the record still carries that mark. A node that took
// the lock over marks the record with its own attempt, so the first node's
// writes then fail with store.ErrConflict and nothing is written. Writes
// that leave the mark alone (an ARI answer, an expiry notice) do not break
// the fence: the attempt's certificate is not thrown away for them.

// Fence is a condition checked inside the write's transaction.
type Fence func(tx store.Tx) error

// RequireAttempt is the fence of the renewal attempt that marked record id
// renewing at at.
func RequireAttempt(id string, at time.Time) Fence {
	return func(tx store.Tx) error {
		rec, err := get(tx, id)
		if err != nil {
			return err
		}
		if r := rec.Renewal; r.State != RenewalRenewing || r.LastAttemptAt == nil || !r.LastAttemptAt.Equal(at) {
			return fmt.Errorf("certificate %q is no longer under the renewal attempt of %s: %w", id, at.Format(time.RFC3339Nano), store.ErrConflict)
		}
		return nil
	}
}

// AddVersionIf is AddVersion on condition that fence holds in the same
// transaction: else it returns the fence's error (store.ErrConflict).
func (c *Certs) AddVersionIf(ctx context.Context, id string, fence Fence, v Version, update func(*Certificate)) (*Certificate, error) {
	return c.addVersion(ctx, fence, id, func(*Certificate, store.Tx) (Version, error) { return v, nil }, func(rec *Certificate) error {
		if update != nil {
			update(rec)
		}
		return nil
	})
}

// UpdateIf is Update on condition that fence holds in the same
// transaction.
func (c *Certs) UpdateIf(ctx context.Context, id string, fence Fence, fn func(*Certificate) error) (*Certificate, error) {
	return c.update(ctx, fence, id, fn)
}
