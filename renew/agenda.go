package renew

import (
	"container/heap"
	"sync"
	"time"
)

// agenda is the renewal loop's schedule: for each certificate, the next
// moment something is due (a renewal, the end of a backoff, an ARI check,
// an expiry notice), in a min-heap, so that a pass costs what is due, not
// what is stored.
type agenda struct {
	mu   sync.Mutex
	h    agendaHeap
	byID map[string]*agendaEntry
}

type agendaEntry struct {
	id  string
	at  time.Time
	idx int
}

func newAgenda() *agenda { return &agenda{byID: map[string]*agendaEntry{}} }

// set schedules id at at, replacing what it had.
func (a *agenda) set(id string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.byID[id]; ok {
		e.at = at
		heap.Fix(&a.h, e.idx)
		return
	}
	e := &agendaEntry{id: id, at: at}
	a.byID[id] = e
	heap.Push(&a.h, e)
}

// setEarlier schedules id at at unless it is already due sooner.
func (a *agenda) setEarlier(id string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.byID[id]; ok {
		if at.Before(e.at) {
			e.at = at
			heap.Fix(&a.h, e.idx)
		}
		return
	}
	e := &agendaEntry{id: id, at: at}
	a.byID[id] = e
	heap.Push(&a.h, e)
}

// remove forgets id.
func (a *agenda) remove(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.byID[id]; ok {
		heap.Remove(&a.h, e.idx)
		delete(a.byID, id)
	}
}

// popDue removes and returns the ids due at now, earliest first.
func (a *agenda) popDue(now time.Time) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for len(a.h) > 0 && !a.h[0].at.After(now) {
		e := heap.Pop(&a.h).(*agendaEntry)
		delete(a.byID, e.id)
		out = append(out, e.id)
	}
	return out
}

// next returns the earliest scheduled moment, zero when nothing is.
func (a *agenda) next() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.h) == 0 {
		return time.Time{}
	}
	return a.h[0].at
}

func (a *agenda) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.h)
}

type agendaHeap []*agendaEntry

func (h agendaHeap) Len() int           { return len(h) }
func (h agendaHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h agendaHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *agendaHeap) Push(x any)        { e := x.(*agendaEntry); e.idx = len(*h); *h = append(*h, e) }
func (h *agendaHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
