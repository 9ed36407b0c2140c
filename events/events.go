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
)

// Types lists every event type.
var Types = []string{CertificateIssued, CertificateRenewed, CertificateFailed, CertificateExpiring,
	CertificateExpired, PropertyLoaded, PropertyRejected}

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
	seq     uint64
	waiters []chan struct{}
}

// Open returns a Log over st, continuing the sequence stored there.
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
	err := st.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.Events, "", func(k string, _ []byte) error {
			n, err := strconv.ParseUint(k, 10, 64)
			if err == nil && n > l.seq {
				l.seq = n
			}
			return nil
		})
	})
	return l, err
}

func seqKey(n uint64) string { return fmt.Sprintf("%020d", n) }

// Emit stores, logs and announces ev; ID, Seq, Time and Node are set here.
func (l *Log) Emit(ctx context.Context, ev Event) (Event, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	ev.ID = "evt_" + hex.EncodeToString(b[:])
	ev.Time = l.opts.Now().UTC()
	ev.Node = l.opts.Node
	l.mu.Lock()
	ev.Seq = l.seq + 1
	data, err := json.Marshal(ev)
	if err == nil {
		err = l.st.Update(ctx, func(tx store.Tx) error {
			if err := tx.Put(store.Events, seqKey(ev.Seq), data); err != nil {
				return err
			}
			if ev.Seq > uint64(l.opts.Keep) {
				return tx.Delete(store.Events, seqKey(ev.Seq-uint64(l.opts.Keep)))
			}
			return nil
		})
	}
	if err == nil {
		l.seq = ev.Seq
	}
	waiters := l.waiters
	l.mu.Unlock()
	lvl := zap.InfoLevel
	if ev.Type == CertificateFailed || ev.Type == CertificateExpired || ev.Type == PropertyRejected {
		lvl = zap.WarnLevel
	}
	l.log.Log(lvl, "event", zap.String("type", ev.Type), zap.String("event_id", ev.ID),
		zap.String("property", ev.Property), zap.String("detail", ev.Detail), zap.ByteString("certificate", ev.Certificate))
	if err != nil {
		l.log.Error("event not stored", zap.String("type", ev.Type), zap.Error(err))
		return ev, err
	}
	for _, w := range waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	return ev, nil
}

// Latest returns the sequence number of the newest event.
func (l *Log) Latest() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
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
