package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// Event types (SPEC §8).
const (
	CertificateIssued   = "certificate.issued"
	CertificateRenewed  = "certificate.renewed"
	CertificateFailed   = "certificate.failed"
	CertificateExpiring = "certificate.expiring"
	CertificateExpired  = "certificate.expired"
	PropertyLoaded      = "property.loaded"
	PropertyRejected    = "property.rejected"
	// Extensions: the store (etcd) became unreachable, and reachable again.
	StoreUnavailable = "store.unavailable"
	StoreAvailable   = "store.available"
)

// Types lists every event type.
var Types = []string{CertificateIssued, CertificateRenewed, CertificateFailed, CertificateExpiring,
	CertificateExpired, PropertyLoaded, PropertyRejected, StoreUnavailable, StoreAvailable}

// Event is one announcement. Certificate holds the certificate object as
// the admin API shows it, when the event is about one.
type Event struct {
	ID          string          `json:"id"`
	Seq         uint64          `json:"seq"`
	Type        string          `json:"type"`
	Time        time.Time       `json:"time"`
	Node        string          `json:"node"`
	Certificate json.RawMessage `json:"certificate,omitempty"`
	Property    string          `json:"property,omitempty"`
	Detail      string          `json:"detail,omitempty"`
}

// Options configure a Log. Zero values are useful.
type Options struct {
	Node   string
	Logger *zap.Logger
	Keep   int              // events kept in the store; 0: 1000
	Now    func() time.Time // nil: time.Now
}

// Log stores events and fans them out. Make one with Open.
type Log struct {
	st   store.Store
	opts Options
	log  *zap.Logger

	mu      sync.Mutex // serialises Emit
	pending []Event    // emitted while the store was unreachable
	waiters []chan struct{}
}

// maxPending bounds the events kept in memory while the store is down.
const maxPending = 10000

// seqKey is where the newest sequence number lives (meta bucket); every
// node of a fleet takes its numbers there, in the transaction that stores
// the event, so numbers never collide.
const seqKey = "event_seq"

// Open returns a Log over st.
func Open(ctx context.Context, st store.Store, opts Options) (*Log, error) {
	if opts.Keep <= 0 {
		opts.Keep = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	l := &Log{st: st, opts: opts, log: opts.Logger}
	_, err := l.Latest(ctx)
	return l, err
}

func eventKey(n uint64) string { return fmt.Sprintf("%020d", n) }

// Emit stores, logs and announces ev; ID, Seq, Time and Node are set here.
// When the store cannot be written, the event is logged and kept in memory
// until Flush (or the next Emit) stores it: nothing is lost while the
// process lives.
func (l *Log) Emit(ctx context.Context, ev Event) (Event, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	ev.ID = "evt_" + hex.EncodeToString(b[:])
	ev.Time = l.opts.Now().UTC()
	ev.Node = l.opts.Node
	lvl := zap.InfoLevel
	if ev.Type == CertificateFailed || ev.Type == CertificateExpired || ev.Type == PropertyRejected || ev.Type == StoreUnavailable {
		lvl = zap.WarnLevel
	}
	l.log.Log(lvl, "event", zap.String("type", ev.Type), zap.String("event_id", ev.ID),
		zap.String("property", ev.Property), zap.String("detail", ev.Detail), zap.ByteString("certificate", ev.Certificate))
	l.mu.Lock()
	if len(l.pending) < maxPending {
		l.pending = append(l.pending, ev)
	}
	stored, err := l.flushLocked(ctx)
	waiters := l.waiters
	l.mu.Unlock()
	if err != nil {
		l.log.Warn("event kept in memory until the store answers", zap.String("type", ev.Type), zap.Error(err))
	}
	if len(stored) > 0 {
		wake(waiters)
	}
	for _, e := range stored {
		if e.ID == ev.ID {
			return e, err
		}
	}
	return ev, err
}

func wake(waiters []chan struct{}) {
	for _, w := range waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Flush stores the events kept in memory while the store was unreachable.
func (l *Log) Flush(ctx context.Context) error {
	l.mu.Lock()
	stored, err := l.flushLocked(ctx)
	waiters := l.waiters
	l.mu.Unlock()
	if len(stored) > 0 {
		wake(waiters)
	}
	return err
}

// flushLocked stores the pending events in order, each with the next
// sequence number of the store, and returns them as stored.
func (l *Log) flushLocked(ctx context.Context) ([]Event, error) {
	var stored []Event
	for len(l.pending) > 0 {
		ev := l.pending[0]
		err := l.st.Update(ctx, func(tx store.Tx) error {
			var seq uint64
			if b, err := tx.Get(store.Meta, seqKey); err == nil {
				seq, _ = strconv.ParseUint(string(b), 10, 64)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			ev.Seq = seq + 1
			data, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if err := tx.Put(store.Events, eventKey(ev.Seq), data); err != nil {
				return err
			}
			if err := tx.Put(store.Meta, seqKey, []byte(strconv.FormatUint(ev.Seq, 10))); err != nil {
				return err
			}
			if ev.Seq > uint64(l.opts.Keep) {
				return tx.Delete(store.Events, eventKey(ev.Seq-uint64(l.opts.Keep)))
			}
			return nil
		})
		if err != nil {
			return stored, err
		}
		stored = append(stored, ev)
		l.pending = l.pending[1:]
	}
	return stored, nil
}

// Latest returns the sequence number of the newest stored event.
func (l *Log) Latest(ctx context.Context) (uint64, error) {
	var seq uint64
	err := l.st.View(ctx, func(tx store.Tx) error {
		b, err := tx.Get(store.Meta, seqKey)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err == nil {
			seq, err = strconv.ParseUint(string(b), 10, 64)
		}
		return err
	})
	return seq, err
}

// After returns up to limit events with a sequence number above seq, oldest
// first.
func (l *Log) After(ctx context.Context, seq uint64, limit int) ([]Event, error) {
	var out []Event
	stop := errors.New("stop")
	err := l.st.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.Events, "", func(k string, v []byte) error {
			n, _ := strconv.ParseUint(k, 10, 64)
			if n <= seq {
				return nil
			}
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("event %s: stored event is corrupt: %w", k, err)
			}
			out = append(out, ev)
			if limit > 0 && len(out) >= limit {
				return stop
			}
			return nil
		})
	})
	if errors.Is(err, stop) {
		err = nil
	}
	return out, err
}

// Since returns the kept events newer than since (a time), oldest first.
func (l *Log) Since(ctx context.Context, since time.Time) ([]Event, error) {
	all, err := l.After(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	i := 0
	for i < len(all) && !all[i].Time.After(since) {
		i++
	}
	return all[i:], nil
}

// wake returns a channel that receives after each Emit.
func (l *Log) wake() chan struct{} {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	return ch
}
