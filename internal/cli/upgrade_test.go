package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/node"
	"github.com/edge-cdn/edge/internal/testutil"
)

// upgradeEnv names the config of the node TestHelperProcessUpgradableNode runs.
const upgradeEnv = "UPGRADE_NODE_CONFIG_FOR_TEST"

// generationMark ends a binary installed by installBinary, followed by its
// generation: the node reports it as its version, so the test tells which
// binary a process runs.
const generationMark = "\nEDGE-TEST-GENERATION="

// TestHelperProcessUpgradableNode is not a test of its own: run from a copy
// of the test binary installed at a path, it is `edge serve` as main runs
// it (one node, own process: SIGUSR2 upgrades it to the binary then at that
// path). Without upgradeEnv it does nothing.
func TestHelperProcessUpgradableNode(t *testing.T) {
	config := os.Getenv(upgradeEnv)
	if config == "" {
		return
	}
	version = "unmarked"
	if b, err := os.ReadFile("/proc/self/exe"); err == nil {
		if i := bytes.LastIndex(b, []byte(generationMark)); i >= 0 {
			version = "gen-" + strings.TrimSpace(string(b[i+len(generationMark):]))
		}
	}
	ownProcess = true
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, []string{"serve", "--config", config}, io.Discard, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "node:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// installBinary puts a copy of the test binary, marked with gen, at path
// the way a package upgrade does: a new file renamed over the old one.
func installBinary(t *testing.T, path string, gen int) {
	t.Helper()
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndex(src, []byte(generationMark)); i >= 0 && len(src)-i < 64 {
		src = src[:i] // the test binary itself is unmarked; be safe anyway
	}
	installFile(t, path, append(src, []byte(generationMark+strconv.Itoa(gen)+"\n")...))
}

func installFile(t *testing.T, path string, body []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, body, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// freePorts returns n loopback ports free a moment ago: an upgrade hands
// over sockets by address, so the node's config names fixed ports.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

// notifySocket is a systemd notification socket of the test's own: it
// keeps what the node processes send (READY=1, MAINPID=...).
type notifySocket struct {
	path string
	conn *net.UnixConn
	msgs chan string
	done chan struct{}
}

func newNotifySocket(t *testing.T, dir string) *notifySocket {
	t.Helper()
	s := &notifySocket{path: filepath.Join(dir, "notify.sock"), msgs: make(chan string, 100), done: make(chan struct{})}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s.conn = conn
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			select {
			case s.msgs <- string(buf[:n]):
			default:
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

// waitReady returns the MAINPID of the next READY=1 that names one, failing
// the test after limit.
func (s *notifySocket) waitMainPID(t *testing.T, limit time.Duration, log func() string) int {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case m := <-s.msgs:
			if !strings.Contains(m, "READY=1") {
				continue
			}
			for _, line := range strings.Split(m, "\n") {
				if v, ok := strings.CutPrefix(line, "MAINPID="); ok {
					pid, _ := strconv.Atoi(v)
					return pid
				}
			}
			return 0 // the first process: systemd knows its PID
		case <-deadline:
			t.Fatalf("no READY=1 within %v\n%s", limit, log())
			return 0
		}
	}
}

// processGone reports whether pid has exited (gone, or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// blockingListeners returns the listening sockets on ports that process
// pid holds in blocking mode: a listener handed over must stay
// non-blocking (os.File.Fd, as os/exec's ExtraFiles uses, turns the shared
// file description blocking, and the old process's Accept then holds a
// thread and ignores Close).
func blockingListeners(t *testing.T, pid int, addrs ...string) []string {
	t.Helper()
	tcp, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]string{} // socket inode → address
	for _, a := range addrs {
		_, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		local := fmt.Sprintf("0100007F:%04X", p)
		for _, line := range strings.Split(string(tcp), "\n") {
			f := strings.Fields(line)
			if len(f) > 9 && f[1] == local && f[3] == "0A" {
				inodes[f[9]] = a
			}
		}
	}
	if len(inodes) != len(addrs) {
		t.Fatalf("listening sockets %v not all found: %v", addrs, inodes)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var blocking []string
	found := 0
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		inode, ok := strings.CutPrefix(link, "socket:[")
		addr := inodes[strings.TrimSuffix(inode, "]")]
		if !ok || addr == "" {
			continue
		}
		found++
		info, _ := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				flags, _ := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
				if flags&syscall.O_NONBLOCK == 0 {
					blocking = append(blocking, fmt.Sprintf("%s (fd %s)", addr, fd.Name()))
				}
			}
		}
	}
	if found < len(addrs) {
		t.Fatalf("process %d holds %d of the listening sockets %v", pid, found, addrs)
	}
	return blocking
}

// upgradableNode is a node run from a binary at a path, as systemd runs it.
type upgradableNode struct {
	*testNode
	bin    string
	notify *notifySocket
	first  *exec.Cmd
	pid    int // the process serving now
	logf   string
}

func (u *upgradableNode) log() string {
	b, _ := os.ReadFile(u.logf)
	return string(b)
}

// startUpgradable installs generation 1 at dir/bin/edge and starts it with
// a property a.example (HTTP and HTTPS) proxied to origin.
func startUpgradable(t *testing.T, originURL, extra string) *upgradableNode {
	t.Helper()
	dir := t.TempDir()
	ports := freePorts(t, 3)
	conf := fmt.Sprintf("node: {name: upgrade-node}\nlisten: {http: %q, https: %q, admin: %q}\ndata_dir: ./data\nproperties_dir: ./props\nlog: {level: info, format: json, access: false}\n%s",
		ports[0], ports[1], ports[2], extra)
	writeFiles(t, dir, map[string]string{
		"edge.yaml":    conf,
		"props/a.yaml": fmt.Sprintf("hostnames: [a.example]\norigins: [{url: %s}]\ntls: {certificate: a}\n", originURL),
	})
	u := &upgradableNode{
		testNode: &testNode{t: t, dir: dir, props: filepath.Join(dir, "props"), addrs: node.Addrs{HTTP: ports[0], HTTPS: ports[1], Admin: ports[2]}},
		bin:      filepath.Join(dir, "bin", "edge"),
		notify:   newNotifySocket(t, dir),
		logf:     filepath.Join(dir, "node.log"),
	}
	if err := os.MkdirAll(filepath.Dir(u.bin), 0o755); err != nil {
		t.Fatal(err)
	}
	installBinary(t, u.bin, 1)
	logFile, err := os.Create(u.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	u.first = exec.Command(u.bin, "-test.run=^TestHelperProcessUpgradableNode$")
	u.first.Env = append(os.Environ(), upgradeEnv+"="+filepath.Join(dir, "edge.yaml"), "NOTIFY_SOCKET="+u.notify.path)
	u.first.Dir = dir
	u.first.Stdout, u.first.Stderr = logFile, logFile
	if err := u.first.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = u.first.Wait(); close(reaped) }()
	u.pid = u.first.Process.Pid
	t.Cleanup(func() {
		// Stop whichever process serves now, and the first if it is
		// still there; a process that does not stop in time is killed.
		for _, pid := range []int{u.pid, u.first.Process.Pid} {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !processGone(u.pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		_ = syscall.Kill(u.pid, syscall.SIGKILL)
		_ = u.first.Process.Kill()
		<-reaped
	})
	if pid := u.notify.waitMainPID(t, 20*time.Second, u.log); pid != 0 {
		t.Fatalf("the first process announced MAINPID=%d", pid)
	}
	return u
}

// upgrade runs `edge upgrade` and returns its error and output.
func (u *upgradableNode) upgrade() (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"upgrade", "--config", filepath.Join(u.dir, "edge.yaml")}, &out, &out)
	return out.String(), err
}

// load sends constant traffic to a node until stopped: keep-alive
// HTTP/1.1, a new connection per HTTP/1.1 request, a new TLS connection
// per HTTPS request, and one long-lived HTTP/2 connection's requests.
type load struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	ok      atomic.Int64
	failed  atomic.Int64
	refused atomic.Int64
	mu      sync.Mutex
	errs    []string
}

func startLoad(t *testing.T, n *testNode, pace time.Duration) *load {
	l := &load{stop: make(chan struct{})}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		target := n.addrs.HTTP
		if strings.HasSuffix(addr, ":443") {
			target = n.addrs.HTTPS
		}
		return (&net.Dialer{}).DialContext(ctx, network, target)
	}
	tlsConf := &tls.Config{InsecureSkipVerify: true}
	h1 := func(keepAlive bool) *http.Transport {
		tr := &http.Transport{DialContext: dial, TLSClientConfig: tlsConf.Clone(), DisableKeepAlives: !keepAlive}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
		return tr
	}
	h2 := &http.Transport{DialContext: dial, TLSClientConfig: tlsConf.Clone(), ForceAttemptHTTP2: true}
	workers := []struct {
		name, url string
		rt        http.RoundTripper
		proto     int
	}{
		{"http/1.1 keep-alive", "http://a.example/", h1(true), 1},
		{"http/1.1 new connection", "http://a.example/", h1(false), 1},
		{"https new connection", "https://a.example/", h1(false), 1},
		{"http/2", "https://a.example/", h2, 2},
	}
	for _, w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Transport: w.rt, Timeout: 10 * time.Second}
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				resp, err := c.Get(w.url)
				if err == nil {
					body, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case rerr != nil:
						err = rerr
					case resp.StatusCode != 200 || !strings.HasPrefix(string(body), "o a.example"):
						err = fmt.Errorf("%d %q", resp.StatusCode, body)
					case resp.ProtoMajor != w.proto:
						err = fmt.Errorf("answered over %s", resp.Proto)
					}
				}
				if err == nil {
					l.ok.Add(1)
					continue
				}
				l.failed.Add(1)
				if errors.Is(err, syscall.ECONNREFUSED) {
					l.refused.Add(1)
				}
				l.mu.Lock()
				if len(l.errs) < 10 {
					l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+w.name+": "+err.Error())
				}
				l.mu.Unlock()
			}
		}()
		t.Cleanup(w.rt.(*http.Transport).CloseIdleConnections)
	}
	return l
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// TestUpgradeUnderLoadDropsNothing: a node run from a binary at a path is
// upgraded three times in a row (SIGUSR2 through `edge upgrade`), a new
// binary installed at the path before each, under constant HTTP/1.1,
// HTTPS and HTTP/2 load. Not one request fails and not one connection is
// refused; each new process runs the binary then at the path (not a copy
// of the old one), announces itself to systemd with MAINPID, and each old
// one exits; the store, locked by one process at a time, follows.
func TestUpgradeUnderLoadDropsNothing(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	u := startUpgradable(t, o.URL, "limits: {shutdown_timeout: 5s}\n")
	l := startLoad(t, u.testNode, 10*time.Millisecond)
	waitServed := func(min int64) {
		testutil.WaitFor(t, "requests served", func() bool { return l.ok.Load() >= min }, u.log)
	}
	waitServed(20)
	for gen := 2; gen <= 4; gen++ {
		old := u.pid
		installBinary(t, u.bin, gen)
		out, err := u.upgrade()
		if err != nil {
			t.Fatalf("upgrade to generation %d: %v\n%s\n%s", gen, err, out, u.log())
		}
		pid := u.notify.waitMainPID(t, 20*time.Second, u.log)
		if pid == 0 || pid == old {
			t.Fatalf("generation %d announced MAINPID=%d (old %d)", gen, pid, old)
		}
		u.pid = pid
		if !strings.Contains(out, fmt.Sprintf("upgraded: pid %d serves", pid)) {
			t.Errorf("edge upgrade said %q", out)
		}
		// The new process runs the file now at the path.
		exe, err1 := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
		bin, err2 := os.Stat(u.bin)
		if err1 != nil || err2 != nil || !os.SameFile(exe, bin) {
			t.Fatalf("generation %d: process %d does not run the binary at %s (%v %v)", gen, pid, u.bin, err1, err2)
		}
		if b := blockingListeners(t, pid, u.addrs.HTTP, u.addrs.HTTPS, u.addrs.Admin); len(b) > 0 {
			t.Errorf("generation %d holds listeners in blocking mode: %v", gen, b)
		}
		testutil.WaitFor(t, "the new process's version in the log", func() bool {
			return strings.Contains(u.log(), fmt.Sprintf(`"version":"gen-%d"`, gen))
		}, u.log)
		testutil.WaitFor(t, "the old process to exit", func() bool { return processGone(old) }, u.log)
		waitServed(l.ok.Load() + 20) // the new one serves
	}
	// An admin write reaches the store the last process holds.
	if code, body := u.api("POST", "/api/v1/certificates", map[string]any{"name": "b", "self_signed": true, "hostnames": []string{"b.example"}}); code != 201 {
		t.Errorf("admin write after the upgrades: %d %v", code, body)
	}
	l.finish()
	t.Logf("%d requests served, %d failed, %d refused", l.ok.Load(), l.failed.Load(), l.refused.Load())
	if l.failed.Load() != 0 || l.refused.Load() != 0 {
		t.Fatalf("%d requests failed (%d connections refused) across three upgrades: %v\n%s", l.failed.Load(), l.refused.Load(), l.errs, u.log())
	}
}

// TestUpgradeToBrokenBinaryKeepsServing: the binary at the path crashes at
// start, then hangs without ever saying ready. Each time the running node
// keeps serving (no request fails), says why in its log, `edge upgrade`
// reports the failure, and the node takes its store back: admin requests
// that need it answer 503 "upgrading" while the new binary has it, and
// work again after.
func TestUpgradeToBrokenBinaryKeepsServing(t *testing.T) {
	t.Parallel()
	o := namedOrigin(t, "o")
	u := startUpgradable(t, o.URL, "limits: {upgrade_timeout: 3s}\n")
	l := startLoad(t, u.testNode, 20*time.Millisecond)
	testutil.WaitFor(t, "requests served", func() bool { return l.ok.Load() >= 10 }, u.log)

	installFile(t, u.bin, []byte("#!/bin/sh\necho broken binary >&2\nexit 3\n"))
	out, err := u.upgrade()
	if err == nil || !strings.Contains(err.Error(), "the new binary failed") {
		t.Fatalf("edge upgrade to a crashing binary: %v\n%s\n%s", err, out, u.log())
	}
	if log := u.log(); !strings.Contains(log, "the new process failed; this process keeps serving") || !strings.Contains(log, "exit status 3") {
		t.Errorf("the log does not say why the upgrade failed:\n%s", log)
	}
	if code, body := u.api("GET", "/api/v1/certificates", nil); code != 200 {
		t.Errorf("admin read after the failed upgrade: %d %v", code, body)
	}

	// A binary that never says ready holds the window open until
	// limits.upgrade_timeout: admin requests that need the store get 503.
	hangPID := filepath.Join(u.dir, "hang.pid")
	installFile(t, u.bin, []byte("#!/bin/sh\necho $$ > "+hangPID+"\nexec sleep 60\n"))
	result := make(chan error, 1)
	go func() { _, err := u.upgrade(); result <- err }()
	saw503 := false
	testutil.WaitFor(t, "a 503 from the admin API during the hand-over", func() bool {
		code, body := u.api("GET", "/api/v1/certificates", nil)
		if code == 503 && errMsg(body) != "" {
			saw503 = strings.HasPrefix(errMsg(body), "upgrading")
		}
		return saw503
	}, u.log)
	if code, _ := u.api("GET", "/api/v1/properties", nil); code != 200 {
		t.Errorf("properties (in memory) during the hand-over: %d", code)
	}
	if err := <-result; err == nil {
		t.Fatalf("edge upgrade to a hanging binary succeeded\n%s", u.log())
	}
	if !strings.Contains(u.log(), "timed out") {
		t.Errorf("the log does not say the new process timed out:\n%s", u.log())
	}
	hung := func() int {
		b, _ := os.ReadFile(hangPID)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	if pid := hung(); pid == 0 || !processGone(pid) {
		t.Errorf("the new process that timed out (pid %d) was not killed", pid)
	}
	if code, body := u.api("POST", "/api/v1/certificates", map[string]any{"name": "b", "self_signed": true, "hostnames": []string{"b.example"}}); code != 201 {
		t.Errorf("admin write after the failed upgrades: %d %v", code, body)
	}
	if processGone(u.pid) {
		t.Fatal("the node exited")
	}
	l.finish()
	if l.failed.Load() != 0 {
		t.Fatalf("%d requests failed: %v", l.failed.Load(), l.errs)
	}

	// SIGTERM while a new process starts: the node stops at once, and
	// the new process goes with it.
	os.Remove(hangPID)
	if err := syscall.Kill(u.pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the hanging binary started", func() bool { return hung() != 0 }, u.log)
	if err := syscall.Kill(u.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the node to stop during the upgrade", func() bool { return processGone(u.pid) }, u.log)
	testutil.WaitFor(t, "the new process to be killed", func() bool { return processGone(hung()) }, u.log)
}
