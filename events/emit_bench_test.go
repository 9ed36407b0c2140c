package events

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/store"
)

// BenchmarkEmit1000: 1,000 property.loaded events (a start-up's
// announcements) emitted and stored, each op the whole 1,000, on bbolt
// and on the embedded etcd.
func BenchmarkEmit1000(b *testing.B) {
	ctx := context.Background()
	bolt, err := store.OpenBolt(filepath.Join(b.TempDir(), "edge.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer bolt.Close()
	etcd := etcdtest.Start(b)
	e, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/bench/"})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	for _, st := range []struct {
		name string
		s    store.Store
	}{{"bbolt", bolt}, {"etcd", e}} {
		b.Run(st.name, func(b *testing.B) {
			l, err := Open(ctx, st.s, Options{Node: "n1", Keep: 1000})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				for i := range 1000 {
					_, _ = l.Emit(ctx, Event{Type: PropertyLoaded, Property: fmt.Sprint(i)})
				}
				if err := l.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
			if c, ok := any(l).(interface{ Close(context.Context) error }); ok {
				_ = c.Close(ctx)
			}
		})
	}
}
