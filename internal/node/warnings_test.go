package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/internal/etcdtest"
	"github.com/edge-cdn/edge/internal/testutil"
)

// TestStartWarnsOfExposures: a node on a plain-HTTP etcd endpoint with an
// admin token file other users may read says so at start, at warn level.
func TestStartWarnsOfExposures(t *testing.T) {
	e := etcdtest.Start(t)
	tokenDir := t.TempDir()
	token := filepath.Join(tokenDir, "admin.token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := runTestNode(t, fmt.Sprintf("store: {backend: etcd, etcd: {endpoints: [%s]}}\nadmin: {token_file: %s}\n", e.Endpoint, token), nil)
	testutil.WaitFor(t, "the warnings", func() bool {
		l := n.log.String()
		return strings.Contains(l, `"level":"warn"`) &&
			strings.Contains(l, "INSECURE: store.etcd endpoint "+e.Endpoint+" is plain HTTP") &&
			strings.Contains(l, "INSECURE: admin.token_file "+token+" has mode -rw-r--r--")
	})
	if strings.Contains(n.log.String(), "INSECURE: the admin API") {
		t.Error("a loopback admin listener was reported")
	}
}

func TestExposures(t *testing.T) {
	cfg := &config.Config{}
	cfg.Store.Backend = "etcd"
	cfg.Store.Etcd.Endpoints = []string{"https://etcd.internal:2379", "http://etcd.internal:2379", "etcd.internal:2379"}
	cfg.Admin.TokenFile = filepath.Join(t.TempDir(), "missing")
	got := exposures(cfg, &net.TCPAddr{IP: net.IPv4zero, Port: 9180})
	want := []string{"http://etcd.internal:2379 is plain HTTP", "endpoint etcd.internal:2379 is plain HTTP", "admin API listens on 0.0.0.0:9180"}
	if len(got) != len(want) {
		t.Fatalf("exposures %q, want %d", got, len(want))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("exposure %d: %q lacks %q", i, got[i], w)
		}
	}
	if got := exposures(cfg, &net.TCPAddr{IP: net.IPv6loopback, Port: 9180}); len(got) != 2 {
		t.Errorf("loopback admin reported: %q", got)
	}
}
