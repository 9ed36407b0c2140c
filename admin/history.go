package admin

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/edge-cdn/edge/cache"
)

// HistoryMinutes is how many per-minute points the cache history keeps:
// the dashboard's last hour.
const HistoryMinutes = 60

// HistoryPoint is one minute of the node's cache: what its counters did in
// the minute that ends at Time, and what the tiers held at Time.
type HistoryPoint struct {
	Time        time.Time `json:"time"`
	Seconds     float64   `json:"seconds"` // the span the counters cover (60, less for the current minute)
	Hits        int64     `json:"hits"`
	Misses      int64     `json:"misses"`
	Stale       int64     `json:"stale"`
	Revalidated int64     `json:"revalidated"`
	Bypass      int64     `json:"bypass"`
	ServedBytes int64     `json:"served_bytes"`
	// OriginBytes are the body bytes received from origins (misses, fills,
	// pass-through), beside ServedBytes: what the cache spared them.
	OriginBytes int64     `json:"origin_bytes"`
	Memory      TierPoint `json:"memory"`
	Disk        TierPoint `json:"disk"`
}

// TierPoint is what one tier held.
type TierPoint struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

// History is the node-wide ring of per-minute cache figures: one for the
// whole node (never one per property), in memory only, HistoryMinutes
// long. Its zero value is not usable: use NewHistory.
type History struct {
	stats  func() cache.Stats
	origin func() int64 // bytes received from origins so far; nil: none counted
	mu     sync.Mutex
	ring   [HistoryMinutes]HistoryPoint
	n      int // points held
	next   int // where the next point goes
	base   totals
}

// totals are the node's counters summed over properties at one time.
type totals struct {
	at                                       time.Time
	hits, misses, stale, revalidated, bypass int64
	served, origin                           int64
}

func sum(s cache.Stats, at time.Time) totals {
	t := totals{at: at}
	for _, p := range s.Properties {
		t.hits += p.Hits
		t.misses += p.Misses
		t.stale += p.Stale
		t.revalidated += p.Revalidated
		t.bypass += p.Bypass
		t.served += p.ServedBytes
	}
	return t
}

// NewHistory returns a history of stats, its baseline taken now. origin,
// when not nil, gives the body bytes received from origins so far.
func NewHistory(stats func() cache.Stats, origin func() int64, now time.Time) *History {
	h := &History{stats: stats, origin: origin}
	h.base = h.sum(stats(), now)
	return h
}

// sum is the node's totals at one time, origin bytes included.
func (h *History) sum(s cache.Stats, at time.Time) totals {
	t := sum(s, at)
	if h.origin != nil {
		t.origin = h.origin()
	}
	return t
}

// point is what happened between h.base and cur.
func (h *History) point(s cache.Stats, cur totals) HistoryPoint {
	d := func(a, b int64) int64 { return max(a-b, 0) } // a counter never goes back; clamp anyway
	return HistoryPoint{Time: cur.at, Seconds: cur.at.Sub(h.base.at).Seconds(),
		Hits: d(cur.hits, h.base.hits), Misses: d(cur.misses, h.base.misses), Stale: d(cur.stale, h.base.stale),
		Revalidated: d(cur.revalidated, h.base.revalidated), Bypass: d(cur.bypass, h.base.bypass),
		ServedBytes: d(cur.served, h.base.served), OriginBytes: d(cur.origin, h.base.origin),
		Memory: TierPoint{Objects: s.Memory.Objects, Bytes: s.Memory.Bytes},
		Disk:   TierPoint{Objects: s.Disk.Objects, Bytes: s.Disk.Bytes}}
}

// Record closes the minute that ends at now: its point goes into the
// ring (the oldest falls out) and the next minute starts.
func (h *History) Record(now time.Time) {
	s := h.stats()
	cur := h.sum(s, now)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = h.point(s, cur)
	h.next = (h.next + 1) % len(h.ring)
	h.n = min(h.n+1, len(h.ring))
	h.base = cur
}

// Points returns the recorded minutes, oldest first, then the minute under
// way up to now (its Seconds says how much of it has passed).
func (h *History) Points(now time.Time) []HistoryPoint {
	s := h.stats()
	cur := h.sum(s, now)
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]HistoryPoint, 0, h.n+1)
	for i := range h.n {
		out = append(out, h.ring[(h.next-h.n+i+len(h.ring))%len(h.ring)])
	}
	return append(out, h.point(s, cur))
}

// Run records a point every interval until ctx ends.
func (h *History) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.Record(now)
		}
	}
}

func (a *api) cacheHistory(w http.ResponseWriter, r *http.Request) {
	if a.c.History == nil {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this node has no cache")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"interval_seconds": 60, "points": a.c.History.Points(a.c.Now())})
}
