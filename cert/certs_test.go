package cert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/property"
	"github.com/edge-cdn/edge/store"
)

func newCerts(t testing.TB) *Certs {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return NewCerts(st)
}

func selfSigned(t testing.TB, hosts ...string) Version {
	t.Helper()
	v, err := SelfSigned(hosts, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func table(t testing.TB, files map[string]string) *property.Table {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tab, err := property.LoadDir(dir, nil, property.Options{})
	if err != nil || len(tab.Problems()) > 0 {
		t.Fatalf("properties: %v %v", err, tab.Problems())
	}
	return tab
}

func TestCertsVersions(t *testing.T) {
	ctx := context.Background()
	c := newCerts(t)
	rec := &Certificate{Name: "shop", Type: TypeServer, AutoRenew: AutoRenewNone, Status: StatusActive}
	if err := c.Create(ctx, rec, selfSigned(t, "shop.example")); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &Certificate{Name: "shop"}, selfSigned(t, "x.example")); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	for i := range 12 {
		if _, err := c.AddVersion(ctx, "shop", selfSigned(t, fmt.Sprintf("v%d.example", i+2)), nil); err != nil {
			t.Fatal(err)
		}
	}
	byID, err := c.Get(ctx, rec.ID)
	if err != nil || byID.Name != "shop" || byID.Version != 13 || byID.SubjectNames[0] != "v13.example" {
		t.Fatalf("Get by id: %+v, %v", byID, err)
	}
	vs, err := c.Versions(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != KeepVersions || vs[0].Version != 13-KeepVersions+1 || vs[len(vs)-1].Version != 13 {
		t.Errorf("kept versions %d..%d (%d), want the last %d", vs[0].Version, vs[len(vs)-1].Version, len(vs), KeepVersions)
	}
	for _, v := range vs {
		if v.KeyPEM != "" {
			t.Fatal("Versions leaks private keys")
		}
	}
	if _, err := c.Update(ctx, "shop", func(r *Certificate) error { r.AutoRenew = AutoRenewACME; r.Name = "renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Get(ctx, "shop"); r.AutoRenew != AutoRenewACME {
		t.Errorf("Update lost: %+v", r)
	}
	if err := c.Delete(ctx, "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, rec.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if vs, _ := c.Versions(ctx, rec.ID); len(vs) != 0 {
		t.Errorf("versions left after delete: %d", len(vs))
	}
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	c := newCerts(t)
	tab := table(t, map[string]string{
		"a.yaml": "hostnames: [a.example, www.a.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: shared, renew_automation: true}\n",
		"b.yaml": "hostnames: [b.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: shared}\n",
		"c.yaml": "hostnames: ['*.c.example']\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: c}\n",
		"d.yaml": "hostnames: [d.example]\norigins: [{url: http://127.0.0.1:1}]\n",
	})
	made, err := c.Bootstrap(ctx, tab)
	if err != nil || len(made) != 2 {
		t.Fatalf("Bootstrap made %d, %v; want 2", len(made), err)
	}
	shared, v, err := c.Current(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if shared.Status != StatusPending || shared.AutoRenew != AutoRenewACME || shared.Source != SourceSelfSigned {
		t.Errorf("shared: %+v", shared)
	}
	if got := strings.Join(shared.SubjectNames, ","); got != "a.example,b.example,www.a.example" {
		t.Errorf("shared names %s", got)
	}
	leaf, err := tls.X509KeyPair([]byte(v.CertPEM), []byte(v.KeyPEM))
	if err != nil || leaf.Leaf.VerifyHostname("www.a.example") != nil {
		t.Errorf("shared key pair: %v", err)
	}
	if cc, _ := c.Get(ctx, "c"); cc.Status != StatusActive || cc.AutoRenew != AutoRenewNone {
		t.Errorf("c: %+v", cc)
	}
	// Idempotent: nothing new the second time.
	if made, err := c.Bootstrap(ctx, tab); len(made) != 0 || err != nil {
		t.Errorf("second Bootstrap made %d, %v", len(made), err)
	}
}
