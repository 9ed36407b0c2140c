package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/h1"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/internal/yamlfield"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// TestSIGUSR2WithoutHandoverIsRefused: a node that cannot take part in an
// upgrade (several nodes in one process, as in tests) logs that it ignores
// SIGUSR2 and keeps serving; Go's default action would end the process.
func TestSIGUSR2WithoutHandoverIsRefused(t *testing.T) {
	seen := make(chan os.Signal, 1)
	signal.Notify(seen, syscall.SIGUSR2)
	defer signal.Stop(seen)
	n := runTestNode(t, "", map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\n"})
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "SIGUSR2 refused", func() bool {
		return strings.Contains(n.log.String(), "SIGUSR2 ignored: binary upgrades need `edge serve` as a process of its own")
	}, n.log.String)
	resp, err := http.Get("http://" + n.addrs.Admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestStoreHandOverOneHolderAtATime: the bbolt file is let go (reads and
// writes fail with errHandedOver, not with another answer), another
// process may then open it, and the slot takes it back once that one has
// closed it, waiting for it meanwhile.
func TestStoreHandOverOneHolderAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "edge.db")
	b, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	s := newBoltSlot(b)
	defer s.Close()
	put := func(st store.Store, v string) error {
		return st.Update(ctx, func(tx store.Tx) error { return tx.Put(store.Meta, "k", []byte(v)) })
	}
	if err := put(s, "old"); err != nil {
		t.Fatal(err)
	}
	if err := s.release(); err != nil {
		t.Fatal(err)
	}
	if err := put(s, "while-away"); !errors.Is(err, errHandedOver) {
		t.Fatalf("write while handed over: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, errHandedOver) {
		t.Fatalf("ping while handed over: %v", err)
	}
	other, err := store.OpenBolt(path) // the new process
	if err != nil {
		t.Fatalf("the file is still locked after release: %v", err)
	}
	if err := put(other, "new"); err != nil {
		t.Fatal(err)
	}
	// While the other process holds it, a reopen fails (after bbolt's
	// one-second lock wait) rather than reading another state.
	if err := s.reopen(ctx, 0); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("reopen while another process holds the file: %v", err)
	}
	other.Close()
	if err := s.reopen(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := s.View(ctx, func(tx store.Tx) error {
		v, err := tx.Get(store.Meta, "k")
		got = string(v)
		return err
	}); err != nil || got != "new" {
		t.Fatalf("after reopening: %q %v", got, err)
	}
}

// TestUpgradeDrainAnswersRequestOfConnectionAcceptedBeforeStop: a
// connection accepted before the old process of an upgrade stops
// accepting, whose request arrives after, is answered. Server.Shutdown
// alone closes it unanswered (it drops a request read once shutdown has
// begun), which clients see as a failed request: the new process never
// got that connection.
func TestUpgradeDrainAnswersRequestOfConnectionAcceptedBeforeStop(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "answered")
	})
	for _, srv := range []server{
		&http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: h},
		&h1.Server{ReadHeaderTimeout: 10 * time.Second, Handler: h},
	} {
		t.Run(fmt.Sprintf("%T", srv), func(t *testing.T) { testDrainAnswers(t, srv) })
	}
}

func testDrainAnswers(t *testing.T, srv server) {
	n := &node{cfg: &config.Config{}, log: zap.NewNop(), drain: newDrainer()}
	n.cfg.Limits.ShutdownTimeout = yamlfield.Duration(10 * time.Second)
	n.drain.watch(srv)
	var lns [3]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	go srv.Serve(lns[0])
	c, err := net.Dial("tcp", lns[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testutil.WaitFor(t, "the connection accepted", func() bool { return n.drain.http1() == 1 }, func() string { return "" })
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.shutdown(context.Background(), []server{srv}, &listeners{http: lns[0], https: lns[1], admin: lns[2]}, nil, false)
	}()
	testutil.WaitFor(t, "the listener closed", func() bool {
		c2, err := net.Dial("tcp", lns[0].Addr().String())
		if err == nil {
			c2.Close()
		}
		return err != nil
	}, func() string { return "" })
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the request of a connection accepted before the stop was not answered: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "answered" || !resp.Close {
		t.Errorf("%d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	<-done
}

// TestStartStagesLoggedAndExported: a start says in the log how long each
// stage took (a slow start says where it is slow), and /metrics has
// edge_start_seconds by stage.
func TestStartStagesLoggedAndExported(t *testing.T) {
	t.Parallel()
	n := runTestNode(t, "", map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: a}\n"})
	log := n.log.String()
	for _, stage := range []string{"listeners", "store", "certificates", "events and ACME", "cache", "properties", "purges replayed", "ready"} {
		if !strings.Contains(log, `"msg":"start: `+stage+`"`) {
			t.Errorf("the log has no start stage %q:\n%s", stage, log)
		}
	}
	if !strings.Contains(log, `"properties":1,"took":`) {
		t.Errorf("the properties stage does not say how many and how long:\n%s", log)
	}
	resp, err := http.Get("http://" + n.addrs.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, stage := range []string{"certificates", "properties", "ready", "total"} {
		if !strings.Contains(string(body), `edge_start_seconds{stage="`+stage+`"}`) {
			t.Errorf("/metrics has no edge_start_seconds for %s", stage)
		}
	}
}

// TestReadyzAnswersDuringStart: while a node starts, its admin port
// answers /healthz (200) and /readyz (503, with the stages done) instead
// of leaving probes unanswered in the kernel's queue; once ready, the
// admin API answers on the same socket.
func TestReadyzAnswersDuringStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "props"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "node: {name: n1}\nlisten: {http: \"127.0.0.1:0\", https: \"127.0.0.1:0\", admin: \"" + admin + "\"}\ndata_dir: ./data\nproperties_dir: ./props\n"
	if err := os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, errs := config.Load(filepath.Join(dir, "edge.yaml"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	atStore, release := make(chan struct{}), make(chan struct{})
	ctx := context.WithValue(context.Background(), stageHookKey{}, func(stage string) {
		if stage == "store" {
			close(atStore)
			<-release
		}
	})
	ready := make(chan Addrs, 1)
	ctx, cancel := context.WithCancel(WithReady(ctx, func(a Addrs) { ready <- a }))
	log := &testutil.SyncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, Options{Stderr: log, Version: "test"}) }()
	defer func() { cancel(); <-done }()
	select {
	case <-atStore:
	case err := <-done:
		t.Fatalf("Run: %v\n%s", err, log)
	}
	get := func(path string) (int, string) {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + admin + path)
		if err != nil {
			t.Fatalf("GET %s during the start: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz during the start: %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "stages done: listeners, store") {
		t.Errorf("/readyz during the start: %d %s", code, body)
	}
	if code, body := get("/api/v1/certificates"); code != 503 || !strings.Contains(body, `"starting"`) {
		t.Errorf("the API during the start: %d %s", code, body)
	}
	close(release)
	<-ready
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz once ready: %d %s", code, body)
	}
}
