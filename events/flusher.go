package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// Log stores events and fans them out. Make one with Open, stop it with
// Close. Emit only queues: one flusher goroutine, owned by the Log,
// writes the queue to the store in batches (one transaction for many
// events), in order, and wakes the webhook workers. No mutex is held
// across a store call.
type Log struct {
	st   Store
	opts Options
	log  *zap.Logger

	mu       sync.Mutex // guards the fields below; never held across I/O
	queue    []Event    // emitted, not yet stored, oldest first
	accepted uint64     // events ever queued
	done     uint64     // events ever taken off the queue (stored)
	dropped  uint64     // events refused because the queue was full
	closed   bool
	failing  bool          // the last store write failed
	progress chan struct{} // closed (and replaced) each time done grows
	waiters  []chan struct{}

	kick     chan struct{} // Emit: wakes an idle flusher; capacity 1
	urgent   chan struct{} // Flush: also cuts a backoff short; capacity 1
	stop     chan struct{} // closed by Close: drain, then exit
	stopOnce sync.Once
	cancel   context.CancelFunc // aborts the flusher's store call
	exited   chan struct{}      // closed when the flusher has returned
}

func newLog(st Store, opts Options) *Log {
	return &Log{st: st, opts: opts, log: opts.Logger, progress: make(chan struct{}),
		kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1), stop: make(chan struct{}), exited: make(chan struct{})}
}

func (l *Log) start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(ctx)
}

func (l *Log) enqueue(ev Event) error {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	case len(l.queue) >= l.opts.MaxPending:
		l.dropped++
		n := l.dropped
		l.mu.Unlock()
		if n&(n-1) == 0 { // 1, 2, 4, 8, ...: the log says so without flooding
			l.log.Warn("event queue full while the store is unreachable; newest events are logged, not stored",
				zap.String("type", ev.Type), zap.String("event_id", ev.ID), zap.Uint64("dropped_total", n))
		}
		return ErrQueueFull
	}
	l.queue = append(l.queue, ev)
	l.accepted++
	l.mu.Unlock()
	l.poke()
	return nil
}

func (l *Log) poke() { signal(l.kick) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Pending returns how many events wait for the store, and how many were
// refused since Open because too many were waiting (for metrics).
func (l *Log) Pending() (waiting int, dropped uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue), l.dropped
}

// Flush waits until every event emitted before the call is stored, or ctx
// ends. It asks the flusher to try the store now rather than after its
// backoff.
func (l *Log) Flush(ctx context.Context) error {
	l.mu.Lock()
	target := l.accepted
	l.mu.Unlock()
	for {
		l.mu.Lock()
		done, progress, waiting := l.done, l.progress, len(l.queue)
		l.mu.Unlock()
		if done >= target {
			return nil
		}
		signal(l.urgent)
		select {
		case <-progress:
		case <-l.exited:
			return fmt.Errorf("events: log closed with %d events not stored", waiting)
		case <-ctx.Done():
			return fmt.Errorf("events: %d events wait for the store: %w", waiting, ctx.Err())
		}
	}
}

// Close stops accepting events, lets the flusher store what is queued
// until ctx ends, then stops it and waits for it. It returns an error
// naming the events left unstored (they were logged when emitted).
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.stopOnce.Do(func() { close(l.stop) })
	select {
	case <-l.exited:
	case <-ctx.Done():
		l.cancel()
		<-l.exited
	}
	l.cancel()
	l.mu.Lock()
	left := len(l.queue)
	l.mu.Unlock()
	if left > 0 {
		return fmt.Errorf("events: closed with %d events not stored (they are in the log)", left)
	}
	return nil
}

// run is the flusher: it stores the queue in batches, oldest first,
// retrying with backoff while the store fails. After stop it drains the
// queue and returns; a cancelled ctx ends it at once.
func (l *Log) run(ctx context.Context) {
	defer close(l.exited)
	delay := l.opts.RetryMin
	failing := false
	for {
		l.mu.Lock()
		batch := append([]Event(nil), l.queue[:min(len(l.queue), l.batchSize())]...)
		l.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-l.kick:
				continue
			case <-l.urgent:
				continue
			case <-l.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		err := l.write(ctx, batch)
		l.mu.Lock()
		l.failing = err != nil
		l.mu.Unlock()
		if err == nil {
			if failing {
				l.log.Info("events stored again", zap.Int("batch", len(batch)))
			}
			failing, delay = false, l.opts.RetryMin
			l.stored(len(batch))
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !failing {
			waiting, _ := l.Pending()
			l.log.Warn("events wait in memory until the store answers", zap.Int("waiting", waiting), zap.Error(err))
		}
		failing = true
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.urgent: // Flush: try now (Emit does not cut the backoff)
		case <-ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
		delay = min(delay*2, l.opts.RetryMax)
	}
}

// batchSize is how many events one transaction takes: each costs a put
// and a delete of the event leaving the kept window, plus one put of the
// sequence number.
func (l *Log) batchSize() int {
	if n := store.MaxTxnWrites(l.st); n > 0 {
		return max(1, (n-1)/2)
	}
	return 500
}

// stored takes n stored events off the queue and wakes whoever waits.
func (l *Log) stored(n int) {
	l.mu.Lock()
	l.queue = l.queue[n:]
	if len(l.queue) == 0 {
		l.queue = nil // let a large backlog's array go
	}
	l.done += uint64(n)
	close(l.progress)
	l.progress = make(chan struct{})
	waiters := l.waiters
	l.mu.Unlock()
	for _, w := range waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// writeTimeout bounds one batch's transaction, whatever the store's own
// bounds are.
const writeTimeout = 10 * time.Second

// write stores batch in one transaction, numbering the events after the
// newest stored sequence number and deleting those that leave the kept
// window.
func (l *Log) write(ctx context.Context, batch []Event) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	keep := uint64(l.opts.Keep)
	return l.st.Update(ctx, func(tx store.Tx) error {
		var seq uint64
		if b, err := tx.Get(store.Meta, seqKey); err == nil {
			seq, _ = strconv.ParseUint(string(b), 10, 64)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		for _, ev := range batch { // a copy: Update may run fn again
			seq++
			ev.Seq = seq
			data, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if err := tx.Put(store.Events, eventKey(seq), data); err != nil {
				return err
			}
			if seq > keep {
				if err := tx.Delete(store.Events, eventKey(seq-keep)); err != nil {
					return err
				}
			}
		}
		return tx.Put(store.Meta, seqKey, []byte(strconv.FormatUint(seq, 10)))
	})
}

// wake returns a channel that receives after each stored batch.
func (l *Log) wake() chan struct{} {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	return ch
}
