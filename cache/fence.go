package cache

import (
	"sync"
	"sync/atomic"
)

// A purge is a fence: nothing fetched or read before it began enters a tier
// after it began. Each purge enters the fence's log (its time and what it
// matches) before it removes anything, and every way into a tier checks the
// log under the read lock, in the same critical section as the put:
//
//   - put (a fill storing, a 304 refreshing) refuses an object whose
//     request was sent before a purge that matches it (the purge did not
//     find it, it was not stored yet);
//   - a read that found an object on disk puts it in memory only if no
//     purge that matches it began since the read started (the purge may
//     have cleared memory before the read put it back);
//   - the disk writer indexes a file only if no purge that matches it began
//     since the write was queued (the purge did not find it in the index).
//
// A purge takes the write lock only to enter the log, so a put either
// happened before (and the purge's scan finds the object) or sees the
// purge. Purges run one at a time. The log keeps the last fenceLogSize
// purges; one that fell out of it still fences, by its time, everything
// older than it (a fill that outlived that many purges is not stored).
type fence struct {
	serial  sync.Mutex // one purge at a time
	removed []string   // files the purge in progress took from the disk index, for the journal

	mu      sync.RWMutex
	started uint64 // seq of the last purge logged
	log     [fenceLogSize]fenceEntry
	maxBn   int64  // the latest time of any purge logged
	lostSeq uint64 // the newest purge that fell out of the log
	lostBn  int64  // the latest time of the purges that fell out of the log

	done atomic.Uint64 // every purge up to this seq has finished
}

const fenceLogSize = 1024

type fenceEntry struct {
	seq   uint64
	bn    int64 // the purge covers objects whose request was sent before bn
	match func(key string, tags []string) bool
}

// begin logs a purge of what match selects, of objects older than bn, and
// returns its sequence number; call end with it once the purge is done.
func (f *fence) begin(bn int64, match func(key string, tags []string) bool) uint64 {
	f.serial.Lock()
	f.mu.Lock()
	f.started++
	slot := &f.log[f.started%fenceLogSize]
	if slot.seq != 0 {
		f.lostSeq = slot.seq
		f.lostBn = max(f.lostBn, slot.bn)
	}
	*slot = fenceEntry{seq: f.started, bn: bn, match: match}
	f.maxBn = max(f.maxBn, bn)
	seq := f.started
	f.mu.Unlock()
	return seq
}

func (f *fence) end(seq uint64) {
	f.done.Store(seq)
	f.serial.Unlock()
}

// snapshot is the sequence of the last purge that has finished: a read
// that starts now need only be checked against later ones.
func (f *fence) snapshot() uint64 { return f.done.Load() }

// contentTime is when the origin was asked for what o holds (a marker has
// no request: its creation).
func contentTime(o *object) int64 {
	if o.RequestTime != 0 {
		return o.RequestTime
	}
	return o.ResponseTime
}

// covers tells whether a purge that began after the one numbered since
// covers o; f.mu is held (read or write).
func (f *fence) covers(o *object, since uint64) bool {
	if f.started <= since {
		return false
	}
	t := contentTime(o)
	if t >= f.maxBn {
		return false // no purge is newer than o
	}
	if f.lostSeq > since && t < f.lostBn {
		return true // a purge that may cover it fell out of the log
	}
	first := since + 1
	if f.started >= fenceLogSize {
		first = max(first, f.started-fenceLogSize+1)
	}
	for s := first; s <= f.started; s++ {
		e := &f.log[s%fenceLogSize]
		if t < e.bn && e.match(o.Key, o.Tags) {
			return true
		}
	}
	return false
}
