package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// Webhook is one receiver of events.
type Webhook struct {
	URL    string
	Secret string
	Events []string // the types it wants; empty: all
}

// DeliveryOptions tune webhook delivery. Zero values are useful.
type DeliveryOptions struct {
	Client    *http.Client  // nil: a client with a 10 s timeout
	RetryBase time.Duration // first retry delay, doubled up to RetryMax; 0: 1 s
	RetryMax  time.Duration // 0: 5 min
	UserAgent string
	// OnDelivery, if set, is told each attempt's result ("ok" or "error").
	OnDelivery func(result string)
}

// SignatureHeader carries the HMAC of a delivery.
const SignatureHeader = "Edge-Signature"

// Sign returns the Edge-Signature value for body at time t:
// "t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// StartWebhooks starts one delivery worker per webhook. The returned stop
// function cancels them and waits for them to end.
func (l *Log) StartWebhooks(hooks []Webhook, opts DeliveryOptions) (stop func()) {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	// A new webhook starts at the newest event: let the events emitted
	// so far be stored first (bounded: the store may be down).
	fctx, fcancel := context.WithTimeout(ctx, readYourEmits)
	_ = l.Flush(fctx)
	fcancel()
	var wg sync.WaitGroup
	for _, h := range hooks {
		w := &worker{l: l, hook: h, opts: opts, wake: l.wake(),
			log: l.log.With(zap.String("webhook", h.URL))}
		// The cursor is read (or, for a new webhook, set to the newest
		// event) before returning, so every event emitted after
		// StartWebhooks is delivered.
		cursor, err := w.loadCursor(ctx)
		if err != nil {
			w.log.Error("webhook cursor unreadable; starting at the newest event", zap.Error(err))
			cursor, _ = l.Latest(ctx)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, cursor)
		}()
	}
	return func() { cancel(); wg.Wait() }
}

type worker struct {
	l    *Log
	hook Webhook
	opts DeliveryOptions
	wake chan struct{}
	log  *zap.Logger
}

// cursorKey is per node and webhook: in a fleet, each node delivers the
// events it emitted, so a webhook gets each event once, not once a node.
func (w *worker) cursorKey() string {
	sum := sha256.Sum256([]byte(w.hook.URL))
	return "webhook_cursor/" + w.l.opts.Node + "/" + hex.EncodeToString(sum[:8])
}

func (w *worker) wants(typ string) bool {
	if len(w.hook.Events) == 0 {
		return true
	}
	for _, t := range w.hook.Events {
		if t == typ {
			return true
		}
	}
	return false
}

func (w *worker) run(ctx context.Context, cursor uint64) {
	for {
		evs, err := w.l.after(ctx, cursor, 100)
		if err != nil && ctx.Err() == nil {
			w.log.Error("reading events", zap.Error(err))
		}
		if len(evs) > 0 && evs[0].Seq > cursor+1 && cursor > 0 {
			w.log.Warn("webhook fell behind the kept events; some were never delivered",
				zap.Uint64("missed_from", cursor+1), zap.Uint64("missed_to", evs[0].Seq-1))
		}
		// The cursor is saved after each delivery, and once a batch past
		// events this webhook skips (other nodes', other types): not one
		// store write per skipped event.
		skipped := false
		for _, ev := range evs {
			cursor = ev.Seq
			if ev.Node != w.l.opts.Node || !w.wants(ev.Type) {
				skipped = true
				continue
			}
			if !w.deliver(ctx, ev) {
				return // stopped
			}
			skipped = false
			w.save(ctx, cursor)
		}
		if skipped {
			w.save(ctx, cursor)
		}
		if len(evs) == 100 {
			continue
		}
		if err != nil {
			// The store did not answer: look again shortly.
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			case <-time.After(2 * time.Second):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		}
	}
}

// deliver posts ev until the receiver takes it; false if stopped first.
func (w *worker) deliver(ctx context.Context, ev Event) bool {
	body, _ := json.Marshal(ev)
	delay := w.opts.RetryBase
	for attempt := 1; ; attempt++ {
		err := w.post(ctx, ev, body)
		// A delivery the receiver took counts even if a stop came meanwhile;
		// a failure caused by the stop does not.
		if w.opts.OnDelivery != nil && (err == nil || ctx.Err() == nil) {
			if err == nil {
				w.opts.OnDelivery("ok")
			} else {
				w.opts.OnDelivery("error")
			}
		}
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.log.Warn("webhook delivery failed; will retry", zap.String("event_id", ev.ID),
			zap.Int("attempt", attempt), zap.Duration("retry_in", delay), zap.Error(err))
		// Jitter so that many nodes do not retry in step.
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(delay*2, w.opts.RetryMax)
	}
}

func (w *worker) post(ctx context.Context, ev Event, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.hook.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Edge-Event-Id", ev.ID)
	req.Header.Set("Edge-Event-Type", ev.Type)
	if w.opts.UserAgent != "" {
		req.Header.Set("User-Agent", w.opts.UserAgent)
	}
	if w.hook.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(w.hook.Secret, w.l.opts.Now(), body))
	}
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

func (w *worker) loadCursor(ctx context.Context) (uint64, error) {
	var cursor uint64
	err := w.l.st.View(ctx, func(tx store.Tx) error {
		b, err := tx.Get(store.Meta, w.cursorKey())
		if err != nil {
			return err
		}
		cursor, err = strconv.ParseUint(string(b), 10, 64)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		if cursor, err = w.l.Latest(ctx); err != nil {
			return 0, err
		}
		return cursor, w.saveCursor(ctx, cursor)
	}
	return cursor, err
}

// save stores the cursor even when the worker is being stopped: a stop
// right after a delivery must not leave that event to be sent again after
// the restart. It is bounded, as the store may be down.
func (w *worker) save(ctx context.Context, c uint64) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cursorSaveTimeout)
	defer cancel()
	if err := w.saveCursor(sctx, c); err != nil {
		w.log.Error("saving webhook cursor", zap.Error(err))
	}
}

// cursorSaveTimeout bounds one cursor write, and so what a stop waits.
const cursorSaveTimeout = 2 * time.Second

func (w *worker) saveCursor(ctx context.Context, c uint64) error {
	return w.l.st.Update(ctx, func(tx store.Tx) error {
		return tx.Put(store.Meta, w.cursorKey(), []byte(strconv.FormatUint(c, 10)))
	})
}
