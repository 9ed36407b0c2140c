package tls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
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

// serveTLS runs a TLS listener with m's config that completes handshakes.
func serveTLS(t *testing.T, m *Manager) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Read(make([]byte, 1))
			}()
		}
	}()
	return ln.Addr().String()
}

// handshake returns the leaf the server presents for sni.
func handshake(addr, sni string) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestHandshakeChoiceAndSwap(t *testing.T) {
	ctx := context.Background()
	c := newCerts(t)
	m := NewManager(c, nil)
	tab := table(t, map[string]string{
		"shop.yaml":  "hostnames: [shop.example, '*.shop.example']\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: shop}\n",
		"api.yaml":   "hostnames: [api.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: api}\n",
		"plain.yaml": "hostnames: [plain.example]\norigins: [{url: http://127.0.0.1:1}]\n",
	})
	if _, err := c.Bootstrap(ctx, tab); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	m.SetProperties(tab)
	addr := serveTLS(t, m)

	for _, tc := range []struct{ sni, wantCN string }{
		{"shop.example", "shop.example"},
		{"SHOP.example.", "shop.example"},
		{"cdn.shop.example", "shop.example"},
		{"api.example", "api.example"},
		{"a.b.shop.example", ""},
		{"plain.example", ""},
		{"unknown.example", ""},
		{"", ""},
	} {
		leaf, err := handshake(addr, tc.sni)
		if tc.wantCN == "" {
			if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
				t.Errorf("SNI %q: %v, want the unrecognized_name alert", tc.sni, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("SNI %q: %v", tc.sni, err)
			continue
		}
		if leaf.Subject.CommonName != tc.wantCN {
			t.Errorf("SNI %q: got certificate %q, want %q", tc.sni, leaf.Subject.CommonName, tc.wantCN)
		}
	}

	// A new version is served by the next handshake, with no restart.
	before, _ := handshake(addr, "shop.example")
	if _, err := c.AddVersion(ctx, "shop", selfSigned(t, "renewed.shop.example"), nil); err != nil {
		t.Fatal(err)
	}
	after, err := handshake(addr, "shop.example")
	if err != nil || after.Subject.CommonName != "renewed.shop.example" || after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Errorf("after swap: got %v (%v), want the new version", after.Subject, err)
	}
	// A version that does not parse leaves the previous one serving.
	bad := selfSigned(t, "broken.example")
	bad.KeyPEM = selfSigned(t, "other.example").KeyPEM
	if _, err := c.AddVersion(ctx, "shop", bad, nil); err != nil {
		t.Fatal(err)
	}
	if leaf, err := handshake(addr, "shop.example"); err != nil || leaf.Subject.CommonName != "renewed.shop.example" {
		t.Errorf("after a bad version: %v, %v; want the previous version still served", leaf.Subject, err)
	}
	// Deleted: the name is no longer served.
	if err := c.Delete(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(addr, "api.example"); err == nil {
		t.Error("deleted certificate still served")
	}
}

func TestServerConfigProtocols(t *testing.T) {
	ctx := context.Background()
	c := newCerts(t)
	m := NewManager(c, nil)
	tab := table(t, map[string]string{"s.yaml": "hostnames: [s.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: s}\n"})
	_, _ = c.Bootstrap(ctx, tab)
	_ = m.Load(ctx)
	m.SetProperties(tab)
	addr := serveTLS(t, m)
	for _, tc := range []struct {
		name string
		conf *tls.Config
		ok   bool
	}{
		{"TLS 1.1 refused", &tls.Config{MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2 CBC refused", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
	} {
		tc.conf.ServerName, tc.conf.InsecureSkipVerify = "s.example", true
		conn, err := tls.Dial("tcp", addr, tc.conf)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err == nil {
			conn.Close()
		}
	}
}

// BenchmarkGetCertificate measures the per-handshake choice with n
// certificates, each for one property hostname.
func BenchmarkGetCertificate(b *testing.B) {
	for _, n := range []int{1, 10_000, 100_000} {
		b.Run(fmt.Sprintf("certs=%d", n), func(b *testing.B) {
			m := benchManager(b, n)
			hellos := []*tls.ClientHelloInfo{
				{ServerName: "host0.example"}, {ServerName: fmt.Sprintf("host%d.example", n/2)},
				{ServerName: fmt.Sprintf("host%d.example", n-1)}, {ServerName: "a.wild.example"},
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if c, _ := m.GetCertificate(hellos[i&3]); c == nil {
					b.Fatal("no certificate")
				}
			}
		})
	}
}

// benchManager builds a Manager whose snapshot holds n certificates sharing
// one parsed key pair (parsing 100k keys would measure the setup, not the
// lookup), and a property table mapping host<i>.example to cert<i>.
func benchManager(b testing.TB, n int) *Manager {
	v := selfSigned(b, "bench.example")
	kp, err := tls.X509KeyPair([]byte(v.CertPEM), []byte(v.KeyPEM))
	if err != nil {
		b.Fatal(err)
	}
	m := NewManager(newCerts(b), nil)
	s := &snapshot{byName: make(map[string]*entry, n+1), byID: map[string]*entry{}}
	files := make([]property.Loaded, 0, n+1)
	for i := range n {
		name := fmt.Sprintf("cert%d", i)
		s.byName[name] = parsed(name, &kp)
		p := &property.Property{Name: fmt.Sprintf("p%d", i), File: fmt.Sprintf("p%d.yaml", i),
			Hostnames: []string{fmt.Sprintf("host%d.example", i)}, TLS: property.TLS{Certificate: name}}
		files = append(files, property.Loaded{File: p.File, Property: p})
	}
	s.byName["wild"] = parsed("wild", &kp)
	files = append(files, property.Loaded{File: "wild.yaml", Property: &property.Property{Name: "wild", File: "wild.yaml",
		Hostnames: []string{"*.wild.example"}, TLS: property.TLS{Certificate: "wild"}}})
	m.snap.Store(s)
	m.SetProperties(property.Build(files, nil, property.Options{}))
	return m
}

func TestGetCertificateDoesNotAllocate(t *testing.T) {
	m := benchManager(t, 10)
	hello := &tls.ClientHelloInfo{ServerName: "host3.example"}
	if n := testing.AllocsPerRun(100, func() { _, _ = m.GetCertificate(hello) }); n != 0 {
		t.Errorf("GetCertificate allocated %v times, want 0", n)
	}
}

func parsed(name string, c *tls.Certificate) *entry {
	e := &entry{id: name, name: name, cert: c}
	e.once.Do(func() {})
	return e
}

func TestRefreshSkipsRecordOnlyWrites(t *testing.T) {
	ctx := context.Background()
	c := newCerts(t)
	m := NewManager(c, nil)
	rec := &Certificate{Name: "s", Type: TypeServer, AutoRenew: AutoRenewNone, Status: StatusActive}
	if err := c.Create(ctx, rec, selfSigned(t, "s.example")); err != nil {
		t.Fatal(err)
	}
	before := m.snap.Load().byID[rec.ID]
	if before == nil || m.Certificate("s") == nil {
		t.Fatal("created certificate not served")
	}
	// A record-only write (what the renewal loop writes most): same entry.
	if _, err := c.Update(ctx, "s", func(r *Certificate) error { r.StatusDetail = "x"; return nil }); err != nil {
		t.Fatal(err)
	}
	if m.snap.Load().byID[rec.ID] != before {
		t.Error("a record-only write rebuilt the served entry")
	}
	// A new version replaces it.
	if _, err := c.AddVersion(ctx, "s", selfSigned(t, "new.s.example"), nil); err != nil {
		t.Fatal(err)
	}
	if e := m.snap.Load().byID[rec.ID]; e == before || e.version != 2 || m.Certificate("s").Leaf.Subject.CommonName != "new.s.example" {
		t.Errorf("new version not served: %+v", e)
	}
}
