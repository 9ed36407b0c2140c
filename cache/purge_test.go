package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestPurge(t *testing.T) {
	origin := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Surrogate-Key", "tag-"+strings.Split(r.URL.Path, "/")[1])
		fmt.Fprint(w, r.URL.Path)
	}
	fill := func(e *env) {
		for _, p := range []string{"/img/1", "/img/2", "/css/1"} {
			e.get(p, "Host", "a.test")
			e.get(p, "Host", "b.test")
		}
		e.settle()
	}
	cases := []struct {
		name   string
		p      Purge
		purged int
		gone   []string // host path pairs
	}{
		{"url", Purge{URLs: []string{"https://a.test/img/1"}}, 1, []string{"a.test", "/img/1"}},
		{"url of one property", Purge{Property: "b", URLs: []string{"http://b.test/img/1"}}, 1, []string{"b.test", "/img/1"}},
		{"prefix", Purge{Prefixes: []string{"https://a.test/img/"}}, 2, []string{"a.test", "/img/1", "a.test", "/img/2"}},
		{"tag", Purge{Tags: []string{"tag-css"}}, 2, []string{"a.test", "/css/1", "b.test", "/css/1"}},
		{"property", Purge{Property: "a"}, 3, []string{"a.test", "/img/1", "a.test", "/css/1"}},
		{"all", Purge{All: true}, 6, []string{"a.test", "/img/1", "b.test", "/css/1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{}, origin, testProperty("a"), testProperty("b"))
			fill(e)
			e.wantHits(6)
			res, err := e.c.Purge(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Purged != tc.purged {
				t.Errorf("purged %d, want %d", res.Purged, tc.purged)
			}
			for i := 0; i < len(tc.gone); i += 2 {
				if resp, _ := e.get(tc.gone[i+1], "Host", tc.gone[i]); strings.HasPrefix(resp.Header.Get("Cache-Status"), "Edge; hit") {
					t.Errorf("%s%s still a hit", tc.gone[i], tc.gone[i+1])
				}
			}
		})
	}
}

func TestSoftPurgeServesStaleWhileRevalidating(t *testing.T) {
	e := newEnv(t, Config{}, fixed("x", "Cache-Control", "max-age=3600, stale-while-revalidate=60"))
	e.get("/s")
	e.settle()
	res, err := e.c.Purge(Purge{URLs: []string{"http://site.test/s"}, Soft: true})
	if err != nil || res.Purged != 1 {
		t.Fatalf("purge: %+v %v", res, err)
	}
	resp, _ := e.get("/s")
	if !strings.Contains(resp.Header.Get("Cache-Status"), "fwd=stale") {
		t.Errorf("after a soft purge: Cache-Status %q, want a stale hit", resp.Header.Get("Cache-Status"))
	}
	e.settle()
	e.wantHits(2) // the background refresh
	if resp, _ := e.get("/s"); !strings.HasPrefix(resp.Header.Get("Cache-Status"), "Edge; hit; ttl=") {
		t.Errorf("after the refresh: Cache-Status %q", resp.Header.Get("Cache-Status"))
	}
}

func TestPurgeIsIdempotentAndJSON(t *testing.T) {
	e := newEnv(t, Config{}, fixed("x", "Cache-Control", "max-age=3600"))
	e.get("/i")
	e.settle()
	p := Purge{ID: "p1", URLs: []string{"http://site.test/i"}, Time: e.clock()}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Purge
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.c.Purge(back); r.Purged != 1 {
		t.Fatalf("first apply purged %d", r.Purged)
	}
	e.advance(time.Second)
	e.get("/i") // fetched again after the purge
	e.settle()
	// Applying the same purge again (a fleet replay) spares the new copy.
	if r, _ := e.c.Purge(back); r.Purged != 0 {
		t.Fatalf("replay purged %d, want 0", r.Purged)
	}
	e.get("/i")
	e.wantHits(2)
}

func TestPurgeValidation(t *testing.T) {
	for _, p := range []Purge{{}, {URLs: []string{"/relative"}}, {Prefixes: []string{"ftp://x/"}}, {Tags: []string{"a b"}}, {Property: "bad name"}} {
		if err := p.Validate(); !errors.Is(err, ErrBadPurge) {
			t.Errorf("%+v: got %v, want ErrBadPurge", p, err)
		}
	}
}

func TestDropProperty(t *testing.T) {
	e := newEnv(t, Config{}, fixed("x", "Cache-Control", "max-age=3600"), testProperty("a"), testProperty("b"))
	e.get("/1", "Host", "a.test")
	e.get("/1", "Host", "b.test")
	e.settle()
	if n := e.c.DropProperty("a"); n != 1 {
		t.Errorf("dropped %d, want 1", n)
	}
	e.get("/1", "Host", "a.test")
	e.get("/1", "Host", "b.test")
	e.wantHits(3)
}

// TestDropPropertyForgetsStatsAndMetrics: a removed property leaves no
// figures in Stats and no labels in the metrics, on either tier, and the
// deletions that complete after the drop do not bring it back.
func TestDropPropertyForgetsStatsAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, Config{Registerer: reg, DiskSize: 1 << 20, Dir: t.TempDir()},
		fixed("x", "Cache-Control", "max-age=3600"), testProperty("a"), testProperty("b"))
	e.get("/1", "Host", "a.test")
	e.get("/1", "Host", "b.test")
	e.settle()
	waitDisk(t, e.c, 2)
	if n := e.c.DropProperty("a"); n != 1 {
		t.Errorf("dropped %d, want 1", n)
	}
	dir := e.c.disk.dir
	waitFiles(t, dir, 1) // the disk tier's deletion event ran: it unlinks after counting
	if _, ok := e.c.Stats().Properties["a"]; ok {
		t.Errorf("Stats still has the dropped property: %+v", e.c.Stats().Properties["a"])
	}
	if _, ok := e.c.Stats().Properties["b"]; !ok {
		t.Error("Stats lost the other property")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "property" && l.GetValue() == "a" {
					t.Errorf("%s still has property=\"a\"", mf.GetName())
				}
			}
		}
	}
}

// TestFuturePurgeTimeDoesNotStopCaching: a purge whose time is in the
// future (a fast clock elsewhere in the fleet, an API client's) counts as
// made now: it does not refuse every matching fill until that time.
func TestFuturePurgeTimeDoesNotStopCaching(t *testing.T) {
	e := newEnv(t, Config{}, fixed("v", "Cache-Control", "max-age=3600"))
	if _, err := e.c.Purge(Purge{All: true, Time: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.get("/a")
	e.settle()
	if resp, _ := e.get("/a"); e.hits.Load() != 1 {
		t.Errorf("after a purge dated an hour ahead: origin reached %d times, Cache-Status %q; want a hit",
			e.hits.Load(), resp.Header.Get("Cache-Status"))
	}
}
