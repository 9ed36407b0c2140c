package renew

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/acme"
	"github.com/edge-cdn/edge/cert"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/property"
)

// hangingARI is a real HTTPS ACME server whose renewalInfo endpoint never
// answers (until the client gives up or the test ends) and which refuses
// every order at once.
type hangingARI struct {
	srv                *httptest.Server
	inFlight, maxSeen  atomic.Int32
	ariAsked, refusals atomic.Int32
}

func startHangingARI(t *testing.T) *hangingARI {
	h := &hangingARI{}
	release := make(chan struct{})
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Replay-Nonce", fmt.Sprintf("n%d", time.Now().UnixNano()))
		switch {
		case r.URL.Path == "/dir":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"newNonce":"%[1]s/nonce","newAccount":"%[1]s/account","newOrder":"%[1]s/order","revokeCert":"%[1]s/revoke","keyChange":"%[1]s/key","renewalInfo":"%[1]s/ari"}`, h.srv.URL)
		case r.URL.Path == "/nonce":
		case strings.HasPrefix(r.URL.Path, "/ari/"):
			h.ariAsked.Add(1)
			n := h.inFlight.Add(1)
			for m := h.maxSeen.Load(); n > m && !h.maxSeen.CompareAndSwap(m, n); m = h.maxSeen.Load() {
			}
			select {
			case <-r.Context().Done():
			case <-release:
			}
			h.inFlight.Add(-1)
		default:
			h.refusals.Add(1)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"type":"urn:ietf:params:acme:error:unauthorized","detail":"refused by the test CA","status":403}`)
		}
	}))
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() { close(release) }) // runs before Close
	return h
}

// caIssued returns a version for host signed by a test CA (so it carries
// the authority key id ARI needs), valid from notBefore to notAfter.
func caIssued(t *testing.T, host string, notBefore, notAfter time.Time) cert.Version {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: notBefore, NotAfter: notAfter.Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return cert.Version{CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:       string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})),
		SubjectNames: []string{host}, Issuer: "CN=test CA", NotBefore: notBefore.UTC(), NotAfter: notAfter.UTC(), Source: cert.SourceACME}
}

// TestHangingARIDoesNotStallRenewals: with a CA whose ARI endpoint never
// answers, the loop still starts a due renewal at once, at most ARIWorkers
// ARI requests are open at a time, and Run stops promptly and waits for
// its workers.
func TestHangingARIDoesNotStallRenewals(t *testing.T) {
	ctx := context.Background()
	h := startHangingARI(t)
	st := fixture.Bolt(t)
	certs := cert.NewCerts(st)
	roots := x509.NewCertPool()
	roots.AddCert(h.srv.Certificate())
	client, err := acme.New(st, acme.Config{Directory: h.srv.URL + "/dir", Email: "ops@example.com", AgreeTOS: true,
		CARoots: roots, HTTPHost: "127.0.0.1", HTTPPort: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)

	now := time.Now()
	for i := range 6 { // not due: 60 days left; each wants an ARI answer
		host := fmt.Sprintf("h%d.example", i)
		rec := &cert.Certificate{Name: fmt.Sprintf("c%d", i), Type: cert.TypeServer, AutoRenew: cert.AutoRenewACME, Status: cert.StatusActive, CommonName: host}
		if err := certs.Create(ctx, rec, caIssued(t, host, now.Add(-30*24*time.Hour), now.Add(60*24*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	due := &cert.Certificate{Name: "due", Type: cert.TypeServer, AutoRenew: cert.AutoRenewACME, Status: cert.StatusActive, CommonName: "due.example"}
	if err := certs.Create(ctx, due, caIssued(t, "due.example", now.Add(-80*24*time.Hour), now.Add(24*time.Hour))); err != nil {
		t.Fatal(err)
	}

	r := NewRenewer(certs, client, func() *property.Table { return nil }, st, RenewerConfig{
		Policy: cert.Policy{RenewBefore: 25 * 24 * time.Hour}, ARI: true, ARIWorkers: 2})
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(rctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	testutil.WaitFor(t, "the due renewal attempted while ARI hangs", func() bool {
		c, err := certs.Get(ctx, due.ID)
		return err == nil && c.Renewal.Attempts > 0 && c.Renewal.State == cert.RenewalBackoff
	})
	testutil.WaitFor(t, "ARI requests open", func() bool { return h.inFlight.Load() == 2 })
	if h.refusals.Load() == 0 {
		t.Error("the attempt never reached the CA")
	}
	if m := h.maxSeen.Load(); m > 2 {
		t.Errorf("%d ARI requests open at once, want at most ARIWorkers (2)", m)
	}

	stopped := make(chan struct{})
	go func() { cancel(); wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop within 5s of its context ending, with ARI requests hanging")
	}
}

// TestPassBudget: a pass stops when its budget is spent; the certificates
// it did not reach stay due, and each one it did reach saw the time of its
// own turn. The clock is injected: each reading moves it a minute.
func TestPassBudget(t *testing.T) {
	ctx := context.Background()
	st := fixture.Bolt(t)
	certs := cert.NewCerts(st)
	start := time.Now()
	ids := bulkCertificates(t, st, 10, start)
	var ticks atomic.Int64
	clock := func() time.Time { return start.Add(time.Duration(ticks.Add(1)) * time.Minute) }
	r := NewRenewer(certs, nil, func() *property.Table { return nil }, st, RenewerConfig{
		Policy: cert.Policy{RenewBefore: 25 * 24 * time.Hour}, Now: clock, PassBudget: 5 * time.Minute})
	for _, id := range ids {
		r.agenda.set(id, start)
	}
	r.runDue(ctx)
	left := 0
	for _, id := range ids {
		r.agenda.mu.Lock()
		e := r.agenda.byID[id]
		r.agenda.mu.Unlock()
		if e != nil && !e.at.After(start.Add(time.Minute)) {
			left++
		}
	}
	if left == 0 || left == len(ids) {
		t.Errorf("%d of %d certificates left due after a pass over budget; want some, not all", left, len(ids))
	}
}
