package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/admin"
	"github.com/edge-cdn/edge/events"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// TestFleetShowsAliveNodesAndTheirWork: each node of an etcd fleet writes
// its record; the dashboard's list has every node, alive while its record
// is fresh, with when it last renewed (its own events) and purged (the
// purge records), and a node gone for a day is forgotten.
func TestFleetShowsAliveNodesAndTheirWork(t *testing.T) {
	etcd := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/fleet/"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := t0
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	set := func(t time.Time) { mu.Lock(); defer mu.Unlock(); clock = t }
	evs, err := events.Open(ctx, st, events.Options{Node: "edge-a", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer evs.Close(ctx)
	rec := func(name string) *fleetRecord {
		return &fleetRecord{st: st, events: evs, log: zap.NewNop(), now: now,
			rec: admin.FleetNode{Name: name, Version: "test", StartedAt: t0}}
	}
	a, b := rec("edge-a"), rec("edge-b")
	// A node that stopped two days ago.
	old := rec("edge-old")
	set(t0.Add(-48 * time.Hour))
	old.beat(ctx)
	set(t0.Add(-time.Hour))
	if _, err := evs.Emit(ctx, events.Event{Type: events.CertificateRenewed}); err != nil {
		t.Fatal(err)
	}
	set(t0)
	if err := evs.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	purged := t0.Add(-10 * time.Minute)
	if err := st.Update(ctx, func(tx store.Tx) error {
		return tx.Put(store.Meta, fmt.Sprintf("%s%020d-%s", purgePrefix, purged.UnixNano(), "edge-b"), []byte(`{"all":true}`))
	}); err != nil {
		t.Fatal(err)
	}
	a.beat(ctx)
	b.beat(ctx)
	// A minute later edge-a writes again; edge-b has stopped.
	set(t0.Add(time.Minute))
	a.beat(ctx)

	nodes, err := a.list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Name != "edge-a" || nodes[1].Name != "edge-b" {
		t.Fatalf("nodes %+v, want edge-a and edge-b (edge-old forgotten)", nodes)
	}
	na, nb := nodes[0], nodes[1]
	if !na.Alive || nb.Alive {
		t.Errorf("alive: edge-a %v, edge-b %v; want true, false (edge-b silent for %v)", na.Alive, nb.Alive, fleetAlive)
	}
	if na.LastRenewal == nil || !na.LastRenewal.Equal(t0.Add(-time.Hour)) || nb.LastRenewal != nil {
		t.Errorf("last renewal: edge-a %v, edge-b %v; want %v and none", na.LastRenewal, nb.LastRenewal, t0.Add(-time.Hour))
	}
	if nb.LastPurge == nil || !nb.LastPurge.Equal(purged) || na.LastPurge != nil {
		t.Errorf("last purge: edge-a %v, edge-b %v; want none and %v", na.LastPurge, nb.LastPurge, purged)
	}
}
