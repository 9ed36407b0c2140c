// Command bench is Edge's load test: it starts an origin, the edge and a
// load generator on loopback, and prints requests/s, p50 and p99 for
// direct-to-origin and through the edge, the edge's throughput as a ratio
// of direct measured in the same run, the edge's CPU time per request and
// its peak RSS. The generator is pinned to core 0, origin and edge share
// core 1 (taskset), as in the targets of issue 6.
//
//	go run ./cmd/bench                    # every scenario, 5 s each
//	go run ./cmd/bench -duration 10s -conns 64 -scenarios h1-small,h2-small
//	go run ./cmd/bench -duration 3s -reps 3 -h2-conns 50 -h2-streams 10 -scenarios ...   # issue 22's table
//
// When nginx is installed (Debian's package) it is a third target beside
// direct and the edge (-nginx=false skips it): one master and one worker
// on the edge's core, proxying to the same origin, with proxy_cache for
// the cache scenarios (nginx.go). With -reps N the medians of CPU per
// request, Edge ÷ nginx and issue 22's table (markdown) close the output.
//
// wrk is used for the HTTP/1.1 scenarios when it is installed; the
// built-in Go generator otherwise and for the rest (HTTP/3: quic-go's
// client, one QUIC connection carrying -conns streams).
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/quic-go/quic-go/http3"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "origin" {
		runOrigin(os.Args[2:])
		return
	}
	duration := flag.Duration("duration", 5*time.Second, "length of each measurement")
	conns := flag.Int("conns", 32, "concurrent connections (streams for HTTP/2)")
	scenarios := flag.String("scenarios", defaultScenarios, "comma-separated scenarios: "+allScenarios())
	reps := flag.Int("reps", 1, "repetitions of the scenario list, against the same edge")
	flag.StringVar(&cacheMemory, "cache-memory", "", "the edge's cache.memory_size (default: the node's)")
	flag.StringVar(&memoryLimit, "memory-limit", "", "the edge's limits.memory_limit (default: the node's)")
	flag.StringVar(&edgeEnv, "edge-env", "", "comma-separated VAR=value for the edge only, e.g. GOGC=100")
	useWrk := flag.Bool("wrk", true, "use wrk for HTTP/1.1 scenarios when installed")
	_, nginxErr := exec.LookPath("nginx")
	flag.BoolVar(&useNginx, "nginx", nginxErr == nil, "measure nginx (on PATH) beside the edge")
	flag.IntVar(&h2Conns, "h2-conns", 1, "HTTP/2 scenarios: connections (h2load -c)")
	flag.IntVar(&h2Streams, "h2-streams", 0, "HTTP/2 scenarios: concurrent streams per connection (h2load -m; default -conns)")
	flag.StringVar(&profileFile, "profile", "", "write a CPU profile of the edge during the first scenario's edge run to this file")
	flag.IntVar(&certCount, "certs", 0, "instead of the scenarios, measure the edge with this many certificates in its store (e.g. 100000)")
	flag.IntVar(&propCount, "properties", 0, "instead of the scenarios, measure a start-up with this many properties, each with a certificate")
	flag.Float64Var(&memoryScale, "memory-scale", 1, "cache-memory scenario: scale of its request counts and big object sizes (1: issue 17's)")
	flag.StringVar(&heapFile, "heapprofile", "", "with -properties: save a heap profile of the settled edge to this file")
	flag.BoolVar(&startAllCores, "start-all-cores", true, "with -properties: run the edge on every core of the machine, as a node runs (it parses property files on each); false pins it to core 1 as in the load tests")
	flag.StringVar(&fixtures, "fixtures", "", "with -properties: keep the generated certificate store in this directory and reuse it in later runs")
	flag.StringVar(&startProfile, "startprofile", "", "with -properties: save a CPU profile of the edge's start (to readiness) to this file")
	flag.StringVar(&memDump, "memdump", "", "save the edge's heap profile, runtime.MemStats, goroutines and /proc status to this folder, 3/4 into and at the end of each scenario's edge run")
	flag.BoolVar(&memDumpGC, "memdump-gc", false, "with -memdump: also a heap profile after a forced collection (changes the runs that follow)")
	flag.BoolVar(&restart, "restart", false, "with -properties: start the edge, let it write its property snapshot, stop it, and measure its second start on the same data_dir and files")
	flag.StringVar(&cpuPart, "cpu-part", "all", "CPU time counted in every figure: all (user+system), user (user space only) or sys (the kernel's part only)")
	flag.Parse()
	if cpuPart != "all" && cpuPart != "user" && cpuPart != "sys" {
		fmt.Fprintf(os.Stderr, "bench: -cpu-part %q: want all, user or sys\n", cpuPart)
		os.Exit(2)
	}
	if err := run(*duration, *conns, *reps, strings.Split(*scenarios, ","), *useWrk); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type result struct {
	requests int
	errors   int
	elapsed  time.Duration
	lat      []time.Duration // a sample, for percentiles
	p50, p99 time.Duration   // from wrk or h2load when they ran
	approx   bool            // h2load: mean and max, not percentiles
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r result) show(p float64) string {
	s := r.pct(p).Round(time.Microsecond).String()
	if r.approx {
		return "~" + s
	}
	return s
}

func (r result) pct(p float64) time.Duration {
	if r.p50 != 0 {
		if p < 0.9 {
			return r.p50
		}
		return r.p99
	}
	if len(r.lat) == 0 {
		return 0
	}
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

var (
	profileFile   string
	certCount     int
	propCount     int
	heapFile      string
	startProfile  string
	restart       bool
	fixtures      string
	startAllCores bool
	cacheMemory   string
	memoryLimit   string
	edgeEnv       string
	useNginx      bool
	h2Conns       int
	h2Streams     int
)

func run(d time.Duration, conns, reps int, scenarios []string, useWrk bool) error {
	pinned := os.Getenv("EDGE_BENCH_PINNED") == "1"
	taskset, _ := exec.LookPath("taskset")
	if !pinned && taskset != "" && runtime.NumCPU() >= 2 {
		// Re-run this process pinned to core 0; servers go to core 1.
		cmd := exec.Command(taskset, append([]string{"-c", "0", os.Args[0]}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), "EDGE_BENCH_PINNED=1")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd.Run()
	}
	serverCPU := func(args ...string) []string {
		if taskset != "" && runtime.NumCPU() >= 2 {
			return append([]string{taskset, "-c", "1"}, args...)
		}
		return args
	}
	dir, err := os.MkdirTemp("", "edge-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Println("building the edge …")
	edgeBin := filepath.Join(dir, "edge")
	build := exec.Command("go", "build", "-o", edgeBin, ".")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	if propCount > 0 {
		return runProperties(propCount, serverCPU, edgeBin, heapFile)
	}
	if certCount > 1 {
		return runCerts(certCount, d, conns, serverCPU, edgeBin)
	}
	r, err := startRig(dir, edgeBin, serverCPU)
	if err != nil {
		return err
	}
	defer r.stop()
	if useNginx {
		bin, err := exec.LookPath("nginx")
		if err != nil {
			return fmt.Errorf("-nginx: %w", err)
		}
		if r.ngx, err = startNginx(bin, filepath.Join(dir, "nginx"), r.oHTTP, serverCPU); err != nil {
			return fmt.Errorf("%w (-nginx=false measures without it)", err)
		}
		defer func() {
			if err := r.ngx.stop(); err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	idleRSS := procStatus(r.edgePID, "VmRSS")
	idleKB := rssKBKey(r.edgePID, "VmRSS")

	l := newLoader(d, conns, useWrk)
	if h2Streams <= 0 {
		h2Streams = conns
	}
	l.h2conns, l.h2streams = max(1, h2Conns), h2Streams
	var rows []row
	var scans []scanResult
	var memResults []memoryResult
	for rep := 1; rep <= reps; rep++ {
		for _, name := range scenarios {
			fmt.Printf("running %s (rep %d) …\n", name, rep)
			if name == "cache-memory" {
				fmt.Printf("running %s (rep %d) …\n", name, rep)
				mr, err := runMemory(r.edgePID, r.eHTTP)
				if err != nil {
					return err
				}
				memResults = append(memResults, mr...)
				continue
			}
			if name == "cache-scan" {
				sr, err := runScan(r.edgePID, r.eHTTP, r.oHTTP)
				if err != nil {
					return err
				}
				scans = append(scans, sr)
				continue
			}
			sc, ok := scenarioByName(name)
			if !ok {
				return fmt.Errorf("unknown scenario %q", name)
			}
			rw, err := r.measure(l, sc, rep)
			if err != nil {
				return err
			}
			rows = append(rows, rw)
		}
	}
	time.Sleep(5 * time.Second)
	settledRSS := procStatus(r.edgePID, "VmRSS")

	fmt.Printf("\nEdge load test: %d connections, %s per measurement, %d repetition(s), generator on core 0, origin and edge on core 1, %s\n", conns, d, reps, l.describe())
	fmt.Printf("edge: %s %s\n\n", strings.TrimSpace(strings.ReplaceAll(edgeConfigExtra(), "\n", " ")), edgeEnv)
	if r.ngx != nil {
		fmt.Printf("nginx: %s, one master and one worker on core 1, proxy_cache for %s (nginx.conf in the bench's temporary folder)\n\n", nginxVersion(), cacheHost)
	}
	printRows(rows)
	st := summarize(rows, scenarios)
	if reps > 1 {
		fmt.Printf("\nmedian of %d repetitions (min–max); ratios of CPU per request, the median of each repetition's ratio:\n", reps)
		printStats(os.Stdout, st)
	}
	if r.ngx != nil || reps > 1 {
		part := ""
		if cpuPart != "all" {
			part = " (" + cpuPart + " time only)"
		}
		fmt.Printf("\nCPU time%s of the server process(es) per request, median of %d repetition(s), load average %s at the end:\n\n", part, reps, loadAvg())
		printSummary(os.Stdout, st, l.h2describe())
	}
	for _, s := range scans {
		fmt.Println()
		s.print()
	}
	if len(memResults) > 0 {
		printMemory(memResults, idleKB)
	}
	fmt.Printf("\nedge RSS: idle %s before the load, %s 5 s after it\n", idleRSS, settledRSS)
	return nil
}

// rig is the origin and the edge of a load test, started in dir.
type rig struct {
	dir                   string
	oHTTP, oHTTPS         int
	eHTTP, eHTTPS, eAdmin int
	origin, edge          *exec.Cmd
	edgePID               int
	logFile               *os.File
	ngx                   *nginxServer // nil without -nginx
}

// startRig starts the bench origin (this program, as "origin") and the
// edge with its two properties, and waits until both listen.
func startRig(dir, edgeBin string, serverCPU func(...string) []string) (*rig, error) {
	self, _ := os.Executable()
	r := &rig{dir: dir, oHTTP: freePort(), oHTTPS: freePort(), eHTTP: freePort(), eHTTPS: freePort(), eAdmin: freePort()}
	originArgs := serverCPU(self, "origin", strconv.Itoa(r.oHTTP), strconv.Itoa(r.oHTTPS))
	r.origin = exec.Command(originArgs[0], originArgs[1:]...)
	r.origin.Stderr = os.Stderr
	if err := r.origin.Start(); err != nil {
		return nil, err
	}
	props := filepath.Join(dir, "props")
	os.MkdirAll(props, 0o755)
	os.WriteFile(filepath.Join(props, "bench.yaml"), []byte(fmt.Sprintf(
		"hostnames: [localhost]\norigins: [{url: http://127.0.0.1:%d}]\ntls: {certificate: bench}\n", r.oHTTP)), 0o644)
	// The cache scenarios' property: same origin and certificate, reached
	// with Host (and :authority) cache.bench over a connection to localhost.
	os.WriteFile(filepath.Join(props, "cached.yaml"), []byte(fmt.Sprintf(
		"hostnames: [%s]\norigins: [{url: http://127.0.0.1:%d}]\ntls: {certificate: bench}\ncache: {enabled: true}\n", cacheHost, r.oHTTP)), 0o644)
	writeMemoryProps(props, r.oHTTP)
	os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(fmt.Sprintf(`node: {name: bench}
listen: {http: ":%d", https: ":%d", admin: "127.0.0.1:%d"}
data_dir: ./data
properties_dir: ./props
log: {level: warn, format: json, access: true}
%s`, r.eHTTP, r.eHTTPS, r.eAdmin, edgeConfigExtra())), 0o644)
	r.logFile, _ = os.Create(filepath.Join(dir, "edge.log"))
	edgeArgs := serverCPU(edgeBin, "serve", "--config", filepath.Join(dir, "edge.yaml"))
	r.edge = exec.Command(edgeArgs[0], edgeArgs[1:]...)
	r.edge.Stderr = r.logFile
	r.edge.Env = os.Environ()
	if edgeEnv != "" {
		r.edge.Env = append(r.edge.Env, strings.Split(edgeEnv, ",")...)
	}
	if err := r.edge.Start(); err != nil {
		r.stop()
		return nil, err
	}
	r.edgePID = r.edge.Process.Pid // taskset execs the edge in place: the same pid
	for _, port := range []int{r.oHTTP, r.eHTTP, r.eHTTPS} {
		if err := waitListening(fmt.Sprint("127.0.0.1:", port)); err != nil {
			r.stop()
			return nil, err
		}
	}
	return r, nil
}

// stop ends the edge (SIGTERM) and the origin.
func (r *rig) stop() {
	if r.edge != nil && r.edge.Process != nil {
		r.edge.Process.Signal(syscall.SIGTERM)
	}
	r.logFile.Close()
	r.origin.Process.Kill()
}

// row is one scenario's measurement, direct and through the edge.
type row struct {
	name         string
	rep          int
	load         string // the 1-minute load average when it started
	direct, edge result
	directCPU    time.Duration // the origin's CPU per request, served directly
	cpuPerReq    time.Duration
	peakRSS      string // VmHWM during the scenario
	edgePeakKB   int
	originConns  int64 // origin connections the edge opened
	midConns     int64 // of which in the middle half of the run
	originReqs   int64 // cache scenarios: requests that reached the origin; -1 otherwise
	// nginx's run of the scenario, when hasNginx.
	hasNginx         bool
	nginx            result
	nginxCPU         time.Duration // CPU of all its processes per request
	nginxPeakKB      int           // the sum of its processes' VmHWM
	nginxOriginReqs  int64         // cache scenarios: requests that reached the origin; -1 otherwise
	nginxOriginConns int64         // origin connections nginx opened
}

// loader runs the load of one measurement with wrk or h2load when they
// are installed and wanted, else with the built-in generator.
type loader struct {
	d           time.Duration
	conns       int
	useWrk      bool
	wrk, h2load string
	// HTTP/2: connections and streams on each.
	h2conns, h2streams int
}

func newLoader(d time.Duration, conns int, useWrk bool) loader {
	wrk, _ := exec.LookPath("wrk")
	h2load, _ := exec.LookPath("h2load")
	return loader{d: d, conns: conns, useWrk: useWrk, wrk: wrk, h2load: h2load, h2conns: 1, h2streams: conns}
}

// h2describe is the HTTP/2 load, as issue 22 writes it.
func (l loader) h2describe() string {
	return fmt.Sprintf("%d conns × %d streams", l.h2conns, l.h2streams)
}

// describe names the generators the results come from.
func (l loader) describe() string {
	if l.useWrk && (l.wrk != "" || l.h2load != "") {
		return "wrk (HTTP/1.1, handshakes) and h2load (HTTP/2) where installed, else the Go generator"
	}
	return "the built-in Go generator"
}

func (l loader) load(mode, url, host string) result {
	switch {
	case l.wrk != "" && l.useWrk && (mode == "h1" || mode == "h1tls"):
		if r, err := runWrk(l.wrk, url, host, l.d, l.conns, false); err == nil {
			return r
		}
	case l.wrk != "" && l.useWrk && mode == "handshake":
		if r, err := runWrk(l.wrk, url, host, l.d, l.conns, true); err == nil {
			return r
		}
	case l.h2load != "" && l.useWrk && mode == "h2":
		if r, err := runH2load(l.h2load, url, host, l.d, l.h2conns, l.h2streams); err == nil {
			return r
		}
	case mode == "h2":
		return generate(url, host, mode, l.d, l.h2conns*l.h2streams)
	}
	return generate(url, host, mode, l.d, l.conns)
}

// measure runs one scenario direct to the origin, then through the edge,
// and reads the edge's CPU, peak RSS and origin connections around it.
func (r *rig) measure(l loader, sc scenario, rep int) (row, error) {
	scheme, dPort, ePort := "http", r.oHTTP, r.eHTTP
	if sc.mode != "h1" {
		scheme, dPort, ePort = "https", r.oHTTPS, r.eHTTPS
	}
	// The edge is reached as localhost (SNI and Host of its property).
	directURL := fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, dPort, sc.path)
	edgeURL := fmt.Sprintf("%s://localhost:%d%s", scheme, ePort, sc.path)
	rw := row{name: sc.name, rep: rep, load: loadAvg(), originReqs: -1}
	originBefore := procCPU(r.origin.Process.Pid)
	rw.direct = l.load(sc.mode, directURL, "")
	if rw.direct.requests > 0 {
		rw.directCPU = (procCPU(r.origin.Process.Pid) - originBefore) / time.Duration(rw.direct.requests)
	}
	rw.nginxOriginReqs = -1
	// Edge and nginx take turns going first, so that neither always runs
	// in the other's wake.
	if r.ngx != nil && sc.mode != "h3" && rep%2 == 0 {
		if err := r.measureNginx(l, sc, &rw); err != nil {
			return rw, err
		}
	}
	if sc.host != "" {
		// The first request fills the cache: the run measures hits.
		if err := warm(edgeURL, sc.host); err != nil {
			return rw, fmt.Errorf("%s: %w", sc.name, err)
		}
	}
	resetPeak(r.edgePID)
	servedBefore := settledCount(r.oHTTP, "/cacheable")
	connsBefore := originConns(r.oHTTP)
	before := procCPU(r.edgePID)
	var profDone chan struct{}
	if profileFile != "" {
		profDone = make(chan struct{})
		go func() { defer close(profDone); saveProfile(r.dir, r.eAdmin, l.d, profileFile) }()
	}
	// Connections opened in the middle half of the run: steady state,
	// without the warm-up and the end (where the generator closing its
	// connections cuts requests in flight, whose origin connections are
	// then closed, not reused).
	midConns := make(chan int64, 1)
	go func() {
		time.Sleep(l.d / 4)
		a := originConns(r.oHTTP)
		time.Sleep(l.d / 2)
		midConns <- originConns(r.oHTTP) - a - 1
		dumpMemory(r.dir, r.eAdmin, r.edgePID, fmt.Sprintf("%s-%d-mid", sc.name, rep))
	}()
	rw.edge = l.load(sc.mode, edgeURL, sc.host)
	if profDone != nil {
		<-profDone
		fmt.Printf("CPU profile of the edge during %s: %s (go tool pprof -top %s)\n", sc.name, profileFile, profileFile)
		profileFile = ""
	}
	cpu := procCPU(r.edgePID) - before
	rw.originConns = originConns(r.oHTTP) - connsBefore - 1 // the /conns request's own
	if sc.host != "" {
		rw.originReqs = originCount(r.oHTTP, "/cacheable") - servedBefore
	}
	if rw.edge.requests > 0 {
		rw.cpuPerReq = cpu / time.Duration(rw.edge.requests)
	}
	rw.peakRSS = procStatus(r.edgePID, "VmHWM")
	rw.edgePeakKB = rssKBKey(r.edgePID, "VmHWM")
	rw.midConns = <-midConns
	dumpMemory(r.dir, r.eAdmin, r.edgePID, fmt.Sprintf("%s-%d-end", sc.name, rep))
	if r.ngx != nil && sc.mode != "h3" && rep%2 != 0 { // nginx 1.22 has no HTTP/3
		if err := r.measureNginx(l, sc, &rw); err != nil {
			return rw, err
		}
	}
	return rw, nil
}

// measureNginx runs one scenario against nginx, as measure does against
// the edge: the same URL path and Host, a warm-up that must end in a hit
// (X-Cache-Status: HIT) for the cache scenarios, the CPU time of all its
// processes and the sum of their peak RSS.
func (r *rig) measureNginx(l loader, sc scenario, rw *row) error {
	scheme, port := "http", r.ngx.http
	if sc.mode != "h1" {
		scheme, port = "https", r.ngx.https
	}
	url := fmt.Sprintf("%s://localhost:%d%s", scheme, port, sc.path)
	if sc.host != "" {
		if err := warmCheck(url, sc.host, nginxHit); err != nil {
			return fmt.Errorf("%s (nginx): %w", sc.name, err)
		}
	}
	servedBefore := settledCount(r.oHTTP, "/cacheable")
	connsBefore := originConns(r.oHTTP)
	r.ngx.resetPeak()
	before := r.ngx.cpu()
	rw.nginx = l.load(sc.mode, url, sc.host)
	cpu := r.ngx.cpu() - before
	rw.nginxOriginConns = originConns(r.oHTTP) - connsBefore - 1 // the /conns request's own
	if sc.host != "" {
		rw.nginxOriginReqs = originCount(r.oHTTP, "/cacheable") - servedBefore
	}
	if rw.nginx.requests > 0 {
		rw.nginxCPU = cpu / time.Duration(rw.nginx.requests)
	}
	rw.nginxPeakKB = r.ngx.peakKB()
	rw.hasNginx = true
	return nil
}

// nginxVersion is what nginx -v says, e.g. "nginx/1.22.1".
func nginxVersion() string {
	out, _ := exec.Command("nginx", "-v").CombinedOutput()
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
}

// printRows prints one line per measurement.
func printRows(rows []row) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trep\tload1\tdirect req/s\tdirect p50\tdirect p99\tedge req/s\tedge p50\tedge p99\tratio\tdirect CPU/req\tedge CPU/req\tpeak RSS\torigin conns/10k req\tmid-run conns\torigin reqs\terrors\tnginx req/s\tnginx p50\tnginx p99\tnginx CPU/req\tnginx peak RSS\tnginx origin conns/10k req\tnginx origin reqs\tnginx errors\t")
	for _, r := range rows {
		reqs := "-"
		if r.originReqs >= 0 {
			reqs = strconv.FormatInt(r.originReqs, 10)
		}
		per10k := "-"
		if r.edge.requests > 0 && r.originConns >= 0 {
			per10k = fmt.Sprintf("%.2f", float64(r.originConns)*10000/float64(r.edge.requests))
		}
		ngx := "-\t-\t-\t-\t-\t-\t-\t-"
		if r.hasNginx {
			nreqs := "-"
			if r.nginxOriginReqs >= 0 {
				nreqs = strconv.FormatInt(r.nginxOriginReqs, 10)
			}
			nper10k := "-"
			if r.nginx.requests > 0 && r.nginxOriginConns >= 0 {
				nper10k = fmt.Sprintf("%.2f", float64(r.nginxOriginConns)*10000/float64(r.nginx.requests))
			}
			ngx = fmt.Sprintf("%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d", r.nginx.rps(), r.nginx.show(0.5), r.nginx.show(0.99),
				r.nginxCPU.Round(100*time.Nanosecond), mib(r.nginxPeakKB), nper10k, nreqs, r.nginx.errors)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%s\t%s\t%.0f\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t\n", r.name, r.rep, r.load, r.direct.rps(), r.direct.show(0.5), r.direct.show(0.99),
			r.edge.rps(), r.edge.show(0.5), r.edge.show(0.99), r.edge.rps()/r.direct.rps(), r.directCPU.Round(100*time.Nanosecond), r.cpuPerReq.Round(100*time.Nanosecond), r.peakRSS, per10k, r.midConns, reqs, r.direct.errors+r.edge.errors, ngx)
	}
	tw.Flush()
}

// originConns asks the bench origin how many connections it accepted
// (its /conns, on a connection of its own); -1 when it cannot say.
func originConns(port int) int64 { return originCount(port, "/conns") }

// settledCount reads one of the origin's counters once it stopped moving
// (unchanged for 200 ms, for at most 5 s): after a direct run the origin
// may still be serving the requests the generator left in flight, which
// would count in the next target's window.
func settledCount(port int, path string) int64 {
	n := originCount(port, path)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		m := originCount(port, path)
		if m == n {
			break
		}
		n = m
	}
	return n
}

// originCount reads one of the bench origin's counters; -1 when it cannot.
func originCount(port int, path string) int64 {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(addr string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("%s never listened", addr)
}

// cpuPart is the part of the CPU time procCPU counts: "all" (user+system),
// "user" or "sys" (-cpu-part).
var cpuPart = "all"

// procCPU returns the user+system CPU time of a process (or the part of it
// cpuPart names).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	switch cpuPart {
	case "sys":
		utime = 0
	case "user":
		stime = 0
	}
	return time.Duration(utime+stime) * (time.Second / 100) // CLK_TCK is 100 on Linux
}

func procStatus(pid int, key string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key+":") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "?"
}

// generate is the Go load generator: conns workers for d, each looping
// GET url; latencies are sampled.
func generate(url, host, mode string, d time.Duration, conns int) result {
	tlsConf := &tls.Config{InsecureSkipVerify: true}
	tr := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	switch mode {
	case "h1tls":
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
	case "h2":
		tr.ForceAttemptHTTP2 = true
		tr.MaxConnsPerHost = 1
	case "handshake":
		tr.DisableKeepAlives = true
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	default:
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	if mode == "h3" {
		// One QUIC connection, conns streams on it (as h2 over one TCP
		// connection).
		h3 := &http3.Transport{TLSClientConfig: tlsConf, DisableCompression: true}
		defer h3.Close()
		client.Transport = h3
	}
	// Warm up the connections.
	warm := make(chan struct{})
	go func() { time.Sleep(300 * time.Millisecond); close(warm) }()
	var wg sync.WaitGroup
	var n, errs atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			counting := false
			for i := 0; ctx.Err() == nil; i++ {
				if !counting {
					select {
					case <-warm:
						counting = true
					default:
					}
				}
				req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
				if host != "" {
					req.Host = host
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if !counting || ctx.Err() != nil {
					continue
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				n.Add(1)
				if i%4 == 0 {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	<-warm
	t0 := time.Now()
	time.Sleep(d)
	cancel()
	elapsed := time.Since(t0)
	wg.Wait()
	tr.CloseIdleConnections()
	return result{requests: int(n.Load()), errors: int(errs.Load()), elapsed: elapsed, lat: lat}
}

// runWrk runs wrk and reads its summary; with closeEach every request opens
// a new connection (a full TLS handshake: wrk keeps no sessions).
func runWrk(wrk, url, host string, d time.Duration, conns int, closeEach bool) (result, error) {
	args := []string{"-t1", "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", url}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	if closeEach {
		args = append(args, "-H", "Connection: close")
	}
	out, err := exec.Command(wrk, args...).CombinedOutput()
	if err != nil {
		return result{}, err
	}
	var r result
	r.elapsed = d
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "50%":
			r.p50, _ = time.ParseDuration(f[1])
		case len(f) >= 2 && f[0] == "99%":
			r.p99, _ = time.ParseDuration(f[1])
		case len(f) >= 5 && strings.HasSuffix(l, "read") && strings.Contains(l, "requests in"):
			r.requests, _ = strconv.Atoi(f[0])
		case strings.HasPrefix(strings.TrimSpace(l), "Non-2xx"):
			r.errors, _ = strconv.Atoi(f[len(f)-1])
		}
	}
	return r, nil
}

// saveProfile fetches a CPU profile of the edge through its admin API.
func saveProfile(dir string, adminPort int, d time.Duration, file string) {
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", adminPort, int(d.Seconds())), nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}

// runH2load runs h2load over conns HTTP/2 connections with streams
// concurrent streams each. It reports no percentiles: the table shows its
// mean as p50 and its maximum as p99, marked with ~.
func runH2load(h2load, url, host string, d time.Duration, conns, streams int) (result, error) {
	out, err := exec.Command(h2load, h2loadArgs(url, host, d, conns, streams)...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("%v: %s", err, out)
	}
	r := result{elapsed: d, approx: true}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 8 && f[0] == "requests:":
			done, _ := strconv.Atoi(f[5])
			ok, _ := strconv.Atoi(f[7])
			r.requests, r.errors = ok, done-ok
		case len(f) > 4 && f[0] == "time" && f[2] == "request:":
			r.p99, _ = time.ParseDuration(strings.Replace(f[4], "us", "µs", 1))
			r.p50, _ = time.ParseDuration(strings.Replace(f[5], "us", "µs", 1))
		}
	}
	return r, nil
}

// h2loadArgs are h2load's arguments: one thread, conns connections with
// streams concurrent streams each, for d after a second of warm-up.
func h2loadArgs(url, host string, d time.Duration, conns, streams int) []string {
	args := []string{"-D", strconv.Itoa(int(d.Seconds())), "--warm-up-time=1", "-c", strconv.Itoa(conns), "-t1", "-m", strconv.Itoa(streams), url}
	if host != "" {
		args = append(args, "-H", ":authority: "+host)
	}
	return args
}
