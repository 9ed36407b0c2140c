package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/store"
	"go.uber.org/zap"
)

// countingStore is the real bbolt store, counting read transactions.
type countingStore struct {
	*store.Bolt
	views atomic.Int64
}

func (s *countingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	s.views.Add(1)
	return s.Bolt.View(ctx, fn)
}

// TestReloadReadsStoreOnce: a property reload reads the certificates with
// one list, not a read per certificate (three, before: the property
// check, the bootstrap and the renewal schedule each read every one).
func TestReloadReadsStoreOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	props := filepath.Join(dir, "props")
	if err := os.MkdirAll(props, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		body := fmt.Sprintf("hostnames: [h%d.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: c%d, renew_automation: true}\n", i, i)
		if err := os.WriteFile(filepath.Join(props, fmt.Sprintf("p%d.yaml", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "edge.yaml")
	conf := "node: {name: n1}\nlisten: {http: \"127.0.0.1:0\", https: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\ndata_dir: ./data\nproperties_dir: ./props\n"
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, errs := config.Load(file)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	lns, err := listen(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lns.close()
	bolt, err := store.OpenBolt(filepath.Join(dir, "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Bolt: bolt}
	defer st.Close()
	nd := &node{cfg: cfg, log: zap.NewNop(), access: zap.NewNop(), store: st, reload: make(chan struct{}, 1)}
	stop, err := nd.start(ctx, lns)
	defer stop()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(nd.table.Load().Properties()); got != n {
		t.Fatalf("%d properties loaded, want %d", got, n)
	}
	before := st.views.Load()
	nd.reloadProperties(ctx)
	if reads := st.views.Load() - before; reads > 2 {
		t.Errorf("a reload of %d properties with certificates made %d store reads, want one list", n, reads)
	}
	// One file changed: one list, and a read of its certificate for the
	// renewal schedule; the last good versions are not read again.
	body := "hostnames: [h7.example, www.h7.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: c7, renew_automation: true}\n"
	if err := os.WriteFile(filepath.Join(props, "p7.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	before = st.views.Load()
	nd.reloadProperties(ctx)
	if got := nd.table.Load().ByName("p7").Hostnames; len(got) != 2 {
		t.Fatalf("p7 after the reload: hostnames %v", got)
	}
	if reads := st.views.Load() - before; reads > 2 {
		t.Errorf("a reload of one changed file among %d made %d store reads, want 2", n, reads)
	}

	// A reload that reads only the changed files' certificates still
	// refuses a certificate of type ca and bootstraps a new name.
	v, err := cert.SelfSigned([]string{"ca.example"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.certs.Create(ctx, &cert.Certificate{Name: "anchor", Type: cert.TypeCA, AutoRenew: cert.AutoRenewNone, Status: cert.StatusActive}, v); err != nil {
		t.Fatal(err)
	}
	for f, c := range map[string]string{"p8.yaml": "anchor", "p9.yaml": "fresh"} {
		body := fmt.Sprintf("hostnames: [%s.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: %s}\n", f[:2], c)
		if err := os.WriteFile(filepath.Join(props, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nd.reloadProperties(ctx)
	tab := nd.table.Load()
	if len(tab.Rejected()) != 1 || !strings.Contains(fmt.Sprint(tab.Rejected()[0].Errors), "of type ca") {
		t.Errorf("a property naming a ca certificate: rejections %v", tab.Rejected())
	}
	if _, err := nd.certs.Get(ctx, "fresh"); err != nil {
		t.Errorf("a new certificate name was not bootstrapped: %v", err)
	}
}
