package node

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cache"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/property"
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

// TestFleetPurgeRacingReadsNeverLost: node A purges, node B (with a disk
// tier and a memory tier too small to hold the objects, so reads keep
// taking them from disk) applies the purge from the store while two
// clients read. Once B has applied a purge, no read B starts answers with
// what it purged (a disk-tier node lost 4 of ~1,240 fleet purges this way
// and served the old object until its TTL ran out).
func TestFleetPurgeRacingReadsNeverLost(t *testing.T) {
	etcd := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{etcd.Endpoint}, Prefix: "/fleetrace/"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var version atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		v := version.Load()
		fmt.Fprint(w, v, strings.Repeat(" ", 3500))
	}))
	defer origin.Close()
	u, _ := url.Parse(origin.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = pr.In.Host }}
	prop := &property.Property{Name: "site", Cache: property.Cache{Enabled: true, Query: property.QueryAll,
		MaxObjectSize: property.DefaultMaxObjectSize}}

	cb, err := cache.New(cache.Config{MemorySize: 64 << 10, DiskSize: 64 << 20, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	cb.SetProperties([]*property.Property{prop})
	ca, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	a := &purger{cache: ca, fleet: st, node: "a", log: zap.NewNop(), now: time.Now}
	b := &purger{cache: cb, fleet: st, node: "b", log: zap.NewNop(), now: time.Now}
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		b.watch(wctx)
	}()
	defer func() { stopWatch(); <-watched }()

	// Objects of ~3.5 KiB: within the node's bound of one object
	// (memory_size/16, 4 KiB here), while 16 of them outgrow the memory
	// tier, so readers take some from the disk tier.
	const paths = 16
	read := func(i int) int64 {
		rec := httptest.NewRecorder()
		cb.Serve(rec, httptest.NewRequest("GET", fmt.Sprintf("http://site.test/p/%d", i), nil), prop, rp)
		v, _ := strconv.ParseInt(strings.TrimSpace(rec.Body.String()), 10, 64)
		return v
	}
	var purged, lost atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				want := purged.Load()
				if read(i%paths) < want {
					lost.Add(1)
				}
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
		if n := lost.Load(); n > 0 {
			t.Errorf("%d reads started after node b applied a purge answered with what it purged", n)
		}
	}()
	for r := range 60 {
		for i := range paths {
			for read(i) != version.Load() {
				if ctx.Err() != nil {
					t.Errorf("round %d: /p/%d never answers version %d", r, i, version.Load())
					return
				}
			}
		}
		for cb.Stats().Disk.Objects < paths { // on disk, where the readers take them from
			if ctx.Err() != nil {
				t.Errorf("round %d: the objects never reach the disk tier", r)
				return
			}
			time.Sleep(time.Millisecond)
		}
		v := version.Add(1)
		var urls []string
		for i := range paths {
			urls = append(urls, fmt.Sprintf("http://site.test/p/%d", i))
		}
		if _, err := a.Purge(ctx, cache.Purge{URLs: urls}); err != nil {
			t.Fatal(err)
		}
		for cb.Stats().Purges["url"] < int64(r+1) { // b applied it
			if ctx.Err() != nil {
				t.Fatal("node b did not apply the purge")
			}
			time.Sleep(time.Millisecond)
		}
		purged.Store(v)
		for i := range paths {
			if got := read(i); got != v {
				t.Errorf("round %d: /p/%d answers version %d on node b after the purge, want %d", r, i, got, v)
				return
			}
		}
	}
}
