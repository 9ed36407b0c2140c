package acme

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edge-cdn/edge/store"
)

// acmeStorage is certmagic's Storage over the node's store (bucket acme):
// ACME accounts, challenge tokens and locks live beside the certificates,
// so every node sharing the store shares them. Values are stored with
// their modification time in front (8 bytes, Unix nanoseconds).
//
// Contract (certmagic.Storage): Load and Stat of a missing key, and List
// of a missing prefix, return fs.ErrNotExist; Delete of a missing key is
// nil, and of a "directory" removes everything under it; List(prefix,
// false) gives the immediate children as full keys; locks honour the
// context and end with their holder.
type acmeStorage struct {
	st  Store
	now func() time.Time
	// seen, if set, is told of every key written or deleted through this
	// storage (the pending challenges follow it).
	seen func(key string, value []byte, present bool)
}

var _ certmagic.Storage = (*acmeStorage)(nil)

// Store returns once the write is committed: on etcd, once a quorum has
// it, so that a (linearizable) read on any node of the fleet sees it. A
// challenge token is stored before the CA is asked to validate, so this
// return is the fence ServeChallenge relies on when its memory misses.
func (s *acmeStorage) Store(ctx context.Context, key string, value []byte) error {
	b := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(b, uint64(s.now().UnixNano()))
	copy(b[8:], value)
	err := s.st.Update(ctx, func(tx store.Tx) error { return tx.Put(store.ACME, key, b) })
	if err == nil && s.seen != nil {
		s.seen(key, value, true)
	}
	return err
}

func (s *acmeStorage) get(ctx context.Context, key string) ([]byte, error) {
	var b []byte
	err := s.st.View(ctx, func(tx store.Tx) error {
		var err error
		b, err = tx.Get(store.ACME, key)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) < 8) {
		return nil, fs.ErrNotExist
	}
	return b, err
}

func (s *acmeStorage) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.get(ctx, key)
	if err != nil {
		return nil, err
	}
	return b[8:], nil
}

func (s *acmeStorage) Delete(ctx context.Context, key string) error {
	var under []string
	err := s.st.Update(ctx, func(tx store.Tx) error {
		under = under[:0]
		if err := tx.ForEach(store.ACME, strings.TrimSuffix(key, "/")+"/", func(k string, _ []byte) error {
			under = append(under, k)
			return nil
		}); err != nil {
			return err
		}
		under = append(under, key)
		for _, k := range under {
			if err := tx.Delete(store.ACME, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && s.seen != nil {
		for _, k := range under {
			s.seen(k, nil, false)
		}
	}
	return err
}

func (s *acmeStorage) Exists(ctx context.Context, key string) bool {
	_, err := s.get(ctx, key)
	return err == nil
}

func (s *acmeStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	prefix := strings.TrimSuffix(path, "/") + "/"
	if path == "" {
		prefix = ""
	}
	seen := map[string]bool{}
	err := s.st.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.ACME, prefix, func(k string, _ []byte) error {
			if !recursive {
				if i := strings.IndexByte(k[len(prefix):], '/'); i >= 0 {
					k = k[:len(prefix)+i]
				}
			}
			seen[k] = true
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(seen) == 0 {
		return nil, fs.ErrNotExist
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (s *acmeStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	b, err := s.get(ctx, key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: time.Unix(0, int64(binary.BigEndian.Uint64(b))),
			Size: int64(len(b) - 8), IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, err
	}
	if _, err := s.List(ctx, key, false); err != nil {
		return certmagic.KeyInfo{}, err
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

func (s *acmeStorage) Lock(ctx context.Context, name string) error {
	return s.st.Lock(ctx, "certmagic/"+name)
}

func (s *acmeStorage) Unlock(ctx context.Context, name string) error {
	return s.st.Unlock(context.WithoutCancel(ctx), "certmagic/"+name)
}
