package cache

import (
	"hash/maphash"
	"math"
	"time"

	"github.com/maypok86/otter/v2"
)

// memoryTier keeps objects in an otter cache bounded by their bytes. Otter's
// W-TinyLFU admission keeps a scan of one-hit keys from flushing the popular
// ones, which a plain LRU cannot do; that policy is why it is used rather
// than a hand-written list.
type memoryTier struct {
	c *otter.Cache[string, *object]
}

var _ tier = (*memoryTier)(nil)

// newMemoryTier bounds the tier to maxBytes; onDelete hears of every object
// that leaves it (evicted, replaced, removed).
func newMemoryTier(maxBytes int64, exec func(func()), onDelete func(o *object, evicted bool)) (*memoryTier, error) {
	if maxBytes < 1 {
		maxBytes = 1
	}
	c, err := otter.New(&otter.Options[string, *object]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(_ string, o *object) uint32 {
			return uint32(min(o.size(), math.MaxUint32))
		},
		OnDeletion: func(e otter.DeletionEvent[string, *object]) {
			onDelete(e.Value, e.Cause == otter.CauseOverflow)
		},
		Executor: exec,
	})
	if err != nil {
		return nil, err
	}
	return &memoryTier{c: c}, nil
}

func (m *memoryTier) get(key string) *object {
	o, _ := m.c.GetIfPresent(key)
	return o
}

// peek is get without side effects on the eviction policy.
func (m *memoryTier) peek(key string) *object {
	e, _ := m.c.GetEntryQuietly(key)
	return e.Value
}

// touch counts an access to key, found earlier with peek.
func (m *memoryTier) touch(key string) { m.c.GetIfPresent(key) }

func (m *memoryTier) put(o *object) { m.c.Set(o.Key, o) }

func (m *memoryTier) remove(key string) { m.c.Invalidate(key) }

func (m *memoryTier) each(fn func(key string, tags []string, stored int64) bool) {
	for k, o := range m.c.All() {
		if !fn(k, o.Tags, o.ResponseTime) {
			return
		}
	}
}

func (m *memoryTier) name() string { return "memory" }

// bytes is the weight held.
func (m *memoryTier) bytes() int64 { return int64(m.c.WeightedSize()) }

// passList remembers, for PassTTL, the keys whose last response was not
// storable (hit-for-pass): a request for one goes to the origin at once
// instead of queueing behind another request's fill. Its entries are keyed
// by a 64-bit hash of the key, not the key (a URL may be 8 KiB), and it is
// weighed in bytes against a share of cache.memory_size (passShare) under
// otter's W-TinyLFU, like the objects: a flood of distinct uncacheable URLs
// evicts markers, never grows the node. A hash collision only makes a key
// skip collapsing for a while, which the origin answers as it would anyway.
type passList struct {
	seed maphash.Seed
	c    *otter.Cache[uint64, struct{}]
}

// passShare is the share of cache.memory_size held back for pass markers
// (1/32: 2 MiB, about 16,000 markers, of 64 MiB).
const passShare = 32

// passEntryWeight is what a marker weighs: its 8-byte key and otter's node
// (pointers, expiry, weight, frequency) and table slot, rounded up.
const passEntryWeight = 128

func newPassList(maxBytes int64, ttl time.Duration, exec func(func())) (*passList, error) {
	c, err := otter.New(&otter.Options[uint64, struct{}]{
		MaximumWeight:    uint64(max(maxBytes, passEntryWeight)),
		Weigher:          func(uint64, struct{}) uint32 { return passEntryWeight },
		ExpiryCalculator: otter.ExpiryWriting[uint64, struct{}](ttl),
		Executor:         exec,
	})
	if err != nil {
		return nil, err
	}
	return &passList{seed: maphash.MakeSeed(), c: c}, nil
}

func (p *passList) hash(key string) uint64 { return maphash.String(p.seed, key) }

func (p *passList) set(key string) { p.c.Set(p.hash(key), struct{}{}) }

func (p *passList) has(key string) bool {
	_, ok := p.c.GetIfPresent(p.hash(key))
	return ok
}

func (p *passList) drop(key string) { p.c.Invalidate(p.hash(key)) }

// bytes is the weight held.
func (p *passList) bytes() int64 { return int64(p.c.WeightedSize()) }

func (p *passList) stop() { p.c.StopAllGoroutines() }
