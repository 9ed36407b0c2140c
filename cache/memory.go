package cache

import (
	"math"

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
		if !fn(k, o.Tags, contentTime(o)) {
			return
		}
	}
}

func (m *memoryTier) name() string { return "memory" }

// bytes is the weight held.
func (m *memoryTier) bytes() int64 { return int64(m.c.WeightedSize()) }
