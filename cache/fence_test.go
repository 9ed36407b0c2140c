package cache

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPurgeRacingReadsNeverLost: with a disk tier, two clients read while
// URL, prefix and tag purges are made, many rounds. After a purge returns,
// no read may answer with what it purged: not from memory, not from disk,
// not from an object a read took from disk and put back in memory while
// the purge ran (which lost 10 of 800 purges).
func TestPurgeRacingReadsNeverLost(t *testing.T) {
	var version atomic.Int64
	e := newEnv(t, Config{DiskSize: 64 << 20, Dir: t.TempDir()}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Surrogate-Key", "t")
		fmt.Fprint(w, version.Load())
	})
	const paths = 6
	path := func(i int) string { return "/p/" + strconv.Itoa(i) }
	var purged atomic.Int64 // the version every read that starts now must see
	var lost atomic.Int64
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
				_, body := e.get(path(i % paths))
				if v, _ := strconv.ParseInt(body, 10, 64); v < want {
					lost.Add(1)
				}
			}
		}()
	}
	rounds := 60
	if testing.Short() {
		rounds = 20
	}
	defer func() {
		close(stop)
		wg.Wait()
		if n := lost.Load(); n > 0 {
			t.Errorf("%d reads started after a purge returned answered with what it purged", n)
		}
	}()
	for r := range rounds {
		// Every object cached, in memory and on disk, at this version.
		for i := range paths {
			for {
				if _, body := e.get(path(i)); body == strconv.FormatInt(version.Load(), 10) {
					break
				}
			}
		}
		e.settle()
		onDisk(t, e, paths, path)
		if r%2 == 1 {
			// As after a restart or an eviction from memory: the readers
			// take the objects from disk, racing the purge.
			for i := range paths {
				e.c.mem.remove(primaryKeyOf("site", path(i)))
			}
		}
		var p Purge
		switch r % 3 {
		case 0:
			for i := range paths {
				p.URLs = append(p.URLs, "http://site.test"+path(i))
			}
		case 1:
			p.Prefixes = []string{"http://site.test/p/"}
		case 2:
			p.Tags = []string{"t"}
		}
		v := version.Add(1)
		if _, err := e.c.Purge(p); err != nil {
			t.Fatal(err)
		}
		purged.Store(v)
		for i := range paths {
			if _, body := e.get(path(i)); body != strconv.FormatInt(v, 10) {
				t.Errorf("round %d (%+v): %s answers %q after the purge, want %d", r, p, path(i), body, v)
				return
			}
		}
	}
}

// waitDiskFiles waits until the disk tier indexes n objects (and has no
// write queued that would change that).
// onDisk waits until the n objects of path(0..n-1) are in the disk tier.
// The disk tier is a best-effort copy of memory: a put a purge fenced
// (queued under an older fence than the write found) is dropped while the
// object memory holds stays, so an object missing once the writes are done
// is fetched again, from memory's absence, to be written.
func onDisk(t *testing.T, e *env, n int, path func(int) string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(e.c.disk.ops) != 0 {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		missing := 0
		for i := range n {
			key := primaryKeyOf("site", path(i))
			if _, ok := e.c.disk.index.GetIfPresent(idOf(key)); !ok {
				missing++
				e.c.mem.remove(key)
				e.get(path(i))
			}
		}
		if missing == 0 {
			return
		}
		e.settle()
	}
	t.Fatalf("disk tier holds %d objects, want %d", e.c.disk.index.EstimatedSize(), n)
}

// TestPurgeDuringFillNotLost: a purge made while a fill's request is at the
// origin removes what that fill stores; the next request goes to the origin.
func TestPurgeDuringFillNotLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Purge
	}{
		{"url", Purge{URLs: []string{"http://site.test/f"}}},
		{"prefix", Purge{Prefixes: []string{"http://site.test/"}}},
		{"tag", Purge{Tags: []string{"t"}}},
		{"all", Purge{All: true}},
	} {
		for _, disk := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/disk=%v", tc.name, disk), func(t *testing.T) {
				inOrigin := make(chan struct{}, 1)
				release := make(chan struct{})
				var n atomic.Int64
				cfg := Config{}
				if disk {
					cfg.DiskSize, cfg.Dir = 1<<20, t.TempDir()
				}
				e := newEnv(t, cfg, func(w http.ResponseWriter, r *http.Request) {
					v := n.Add(1)
					w.Header().Set("Cache-Control", "max-age=3600")
					w.Header().Set("Surrogate-Key", "t")
					if v == 1 {
						inOrigin <- struct{}{}
						<-release
					}
					fmt.Fprint(w, "v", v)
				})
				done := make(chan string)
				go func() {
					_, body := e.get("/f")
					done <- body
				}()
				<-inOrigin
				if _, err := e.c.Purge(tc.p); err != nil {
					t.Fatal(err)
				}
				if len(tc.p.Tags) == 0 {
					// A request made after the purge does not follow the
					// fill asked for before it (a fill's tags are not
					// known before its head: a tag purge cannot tell).
					if _, body := e.get("/f"); body != "v2" {
						t.Errorf("a request after the purge, during the old fill: %q, want v2", body)
					}
				}
				close(release)
				if body := <-done; body != "v1" {
					t.Fatalf("the filling client got %q", body)
				}
				e.settle()
				if resp, body := e.get("/f"); body != "v2" {
					t.Fatalf("after the purge: %q (%s), want v2 from the origin", body, resp.Header.Get("Cache-Status"))
				}
				e.settle()
				if resp, body := e.get("/f"); body != "v2" || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "Edge; hit") {
					t.Fatalf("then: %q (%s), want a hit on v2", body, resp.Header.Get("Cache-Status"))
				}
				e.wantHits(2)
			})
		}
	}
}
