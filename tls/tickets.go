package tls

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// TicketKeysKey is where the session-ticket keys live in store.Meta.
const TicketKeysKey = "tls_session_ticket_keys"

// TicketKeys holds the node's TLS session-ticket keys in the store, so that
// every node of a fleet sharing it encrypts and decrypts the same tickets
// (a client resumes on whichever node it reaches), and rotates them every
// Period (daily) instead of Go's per-process keys kept 7 days. The newest
// key encrypts; the previous ones (Keep in all) still decrypt, so a ticket
// stays usable for Period to Keep×Period. One node of the fleet rotates (the
// store's transaction decides which); the others read its key at their
// next Sync.
//
// Until the first Sync succeeds, Go's own per-process keys are used.
type TicketKeys struct {
	st  TicketStore
	o   TicketOptions
	cfg atomic.Pointer[tls.Config] // holds only the ticket keys
	gen atomic.Pointer[[]byte]     // the installed list's stored form
}

// TicketStore is what TicketKeys needs of the store.
type TicketStore interface {
	View(ctx context.Context, fn func(store.Tx) error) error
	Update(ctx context.Context, fn func(store.Tx) error) error
}

// TicketOptions tune TicketKeys; zero values are the defaults.
type TicketOptions struct {
	Period time.Duration    // a key encrypts for this long; 0: 24h
	Keep   int              // keys kept, the current one included; 0: 2
	Now    func() time.Time // nil: time.Now
	Logger *zap.Logger
}

// ticketKey is one stored key.
type ticketKey struct {
	Created time.Time `json:"created"`
	Key     []byte    `json:"key"` // 32 bytes
}

// NewTicketKeys returns keys over st; call Sync to load them.
func NewTicketKeys(st TicketStore, o TicketOptions) *TicketKeys {
	if o.Period <= 0 {
		o.Period = 24 * time.Hour
	}
	if o.Keep <= 0 {
		o.Keep = 2
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	k := &TicketKeys{st: st, o: o}
	k.cfg.Store(&tls.Config{})
	return k
}

// Apply makes cfg encrypt and decrypt session tickets with the shared keys.
// It survives Clone (http.Server.ServeTLS clones its config), and a
// rotation takes effect on the next handshake.
func (k *TicketKeys) Apply(cfg *tls.Config) {
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		return k.cfg.Load().EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		return k.cfg.Load().DecryptTicket(identity, cs)
	}
}

// Sync reads the keys from the store, rotating them first when the newest
// is older than Period (or there is none).
func (k *TicketKeys) Sync(ctx context.Context) error {
	var raw []byte
	err := k.st.View(ctx, func(tx store.Tx) error {
		var err error
		raw, err = tx.Get(store.Meta, TicketKeysKey)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("reading the session-ticket keys: %w", err)
	}
	keys, err := decodeTicketKeys(raw)
	if err != nil || k.stale(keys) {
		if raw, err = k.rotate(ctx); err != nil {
			return err
		}
		if keys, err = decodeTicketKeys(raw); err != nil {
			return err
		}
	}
	return k.install(raw, keys)
}

func (k *TicketKeys) stale(keys []ticketKey) bool {
	return len(keys) == 0 || !k.o.Now().Before(keys[0].Created.Add(k.o.Period))
}

// rotate puts a new current key in front of the stored list, unless another
// node did so since the list was read, and returns the stored form.
func (k *TicketKeys) rotate(ctx context.Context) ([]byte, error) {
	var out []byte
	err := k.st.Update(ctx, func(tx store.Tx) error {
		raw, err := tx.Get(store.Meta, TicketKeysKey)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		keys, derr := decodeTicketKeys(raw)
		if derr == nil && !k.stale(keys) {
			out = raw // another node rotated first
			return nil
		}
		if derr != nil {
			k.o.Logger.Warn("stored session-ticket keys unreadable; starting a new list", zap.Error(derr))
			keys = nil
		}
		nk := ticketKey{Created: k.o.Now().UTC(), Key: make([]byte, 32)}
		if _, err := rand.Read(nk.Key); err != nil {
			return err
		}
		keys = append([]ticketKey{nk}, keys...)
		keys = keys[:min(len(keys), k.o.Keep)]
		if out, err = json.Marshal(keys); err != nil {
			return err
		}
		return tx.Put(store.Meta, TicketKeysKey, out)
	})
	if err != nil {
		return nil, fmt.Errorf("rotating the session-ticket keys: %w", err)
	}
	return out, nil
}

func decodeTicketKeys(raw []byte) ([]ticketKey, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var keys []ticketKey
	if err := json.Unmarshal(raw, &keys); err != nil {
		return nil, err
	}
	for _, key := range keys {
		if len(key.Key) != 32 {
			return nil, fmt.Errorf("a session-ticket key of %d bytes, want 32", len(key.Key))
		}
	}
	return keys, nil
}

func (k *TicketKeys) install(raw []byte, keys []ticketKey) error {
	if prev := k.gen.Load(); prev != nil && bytes.Equal(*prev, raw) {
		return nil
	}
	list := make([][32]byte, len(keys))
	for i, key := range keys {
		copy(list[i][:], key.Key)
	}
	cfg := &tls.Config{}
	cfg.SetSessionTicketKeys(list)
	k.cfg.Store(cfg)
	k.gen.Store(&raw)
	k.o.Logger.Info("session-ticket keys loaded", zap.Int("keys", len(keys)), zap.Time("current_since", keys[0].Created))
	return nil
}

// Run syncs every interval until ctx ends. A failed sync keeps the keys in
// use and is retried at the next tick.
func (k *TicketKeys) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := k.Sync(sctx); err != nil && ctx.Err() == nil {
			k.o.Logger.Warn("session-ticket keys not synced; keeping the current ones", zap.Error(err))
		}
		cancel()
	}
}
