package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/store"
)

// errHandedOver is what the store answers in the old process while a
// binary upgrade has the bbolt file open in the new one.
var errHandedOver = errors.New("store: the bbolt file is handed over to the new process of a binary upgrade")

// boltSlot is the node's bbolt store, which it can let go of and take back:
// bbolt locks its file for as long as a process has it open, so during a
// binary upgrade the old process closes it before the new one opens it,
// and reopens it if the new one fails. Every part of the node holds the
// slot, not the file; while the file is let go, reads and writes fail with
// errHandedOver (nothing is written anywhere else). Locks are in-process
// (bbolt has one writer process), so they live on across a reopen.
type boltSlot struct {
	path  string
	locks *store.Bolt // the first file, closed or not: its in-process locks
	cur   atomic.Pointer[store.Bolt]
}

var (
	_ store.Store  = (*boltSlot)(nil)
	_ store.Fencer = (*boltSlot)(nil)
)

func newBoltSlot(b *store.Bolt) *boltSlot {
	s := &boltSlot{path: b.Path(), locks: b}
	s.cur.Store(b)
	return s
}

func (s *boltSlot) get() (*store.Bolt, error) {
	if b := s.cur.Load(); b != nil {
		return b, nil
	}
	return nil, errHandedOver
}

func (s *boltSlot) View(ctx context.Context, fn func(store.Tx) error) error {
	b, err := s.get()
	if err != nil {
		return err
	}
	return b.View(ctx, fn)
}

func (s *boltSlot) Update(ctx context.Context, fn func(store.Tx) error) error {
	b, err := s.get()
	if err != nil {
		return err
	}
	return b.Update(ctx, fn)
}

func (s *boltSlot) Lock(ctx context.Context, name string) error { return s.locks.Lock(ctx, name) }
func (s *boltSlot) TryLock(ctx context.Context, name string) (bool, error) {
	return s.locks.TryLock(ctx, name)
}
func (s *boltSlot) Unlock(ctx context.Context, name string) error { return s.locks.Unlock(ctx, name) }
func (s *boltSlot) Lost(name string) <-chan struct{}              { return s.locks.Lost(name) }

// Ping reports whether the file is open here.
func (s *boltSlot) Ping(ctx context.Context) error {
	b, err := s.get()
	if err != nil {
		return err
	}
	return b.Ping(ctx)
}

// WriteTo writes a consistent copy of the file (the admin API's backup).
func (s *boltSlot) WriteTo(w io.Writer) (int64, error) {
	b, err := s.get()
	if err != nil {
		return 0, err
	}
	return b.WriteTo(w)
}

// release closes the file (bbolt waits for the transactions under way),
// which unlocks it for another process.
func (s *boltSlot) release() error {
	b := s.cur.Swap(nil)
	if b == nil {
		return nil
	}
	return b.Close()
}

// reopen takes the file back, waiting up to limit for a process that still
// holds it (a new binary killed a moment ago) to let go.
func (s *boltSlot) reopen(ctx context.Context, limit time.Duration) error {
	if s.cur.Load() != nil {
		return nil
	}
	deadline := time.Now().Add(limit)
	for {
		b, err := store.OpenBolt(s.path) // waits a second for the lock
		if err == nil {
			s.cur.Store(b)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("reopening the store after the upgrade: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Close closes the file if it is open here.
func (s *boltSlot) Close() error { return s.release() }
