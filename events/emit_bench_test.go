package events

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/edge-cdn/edge/store"
)

// BenchmarkEmit1000: 1,000 property.loaded events (a start-up's
// announcements) emitted and stored on bbolt, each op the whole 1,000.
func BenchmarkEmit1000(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "edge.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	l, err := Open(ctx, st, Options{Node: "n1", Keep: 1000})
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
}
