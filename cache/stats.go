package cache

import (
	"sync"
	"sync/atomic"
)

// The tiers, as indexes of the per-tier counters.
const (
	tierMemory = iota
	tierDisk
	numTiers
)

var tierNames = [numTiers]string{"memory", "disk"}

// propStats are one property's live counters.
type propStats struct {
	hits, misses, stale, revalidated, bypass atomic.Int64
	servedBytes                              atomic.Int64
	objects, bytes, evictions                [numTiers]atomic.Int64
}

type statsSet struct {
	m      sync.Map // property name → *propStats
	purges [numPurgeKinds]atomic.Int64
}

func newStatsSet() *statsSet { return &statsSet{} }

func (s *statsSet) of(name string) *propStats {
	if v, ok := s.m.Load(name); ok {
		return v.(*propStats)
	}
	v, _ := s.m.LoadOrStore(name, &propStats{})
	return v.(*propStats)
}

func (s *statsSet) added(tier int, o *object) {
	ps := s.of(propertyOf(o.Key))
	ps.objects[tier].Add(1)
	ps.bytes[tier].Add(o.size())
}

// forget drops a removed property's figures (and so its metric labels).
func (s *statsSet) forget(name string) { s.m.Delete(name) }

// removedSize counts an object that left a tier; one of a property
// forgotten meanwhile is not counted (it would bring the property back).
func (s *statsSet) removedSize(tier int, key string, size int64, evicted bool) {
	v, ok := s.m.Load(propertyOf(key))
	if !ok {
		return
	}
	ps := v.(*propStats)
	ps.objects[tier].Add(-1)
	ps.bytes[tier].Add(-size)
	if evicted {
		ps.evictions[tier].Add(1)
	}
}

func (s *statsSet) removed(tier int, o *object, evicted bool) {
	s.removedSize(tier, o.Key, o.size(), evicted)
}

// TierStats counts what one tier holds.
type TierStats struct {
	Objects   int64 `json:"objects"`
	Bytes     int64 `json:"bytes"`
	Evictions int64 `json:"evictions"`
}

// PropertyStats are one property's figures.
type PropertyStats struct {
	Hits        int64     `json:"hits"`
	Misses      int64     `json:"misses"`
	Stale       int64     `json:"stale"`
	Revalidated int64     `json:"revalidated"`
	Bypass      int64     `json:"bypass"`
	ServedBytes int64     `json:"served_bytes"`
	Memory      TierStats `json:"memory"`
	Disk        TierStats `json:"disk"`
}

// Stats is a snapshot of the cache's figures, for the admin API and CLI.
type Stats struct {
	Memory     TierStats        `json:"memory"`
	Disk       TierStats        `json:"disk"`
	MemorySize int64            `json:"memory_size"`
	DiskSize   int64            `json:"disk_size"`
	Purges     map[string]int64 `json:"purges"`
	// DiskError is the error of the disk tier's last write ("" when it
	// worked): a full or read-only disk, for /readyz detail.
	DiskError  string                   `json:"disk_error,omitempty"`
	Properties map[string]PropertyStats `json:"properties"`
}

// Stats returns the figures of every property that used the cache, and
// their sums per tier.
func (c *Cache) Stats() Stats {
	out := Stats{Properties: map[string]PropertyStats{}, Purges: map[string]int64{},
		MemorySize: c.cfg.MemorySize, DiskSize: c.cfg.DiskSize}
	c.stats.m.Range(func(k, v any) bool {
		ps := v.(*propStats)
		p := PropertyStats{Hits: ps.hits.Load(), Misses: ps.misses.Load(), Stale: ps.stale.Load(),
			Revalidated: ps.revalidated.Load(), Bypass: ps.bypass.Load(), ServedBytes: ps.servedBytes.Load()}
		p.Memory = ps.tier(tierMemory)
		p.Disk = ps.tier(tierDisk)
		out.Properties[k.(string)] = p
		out.Memory.add(p.Memory)
		out.Disk.add(p.Disk)
		return true
	})
	for i, n := range purgeKindNames {
		out.Purges[n] = c.stats.purges[i].Load()
	}
	out.DiskError = c.DiskError()
	return out
}

func (ps *propStats) tier(t int) TierStats {
	return TierStats{Objects: ps.objects[t].Load(), Bytes: ps.bytes[t].Load(), Evictions: ps.evictions[t].Load()}
}

func (t *TierStats) add(o TierStats) {
	t.Objects += o.Objects
	t.Bytes += o.Bytes
	t.Evictions += o.Evictions
}

func (s *statsSet) addedSize(tier int, key string, size int64) {
	ps := s.of(propertyOf(key))
	ps.objects[tier].Add(1)
	ps.bytes[tier].Add(size)
}

// MemoryBytes is what the memory tier holds, heads and bodies, read without
// building Stats (the node's memory governor asks every 2 s).
func (c *Cache) MemoryBytes() int64 { return c.mem.bytes() }

// DiskError is the error of the disk tier's last write, "" when it worked or
// there is no disk tier (for /readyz, without building Stats).
func (c *Cache) DiskError() string {
	if c.disk == nil {
		return ""
	}
	e, _ := c.disk.lastErr.Load().(string)
	return e
}
