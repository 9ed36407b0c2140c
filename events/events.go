package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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

// Store is what a Log needs of the store: store.Store (bbolt or etcd)
// has it. A backend that caps one transaction's writes says so with
// MaxTxnWrites() int, and the Log writes smaller batches.
type Store interface {
	View(ctx context.Context, fn func(store.Tx) error) error
	Update(ctx context.Context, fn func(store.Tx) error) error
}

// Options configure a Log. Zero values are useful.
type Options struct {
	Node   string
	Logger *zap.Logger
	Keep   int              // events kept in the store; 0: 1000
	Now    func() time.Time // nil: time.Now
	// MaxPending bounds the events waiting in memory to be stored (while
	// the store is unreachable); Emit refuses more with ErrQueueFull.
	// 0: 10000.
	MaxPending int
	// RetryMin and RetryMax bound the flusher's wait between attempts
	// while the store fails. 0: 100 ms and 5 s.
	RetryMin, RetryMax time.Duration
}

// ErrQueueFull is returned by Emit when MaxPending events already wait
// for the store: the event is logged but not stored or delivered.
var ErrQueueFull = errors.New("events: too many events waiting for the store; event logged, not stored")

// ErrClosed is returned by Emit after Close: the event is logged only.
var ErrClosed = errors.New("events: log closed; event logged, not stored")

// seqKey is where the newest sequence number lives (meta bucket); every
// node of a fleet takes its numbers there, in the transaction that stores
// the events, so numbers never collide.
const seqKey = "event_seq"

// Open returns a Log over st and starts its flusher; Close stops it.
func Open(ctx context.Context, st Store, opts Options) (*Log, error) {
	if opts.Keep <= 0 {
		opts.Keep = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 10000
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 100 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Second
	}
	l := newLog(st, opts)
	if _, err := l.Latest(ctx); err != nil {
		return nil, err
	}
	l.start()
	return l, nil
}

func eventKey(n uint64) string { return fmt.Sprintf("%020d", n) }

// Emit logs ev and queues it for the store and the webhooks; ID, Time and
// Node are set here, Seq when the flusher stores it. Emit never waits for
// the store: while it is unreachable events wait in memory, in order, up
// to Options.MaxPending; beyond that Emit returns ErrQueueFull (the event
// is still logged). Flush waits until queued events are stored.
func (l *Log) Emit(_ context.Context, ev Event) (Event, error) {
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
	return ev, l.enqueue(ev)
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

// readYourEmits bounds how long After and Since wait for events emitted
// before them to be stored.
const readYourEmits = 2 * time.Second

// After returns up to limit events with a sequence number above seq,
// oldest first. Events this Log emitted before the call are included if
// the store takes them within a short wait (none while writes fail).
func (l *Log) After(ctx context.Context, seq uint64, limit int) ([]Event, error) {
	l.mu.Lock()
	failing := l.failing
	l.mu.Unlock()
	if !failing {
		fctx, cancel := context.WithTimeout(ctx, readYourEmits)
		_ = l.Flush(fctx)
		cancel()
	}
	return l.after(ctx, seq, limit)
}

// after reads the stored events after seq: the range starts at seq+1.
func (l *Log) after(ctx context.Context, seq uint64, limit int) ([]Event, error) {
	var out []Event
	stop := errors.New("stop")
	err := l.st.View(ctx, func(tx store.Tx) error {
		return tx.ForEachFrom(store.Events, "", eventKey(seq+1), func(k string, v []byte) error {
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
