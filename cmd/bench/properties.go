package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// runProperties measures a start-up with n properties, each with its own
// certificate, on bbolt: time to the first HTTPS answer (for the last
// property's name), RSS then and once settled, and where start-up time
// goes by the node's own log lines. With heapFile set it saves a heap
// profile of the settled edge there (go tool pprof -sample_index=inuse_space).
func runProperties(n int, serverCPU func(...string) []string, edgeBin, heapFile string) error {
	dir, err := os.MkdirTemp("", "edge-props-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("writing %d certificates and %d properties …\n", n, n)
	if err := certificateStore(filepath.Join(dir, "data", "edge.db"), n); err != nil {
		return err
	}
	if err := writeProperties(filepath.Join(dir, "props"), n); err != nil {
		return err
	}
	eHTTPS, eAdmin := freePort(), freePort()
	if err := os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(fmt.Sprintf(`node: {name: bench}
listen: {http: "127.0.0.1:%d", https: "127.0.0.1:%d", admin: "127.0.0.1:%d"}
data_dir: ./data
properties_dir: ./props
log: {level: info, format: json, access: false}
renewal: {check_interval: 1h}
`, freePort(), eHTTPS, eAdmin)), 0o644); err != nil {
		return err
	}
	args := serverCPU(edgeBin, "serve", "--config", filepath.Join(dir, "edge.yaml"))
	if startAllCores {
		args = []string{edgeBin, "serve", "--config", filepath.Join(dir, "edge.yaml")}
		// This process runs pinned to core 0 (see run): without an
		// affinity of its own the edge would inherit that one core.
		// (runtime.NumCPU here counts that one core: the machine's are
		// read from sysfs.)
		online, err := os.ReadFile("/sys/devices/system/cpu/online")
		if taskset, lerr := exec.LookPath("taskset"); err == nil && lerr == nil {
			args = append([]string{taskset, "-c", strings.TrimSpace(string(online))}, args...)
		}
	}
	if restart {
		if err := primeStart(args, eHTTPS, n); err != nil {
			return err
		}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = os.Environ()
	if edgeEnv != "" {
		cmd.Env = append(cmd.Env, strings.Split(edgeEnv, ",")...)
	}
	if startProfile != "" {
		abs, err := filepath.Abs(startProfile)
		if err != nil {
			return err
		}
		cmd.Env = append(cmd.Env, "EDGE_BENCH_START_CPUPROFILE="+abs)
	}
	logs, _ := cmd.StderrPipe()
	marks := make(chan map[string]time.Time, 1)
	reloads := make(chan string, 4)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	tail := &lastLines{}
	go func() { marks <- logMarks(io.TeeReader(logs, tail), reloads) }()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()

	sni := fmt.Sprintf("h%d.example", n-1)
	for !httpsAnswers(eHTTPS, sni) {
		if time.Since(start) > 15*time.Minute {
			return fmt.Errorf("no HTTPS answer after 15 minutes")
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("the edge exited before its first HTTPS answer (%v); its last log lines:\n%s", err, tail.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	first := time.Since(start)
	cpuFirst := procCPU(cmd.Process.Pid)
	rssFirst := rssKB(cmd.Process.Pid)
	settle := time.Now()
	// Settled: four quiet half-seconds in a row (one alone was fooled by
	// the start's store writes waiting on the disk).
	for prev, quiet := procCPU(cmd.Process.Pid), 0; time.Since(settle) < 2*time.Minute && quiet < 4; {
		time.Sleep(500 * time.Millisecond)
		cur := procCPU(cmd.Process.Pid)
		if cur-prev <= 10*time.Millisecond {
			quiet++
		} else {
			quiet = 0
		}
		prev = cur
	}
	settled := time.Since(start)
	rssSettled := rssKB(cmd.Process.Pid)
	anon, file := procStatus(cmd.Process.Pid, "RssAnon"), procStatus(cmd.Process.Pid, "RssFile")
	memStats := ""
	if heapFile != "" {
		saveHeap(dir, eAdmin, heapFile, "")
		memStats = saveHeap(dir, eAdmin, "", "&debug=1")
	}
	// Reload of one changed file among n: the node's watch reloads it.
	// With -startprofile, a CPU profile of the reload is saved beside the
	// start's (FILE.reload), through the admin API.
	profiled := make(chan struct{})
	if startProfile != "" {
		go func() {
			defer close(profiled)
			saveProfile(dir, eAdmin, 4*time.Second, startProfile+".reload")
		}()
		time.Sleep(200 * time.Millisecond) // the profile is running
	} else {
		close(profiled)
	}
	reload, reloadErr := "", error(nil)
	changed := filepath.Join(dir, "props", fmt.Sprintf("p%06d.yaml", n/2))
	if err := os.WriteFile(changed, []byte(fmt.Sprintf("hostnames: [h%d.example]\norigins: [{url: http://127.0.0.1:2}]\ntls: {certificate: c%d}\n", n/2, n/2)), 0o644); err != nil {
		reloadErr = err
	} else {
		select {
		case reload = <-reloads:
		case <-time.After(2 * time.Minute):
			reloadErr = fmt.Errorf("no reload within 2 minutes")
		}
	}
	rssReload := rssKB(cmd.Process.Pid)
	<-profiled
	cmd.Process.Signal(syscall.SIGTERM)
	exited <- <-exited // for the deferred stop
	m := <-marks
	cores := "the edge pinned to core 1"
	if startAllCores {
		cores = "the edge on every core"
	}
	kind := "first start"
	if restart {
		kind = "restart on the same data_dir and files (-restart)"
	}
	fmt.Printf("\nEdge start-up with %d properties, each with a certificate (ECDSA P-256), bbolt, %s, %s\n\n", n, cores, kind)
	if l := snapshotLine.Load(); l != nil {
		fmt.Printf("%-34s %s\n", "  the node's snapshot line", *l)
	}
	fmt.Printf("%-34s %10s\n", "first HTTPS answer after", first.Round(time.Millisecond))
	since := func(k string) string {
		if t, ok := m[k]; ok {
			return t.Sub(start).Round(time.Millisecond).String()
		}
		return "-"
	}
	// The machine is shared: the edge's CPU time tells its own cost when
	// the wall-clock time includes waiting for a core.
	fmt.Printf("%-34s %10s\n", "  edge CPU time by then", cpuFirst.Round(time.Millisecond))
	fmt.Printf("%-34s %10s\n", "  log: properties loaded at", since("properties loaded"))
	fmt.Printf("%-34s %10s\n", "  log: edge serving at", since("edge serving"))
	// The node's own start stages ("start: <stage>" log lines), in order.
	var stages []string
	for k := range m {
		if strings.HasPrefix(k, "start: ") {
			stages = append(stages, k)
		}
	}
	sort.Slice(stages, func(i, j int) bool { return m[stages[i]].Before(m[stages[j]]) })
	for _, k := range stages {
		fmt.Printf("%-34s %10s\n", "    "+k+" at", since(k))
	}
	fmt.Printf("%-34s %10s\n", "settled after", settled.Round(time.Millisecond))
	fmt.Printf("%-34s %9.1fM (%.1f KiB per property)\n", "RSS at first HTTPS answer", float64(rssFirst)/1024, float64(rssFirst)/float64(n))
	fmt.Printf("%-34s %9.1fM (%.1f KiB per property)\n", "RSS settled", float64(rssSettled)/1024, float64(rssSettled)/float64(n))
	fmt.Printf("%-34s %s anonymous, %s file-backed (bbolt's mmap, the binary)\n", "  of which", anon, file)
	if reloadErr != nil {
		fmt.Printf("%-34s %v\n", "reload of one changed file", reloadErr)
	} else {
		fmt.Printf("%-34s RSS after: %.1fM; the node's line: %s\n", "reload of one changed file", float64(rssReload)/1024, reload)
	}
	for _, l := range strings.Split(memStats, "\n") {
		for _, k := range []string{"# HeapAlloc ", "# HeapSys ", "# HeapIdle ", "# HeapReleased ", "# HeapInuse ", "# Stack", "# NextGC"} {
			if strings.HasPrefix(l, k) {
				fmt.Println("  go runtime:", strings.TrimPrefix(l, "# "))
			}
		}
	}
	return nil
}

// writeProperties writes n property files; property i uses certificate ci
// for host hi.example (localhost for 0), as writeCertificates names them.
func writeProperties(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		host := fmt.Sprintf("h%d.example", i)
		if i == 0 {
			host = "localhost"
		}
		body := fmt.Sprintf("hostnames: [%s]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: c%d}\n", host, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%06d.yaml", i)), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// httpsAnswers reports whether an HTTPS request for sni gets any answer
// (the origin is down: a 502 after a full handshake).
func httpsAnswers(port int, sni string) bool {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
		&tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", sni)
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "HTTP/1.1 ")
}

// logMarks reads the edge's JSON log and keeps when each message first
// appeared; it sends each "properties reloaded" line to reloads (dropped
// when full).
func logMarks(r io.Reader, reloads chan<- string) map[string]time.Time {
	out := map[string]time.Time{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "property snapshot read" {
			snapshotLine.Store(&[]string{sc.Text()}[0])
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "properties reloaded" {
			select {
			case reloads <- sc.Text():
			default:
			}
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg != "" {
			if _, ok := out[l.Msg]; !ok {
				out[l.Msg] = time.Now()
			}
		}
	}
	return out
}

// saveHeap fetches a heap profile (after a GC) through the admin API into
// file, or returns it when file is "".
func saveHeap(dir string, adminPort int, file, query string) string {
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "heap profile:", err)
		return ""
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?gc=1%s", adminPort, query), nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "heap profile:", err)
		return ""
	}
	defer resp.Body.Close()
	if file == "" {
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	f, err := os.Create(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "heap profile:", err)
		return ""
	}
	defer f.Close()
	io.Copy(f, resp.Body)
	return ""
}

// certificateStore writes the store of n certificates at path, or copies
// it from -fixtures, where it is kept after the first run (making 100,000
// ECDSA certificates takes tens of minutes on one core).
func certificateStore(path string, n int) error {
	if fixtures == "" {
		return writeCertificates(path, n)
	}
	kept := filepath.Join(fixtures, fmt.Sprintf("certs-%d.db", n))
	if _, err := os.Stat(kept); err != nil {
		if err := os.MkdirAll(fixtures, 0o755); err != nil {
			return err
		}
		if err := writeCertificates(kept+".tmp", n); err != nil {
			return err
		}
		if err := os.Rename(kept+".tmp", kept); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	src, err := os.Open(kept)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// lastLines keeps the last lines written to it (the edge's log, for its
// failure).
type lastLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lastLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	if len(l.lines) > 20 {
		l.lines = l.lines[len(l.lines)-20:]
	}
	return len(p), nil
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// snapshotLine is the measured start's "property snapshot read" line.
var snapshotLine atomic.Pointer[string]

// primeStart runs the edge (args) until it has answered HTTPS and written
// its property snapshot, then stops it: the start measured next is a
// restart on the same data_dir and files.
func primeStart(args []string, httpsPort, n int) error {
	fmt.Println("-restart: a first start, to write the property snapshot …")
	// A version read within a second of its file's change is not trusted
	// (nor written to the snapshot until read again later): files written
	// just now would be parsed at the restart too. An operator's files
	// are older than that.
	time.Sleep(1100 * time.Millisecond)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = os.Environ()
	if edgeEnv != "" {
		cmd.Env = append(cmd.Env, strings.Split(edgeEnv, ",")...)
	}
	logs, _ := cmd.StderrPipe()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	written := make(chan string, 1)
	tail := &lastLines{}
	go func() {
		sc := bufio.NewScanner(io.TeeReader(logs, tail))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"property snapshot written"`) {
				select {
				case written <- sc.Text():
				default:
				}
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	sni := fmt.Sprintf("h%d.example", n-1)
	for !httpsAnswers(httpsPort, sni) {
		select {
		case err := <-exited:
			return fmt.Errorf("the edge exited before its first HTTPS answer (%v); its last log lines:\n%s", err, tail.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	fmt.Printf("  first start: first HTTPS answer after %s, edge CPU time by then %s, RSS then %.1fM\n", time.Since(start).Round(time.Millisecond),
		procCPU(cmd.Process.Pid).Round(time.Millisecond), float64(rssKB(cmd.Process.Pid))/1024)
	var err error
	select {
	case l := <-written:
		fmt.Println("  its line:", l)
	case err = <-exited:
		return fmt.Errorf("the edge exited before writing its snapshot (%v):\n%s", err, tail.String())
	case <-time.After(5 * time.Minute):
		err = fmt.Errorf("no property snapshot written within 5 minutes:\n%s", tail.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	<-exited
	return err
}
