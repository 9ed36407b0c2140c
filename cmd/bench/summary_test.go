package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 1, 1}, 1},
	} {
		in := append([]float64(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("median sorted its argument: %v", c.in)
			}
		}
	}
	if got := medianDur([]time.Duration{30 * time.Microsecond, 10 * time.Microsecond, 20 * time.Microsecond}); got != 20*time.Microsecond {
		t.Errorf("medianDur = %v", got)
	}
}

// reqs makes a result of n requests in one second.
func reqs(n int) result { return result{requests: n, elapsed: time.Second} }

func TestSummarizeMediansAndRatios(t *testing.T) {
	us := time.Microsecond
	rows := []row{
		{name: "h1-small", rep: 1, direct: reqs(1000), edge: reqs(500), directCPU: 10 * us, cpuPerReq: 20 * us, edgePeakKB: 30 << 10,
			hasNginx: true, nginxCPU: 16 * us, nginxPeakKB: 20 << 10},
		{name: "h1-small", rep: 2, direct: reqs(1000), edge: reqs(600), directCPU: 10 * us, cpuPerReq: 30 * us, edgePeakKB: 40 << 10,
			hasNginx: true, nginxCPU: 12 * us, nginxPeakKB: 21 << 10},
		{name: "h1-small", rep: 3, direct: reqs(1000), edge: reqs(700), directCPU: 12 * us, cpuPerReq: 24 * us, edgePeakKB: 35 << 10,
			hasNginx: true, nginxCPU: 10 * us, nginxPeakKB: 22 << 10},
		// h3: no nginx.
		{name: "h3-small", rep: 1, direct: reqs(1000), edge: reqs(900), directCPU: 10 * us, cpuPerReq: 15 * us},
	}
	st := summarize(rows, []string{"h1-small", "h3-small", "absent"})
	if len(st) != 2 {
		t.Fatalf("%d stats, want 2 (absent has no rows): %+v", len(st), st)
	}
	h1 := st[0]
	if h1.name != "h1-small" || h1.reps != 3 {
		t.Fatalf("h1: %+v", h1)
	}
	if h1.edge != 24*us || h1.edgeMin != 20*us || h1.edgeMax != 30*us {
		t.Errorf("edge median/min/max = %v %v %v, want 24µs 20µs 30µs", h1.edge, h1.edgeMin, h1.edgeMax)
	}
	if h1.nginx != 12*us || h1.direct != 10*us {
		t.Errorf("nginx %v direct %v, want 12µs 10µs", h1.nginx, h1.direct)
	}
	// Per-repetition ratios 20/16, 30/12, 24/10 = 1.25, 2.5, 2.4: the
	// median 2.4, not the ratio of the medians 24/12 = 2.
	if h1.edgeNginx != 2.4 || h1.edgeNginxMin != 1.25 || h1.edgeNginxMax != 2.5 {
		t.Errorf("edge÷nginx %v (%v–%v), want 2.4 (1.25–2.5)", h1.edgeNginx, h1.edgeNginxMin, h1.edgeNginxMax)
	}
	if h1.edgeDirect != 2.0 || h1.throughput != 0.6 {
		t.Errorf("edge÷direct %v, throughput %v; want 2, 0.6", h1.edgeDirect, h1.throughput)
	}
	if h1.edgePeakKB != 40<<10 || h1.nginxPeakKB != 22<<10 {
		t.Errorf("peaks %d %d: want the highest of the repetitions", h1.edgePeakKB, h1.nginxPeakKB)
	}
	if h3 := st[1]; h3.nginx != 0 || h3.edgeNginx != 0 || h3.nginxPeakKB != 0 {
		t.Errorf("h3 without nginx has nginx figures: %+v", h3)
	}
}

func TestGoalFor(t *testing.T) {
	for name, want := range map[string]goal{
		"cache-h1-small": {"hit", 1.0}, "cache-h2-small": {"hit", 1.0}, "cache-h1-100k": {"hit", 1.0},
		"h1-small": {"proxy", 1.25}, "https-small": {"proxy", 1.25}, "h2-small": {"proxy", 1.25}, "h1-100k": {"proxy", 1.25},
		"tls-handshake": {"handshake", 0.8},
	} {
		if got := goalFor(name); got != want {
			t.Errorf("goalFor(%s) = %v, want %v", name, got, want)
		}
	}
	for _, c := range []struct {
		x, bound float64
		want     string
	}{{0, 1, "–"}, {0.99, 1, "yes"}, {1, 1, "yes"}, {1.01, 1, "no"}, {0.81, 0.8, "no"}} {
		if got := verdict(c.x, c.bound); got != c.want {
			t.Errorf("verdict(%v, %v) = %s, want %s", c.x, c.bound, got, c.want)
		}
	}
}

func TestPrintSummaryIssueTable(t *testing.T) {
	us := time.Microsecond
	st := []stats{
		// Measured in another order than the issue's table.
		{name: "h1-small", reps: 3, edge: 24 * us, nginx: 20 * us, edgeNginx: 1.2, edgePeakKB: 30 << 10, nginxPeakKB: 20 << 10},
		{name: "h3-small", reps: 3, edge: 30 * us},
		{name: "cache-h2-small", reps: 3, edge: 40 * us, nginx: 20 * us, edgeNginx: 2, edgePeakKB: 50 << 10, nginxPeakKB: 25 << 10},
		{name: "tls-handshake", reps: 3, edge: 300 * us, nginx: 400 * us, edgeNginx: 0.75, edgePeakKB: 40 << 10, nginxPeakKB: 24 << 10},
	}
	var b strings.Builder
	printSummary(&b, st, "50 conns × 10 streams")
	want := `| | nginx µs/req | Caddy | Edge µs/req | Edge ÷ nginx | goal | met |
|---|---:|---:|---:|---:|---|---|
| cache hit HTTP/2 100 B (50 conns × 10 streams) | 20.0 | – | 40.0 | 2.00 | ≤ 1.00 (hit) | no |
| proxy HTTP/1.1 100 B | 20.0 | – | 24.0 | 1.20 | ≤ 1.25 (proxy) | yes |
| new TLS 1.3 connection + GET | 400.0 | – | 300.0 | 0.75 | ≤ 0.80 (handshake) | yes |
| h3-small | – | – | 30.0 | – | ≤ 1.25 (proxy) | – |
| peak RSS | 25.0 MiB | – | 50.0 MiB | 2.00 | ≤ 48 MiB (Edge) | no |
`
	if got := b.String(); got != want {
		t.Errorf("summary:\n%s\nwant:\n%s", got, want)
	}
	// Without nginx: its columns are dashes, the RSS goal still judged.
	b.Reset()
	printSummary(&b, []stats{{name: "h1-small", reps: 1, edge: 24 * us, edgePeakKB: 40 << 10}}, "1 conns × 32 streams")
	if !strings.Contains(b.String(), "| proxy HTTP/1.1 100 B | – | – | 24.0 | – | ≤ 1.25 (proxy) | – |") ||
		!strings.Contains(b.String(), "| peak RSS | – | – | 40.0 MiB | – | ≤ 48 MiB (Edge) | yes |") {
		t.Errorf("summary without nginx:\n%s", b.String())
	}
}

func TestHitChecks(t *testing.T) {
	h := http.Header{}
	h.Set("X-Cache-Status", "HIT")
	if ok, _ := nginxHit(h); !ok {
		t.Error("X-Cache-Status HIT is a hit")
	}
	for _, v := range []string{"MISS", "EXPIRED", "BYPASS", ""} {
		h.Set("X-Cache-Status", v)
		if ok, _ := nginxHit(h); ok {
			t.Errorf("X-Cache-Status %q is no hit", v)
		}
	}
	h.Set("Cache-Status", "edge; hit")
	if ok, _ := edgeHit(h); !ok {
		t.Error("Cache-Status edge; hit is a hit")
	}
	h.Set("Cache-Status", "edge; fwd=miss")
	if ok, _ := edgeHit(h); ok {
		t.Error("Cache-Status fwd=miss is no hit")
	}
}

func TestH2loadArgs(t *testing.T) {
	got := strings.Join(h2loadArgs("https://localhost:1/c/small", cacheHost, 3*time.Second, 50, 10), " ")
	want := "-D 3 --warm-up-time=1 -c 50 -t1 -m 10 https://localhost:1/c/small -H :authority: cache.bench"
	if got != want {
		t.Errorf("h2load %s, want %s", got, want)
	}
	l := newLoader(time.Second, 32, true)
	if l.h2conns != 1 || l.h2streams != 32 || l.h2describe() != "1 conns × 32 streams" {
		t.Errorf("default HTTP/2 load: %d × %d", l.h2conns, l.h2streams)
	}
}
