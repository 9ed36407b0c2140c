package cache

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edge-cdn/edge/property"
)

// purgeBenchCache holds n objects of property "site" (on disk too when
// disk), tagged t<i%100>, at https://site.test/o/<i>.
func purgeBenchCache(b *testing.B, n int, disk bool) (*Cache, []*object) {
	b.Helper()
	cfg := Config{MemorySize: 256 << 20}
	if disk {
		cfg.DiskSize, cfg.Dir = 1<<30, b.TempDir()
	}
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	p := &property.Property{Name: "site", Cache: property.Cache{Enabled: true, Query: property.QueryAll}}
	c.SetProperties([]*property.Property{p})
	now := time.Now().Add(-time.Minute)
	objs := make([]*object, n)
	for i := range objs {
		key := string(primaryKey(nil, p, &http.Request{Host: "site.test", URL: mustURL("https://site.test/o/" + fmt.Sprint(i))}))
		objs[i] = &object{Key: key, Status: 200, Header: http.Header{"Content-Type": {"text/plain"}},
			RequestTime: now.UnixNano(), ResponseTime: now.UnixNano(), Date: now.UnixNano(), Lifetime: time.Hour,
			Tags: []string{fmt.Sprintf("t%d", i%100)}, body: []byte("body")}
		c.put(objs[i])
	}
	if disk {
		deadline := time.Now().Add(time.Minute)
		for c.Stats().Disk.Objects < int64(n) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return c, objs
}

func benchPurgeURL(b *testing.B, disk bool) {
	n := 2000
	c, objs := purgeBenchCache(b, n, disk)
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Purge(Purge{URLs: []string{"https://site.test/o/" + fmt.Sprint(i%n)}}); err != nil {
			b.Fatal(err)
		}
		if i%n == n-1 {
			b.StopTimer()
			for _, o := range objs {
				c.mem.put(o) // memory only: a disk tier would write them again
			}
			b.StartTimer()
		}
	}
}

func benchPurgeScan(b *testing.B, disk bool, p Purge) {
	c, _ := purgeBenchCache(b, 2000, disk)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Purge(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPurgeURL(b *testing.B)     { benchPurgeURL(b, false) }
func BenchmarkPurgeURLDisk(b *testing.B) { benchPurgeURL(b, true) }
func BenchmarkPurgePrefix(b *testing.B) {
	benchPurgeScan(b, false, Purge{Prefixes: []string{"https://site.test/none/"}})
}
func BenchmarkPurgePrefixDisk(b *testing.B) {
	benchPurgeScan(b, true, Purge{Prefixes: []string{"https://site.test/none/"}})
}
func BenchmarkPurgeTag(b *testing.B)     { benchPurgeScan(b, false, Purge{Tags: []string{"none"}}) }
func BenchmarkPurgeTagDisk(b *testing.B) { benchPurgeScan(b, true, Purge{Tags: []string{"none"}}) }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
