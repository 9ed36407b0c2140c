package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// TestPurgePrunesWithinTxnLimit: a burst of 300 purges a week ago must not
// make today's purge a transaction etcd refuses (--max-txn-ops, 128): each
// purge prunes at most what one transaction takes, the oldest first, and
// the backlog is gone after a few purges.
func TestPurgePrunesWithinTxnLimit(t *testing.T) {
	etcd := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/purge/"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	old := now.Add(-purgeRetention - time.Hour)
	for b := 0; b < 3; b++ {
		if err := st.Update(ctx, func(tx store.Tx) error {
			for i := range 100 {
				id := fmt.Sprintf("%s%020d-burst", purgePrefix, old.UnixNano()+int64(b*100+i))
				if err := tx.Put(store.Meta, id, []byte(`{"all":true}`)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := &purger{cache: c, fleet: st, node: "today", log: zap.NewNop(), now: time.Now}
	count := func() (n int) {
		if err := st.View(ctx, func(tx store.Tx) error {
			return tx.ForEach(store.Meta, purgePrefix, func(k string, _ []byte) error { n++; return nil })
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i, want := range []int{300 - 127 + 1, 300 - 254 + 2, 3, 4} {
		if _, err := p.Purge(ctx, cache.Purge{URLs: []string{fmt.Sprintf("https://a.example/%d", i)}}); err != nil {
			t.Fatalf("purge %d: %v", i, err)
		}
		if got := count(); got != want {
			t.Errorf("after purge %d: %d records, want %d", i, got, want)
		}
	}
	var kept []string
	_ = st.View(ctx, func(tx store.Tx) error {
		return tx.ForEach(store.Meta, purgePrefix, func(k string, _ []byte) error { kept = append(kept, k); return nil })
	})
	for _, k := range kept {
		if strings.HasSuffix(k, "-burst") {
			t.Errorf("a purge past retention is still there: %s", k)
		}
	}
}
