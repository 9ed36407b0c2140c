package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// The medians over repetitions and issue 22's table: CPU time of the
// server process per request, edge against nginx, judged by the median of
// the repetitions.

// stats is one scenario over its repetitions.
type stats struct {
	name string
	reps int
	// Medians of CPU per request: the origin served directly, the edge,
	// nginx (0: not measured).
	direct, edge, nginx time.Duration
	edgeMin, edgeMax    time.Duration
	nginxMin, nginxMax  time.Duration
	// Medians of the per-repetition ratios of CPU per request (0: not
	// measured): each repetition's edge and nginx runs are neighbours in
	// time, so their ratio cancels the machine's drift between
	// repetitions better than a ratio of medians would.
	edgeNginx, edgeNginxMin, edgeNginxMax float64
	edgeDirect                            float64
	// throughput is the median edge ÷ direct requests/s.
	throughput float64
	// Highest peak RSS of the repetitions, KiB.
	edgePeakKB, nginxPeakKB int
}

// median of a sorted copy; the mean of the middle two for an even count.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 0 {
		return (s[m-1] + s[m]) / 2
	}
	return s[m]
}

func medianDur(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

func minMax[T int | float64 | time.Duration](xs []T) (lo, hi T) {
	for i, x := range xs {
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return lo, hi
}

// ratio is a/b, 0 when either is unknown.
func ratio(a, b time.Duration) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// summarize gathers rows by scenario, in the order of scenarios.
func summarize(rows []row, scenarios []string) []stats {
	var out []stats
	for _, name := range scenarios {
		s := stats{name: name}
		var direct, edge, nginx []time.Duration
		var en, ed, tp []float64
		for _, r := range rows {
			if r.name != name {
				continue
			}
			s.reps++
			direct = append(direct, r.directCPU)
			edge = append(edge, r.cpuPerReq)
			if r.direct.rps() > 0 {
				tp = append(tp, r.edge.rps()/r.direct.rps())
			}
			if x := ratio(r.cpuPerReq, r.directCPU); x > 0 {
				ed = append(ed, x)
			}
			if r.hasNginx {
				nginx = append(nginx, r.nginxCPU)
				if x := ratio(r.cpuPerReq, r.nginxCPU); x > 0 {
					en = append(en, x)
				}
			}
			s.edgePeakKB = max(s.edgePeakKB, r.edgePeakKB)
			s.nginxPeakKB = max(s.nginxPeakKB, r.nginxPeakKB)
		}
		if s.reps == 0 {
			continue
		}
		s.direct, s.edge, s.nginx = medianDur(direct), medianDur(edge), medianDur(nginx)
		s.edgeMin, s.edgeMax = minMax(edge)
		s.nginxMin, s.nginxMax = minMax(nginx)
		s.edgeNginx, s.edgeDirect, s.throughput = median(en), median(ed), median(tp)
		s.edgeNginxMin, s.edgeNginxMax = minMax(en)
		out = append(out, s)
	}
	return out
}

// us shows a duration in µs with one decimal; "–" for 0 (not measured).
func us(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond))
}

func fmtRatio(x float64) string {
	if x <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", x)
}

func mib(kb int) string {
	if kb <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
}

// printStats prints the medians per scenario, with ranges.
func printStats(w io.Writer, st []stats) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treps\tdirect CPU/req µs\tedge CPU/req µs (min–max)\tnginx CPU/req µs (min–max)\tedge÷nginx (min–max)\tedge÷direct\tedge÷direct req/s\tedge peak RSS\tnginx peak RSS\t")
	for _, s := range st {
		nginx, en := "–", "–"
		if s.nginx > 0 {
			nginx = fmt.Sprintf("%s (%s–%s)", us(s.nginx), us(s.nginxMin), us(s.nginxMax))
		}
		if s.edgeNginx > 0 {
			en = fmt.Sprintf("%.2f (%.2f–%.2f)", s.edgeNginx, s.edgeNginxMin, s.edgeNginxMax)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s (%s–%s)\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.name, s.reps, us(s.direct),
			us(s.edge), us(s.edgeMin), us(s.edgeMax), nginx, en, fmtRatio(s.edgeDirect), fmtRatio(s.throughput),
			mib(s.edgePeakKB), mib(s.nginxPeakKB))
	}
	tw.Flush()
}

// goal is issue 22's bound on Edge ÷ nginx for a kind of scenario.
type goal struct {
	kind  string
	bound float64
}

// goalFor: cache hits ≤ 1.0, proxied misses ≤ 1.25, handshakes ≤ 0.8.
func goalFor(scenario string) goal {
	switch {
	case strings.HasPrefix(scenario, "cache-"):
		return goal{"hit", 1.0}
	case scenario == "tls-handshake":
		return goal{"handshake", 0.8}
	default:
		return goal{"proxy", 1.25}
	}
}

// rssGoalKB is issue 22's bound on the edge's peak RSS under the load test.
const rssGoalKB = 48 << 10

// issueRows are the rows of issue 22's table, in its order.
var issueRows = []struct{ scenario, label string }{
	{"cache-h1-small", "cache hit HTTP/1.1 100 B"},
	{"cache-https-small", "cache hit HTTPS/1.1 100 B"},
	{"cache-h2-small", "cache hit HTTP/2 100 B"},
	{"cache-h1-100k", "cache hit HTTP/1.1 100 KiB"},
	{"h1-small", "proxy HTTP/1.1 100 B"},
	{"https-small", "proxy HTTPS/1.1 100 B"},
	{"h2-small", "proxy HTTP/2 100 B"},
	{"h1-100k", "proxy HTTP/1.1 100 KiB"},
	{"tls-handshake", "new TLS 1.3 connection + GET"},
}

// rowLabel is the issue's name of a scenario, its own name otherwise;
// HTTP/2 rows say their connections × streams.
func rowLabel(scenario, h2 string) string {
	label := scenario
	for _, r := range issueRows {
		if r.scenario == scenario {
			label = r.label
		}
	}
	if strings.Contains(scenario, "h2-") && h2 != "" {
		label += " (" + h2 + ")"
	}
	return label
}

// verdict says whether x meets bound; "–" when not measured.
func verdict(x, bound float64) string {
	switch {
	case x <= 0:
		return "–"
	case x <= bound:
		return "yes"
	default:
		return "no"
	}
}

// printSummary prints issue 22's table as markdown: the issue's rows
// first, in its order, then any other scenario measured; Caddy is not
// measured. h2 describes the HTTP/2 load ("50 conns × 10 streams").
func printSummary(w io.Writer, st []stats, h2 string) {
	by := map[string]stats{}
	for _, s := range st {
		by[s.name] = s
	}
	var order []string
	seen := map[string]bool{}
	for _, r := range issueRows {
		if _, ok := by[r.scenario]; ok {
			order = append(order, r.scenario)
			seen[r.scenario] = true
		}
	}
	for _, s := range st {
		if !seen[s.name] {
			order = append(order, s.name)
		}
	}
	fmt.Fprintln(w, "| | nginx µs/req | Caddy | Edge µs/req | Edge ÷ nginx | goal | met |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---|---|")
	edgePeak, nginxPeak := 0, 0
	for _, name := range order {
		s := by[name]
		g := goalFor(name)
		fmt.Fprintf(w, "| %s | %s | – | %s | %s | ≤ %.2f (%s) | %s |\n", rowLabel(name, h2), us(s.nginx), us(s.edge),
			fmtRatio(s.edgeNginx), g.bound, g.kind, verdict(s.edgeNginx, g.bound))
		edgePeak, nginxPeak = max(edgePeak, s.edgePeakKB), max(nginxPeak, s.nginxPeakKB)
	}
	rssRatio := 0.0
	if edgePeak > 0 && nginxPeak > 0 {
		rssRatio = float64(edgePeak) / float64(nginxPeak)
	}
	met := "–"
	if edgePeak > 0 {
		met = verdict(float64(edgePeak), rssGoalKB)
	}
	fmt.Fprintf(w, "| peak RSS | %s | – | %s | %s | ≤ 48 MiB (Edge) | %s |\n", mib(nginxPeak), mib(edgePeak), fmtRatio(rssRatio), met)
}
