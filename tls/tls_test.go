package tls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/property"
)

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
	c := fixture.Certs(t)
	m := NewManager(c, nil)
	tab := fixture.Table(t, map[string]string{
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
	if _, err := c.AddVersion(ctx, "shop", fixture.SelfSigned(t, "renewed.shop.example"), nil); err != nil {
		t.Fatal(err)
	}
	after, err := handshake(addr, "shop.example")
	if err != nil || after.Subject.CommonName != "renewed.shop.example" || after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Errorf("after swap: got %v (%v), want the new version", after.Subject, err)
	}
	// A version that does not parse leaves the previous one serving.
	bad := fixture.SelfSigned(t, "broken.example")
	bad.KeyPEM = fixture.SelfSigned(t, "other.example").KeyPEM
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
	c := fixture.Certs(t)
	m := NewManager(c, nil)
	tab := fixture.Table(t, map[string]string{"s.yaml": "hostnames: [s.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: s}\n"})
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
	v := fixture.SelfSigned(b, "bench.example")
	kp, err := tls.X509KeyPair([]byte(v.CertPEM), []byte(v.KeyPEM))
	if err != nil {
		b.Fatal(err)
	}
	m := NewManager(fixture.Certs(b), nil)
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
	e := &entry{id: name, name: name}
	e.cert.Store(c)
	return e
}

func TestRefreshSkipsRecordOnlyWrites(t *testing.T) {
	ctx := context.Background()
	c := fixture.Certs(t)
	m := NewManager(c, nil)
	rec := &cert.Certificate{Name: "s", Type: cert.TypeServer, AutoRenew: cert.AutoRenewNone, Status: cert.StatusActive}
	if err := c.Create(ctx, rec, fixture.SelfSigned(t, "s.example")); err != nil {
		t.Fatal(err)
	}
	before := m.snap.Load().byID[rec.ID]
	if before == nil || m.Certificate("s") == nil {
		t.Fatal("created certificate not served")
	}
	// A record-only write (what the renewal loop writes most): same entry.
	if _, err := c.Update(ctx, "s", func(r *cert.Certificate) error { r.StatusDetail = "x"; return nil }); err != nil {
		t.Fatal(err)
	}
	if m.snap.Load().byID[rec.ID] != before {
		t.Error("a record-only write rebuilt the served entry")
	}
	// A new version replaces it.
	if _, err := c.AddVersion(ctx, "s", fixture.SelfSigned(t, "new.s.example"), nil); err != nil {
		t.Fatal(err)
	}
	if e := m.snap.Load().byID[rec.ID]; e == before || e.version != 2 || m.Certificate("s").Leaf.Subject.CommonName != "new.s.example" {
		t.Errorf("new version not served: %+v", e)
	}
}
