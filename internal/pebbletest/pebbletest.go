// Package pebbletest runs Let's Encrypt's Pebble ACME server inside a test
// process, with a tiny DNS server that resolves test names to loopback, so
// that tests exercise real ACME (accounts, orders, HTTP-01 validation,
// issuance, ARI) with no network. Pebble's constructors change between
// releases: this file is the only user of them (Pebble v2.10.1).
package pebbletest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// Options configure a Pebble.
type Options struct {
	// HTTPPort is the port Pebble's VA connects to for HTTP-01: the edge's
	// HTTP port.
	HTTPPort int
	// Validity of issued certificates; 0: 90 days.
	Validity time.Duration
	// NonceRejectPercent is the share of good nonces refused as bad
	// (Pebble's default is 5; the helper's is 0 unless set).
	NonceRejectPercent int
	// Log, if set, receives Pebble's log.
	Log io.Writer
}

// Pebble is a running ACME server and DNS server.
type Pebble struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// CARootsFile is a PEM file trusting the ACME server's own HTTPS
	// certificate (for acme.ca_roots).
	CARootsFile string
	// DNS is the DNS server's host:port (for acme.resolver).
	DNS string

	ca        *ca.CAImpl
	badNonces atomic.Int64
	mu        sync.Mutex
	hosts     map[string]string // name → IPv4; "" answers NXDOMAIN
}

// Start runs Pebble and its DNS server until the test ends.
func Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	p := &Pebble{hosts: map[string]string{}}
	p.DNS = p.startDNS(t)

	validity := opts.Validity
	if validity == 0 {
		validity = 90 * 24 * time.Hour
	}
	out := opts.Log
	if out == nil {
		out = io.Discard
	}
	logger := log.New(out, "pebble ", log.LstdFlags)
	store := db.NewMemoryStore()
	// One profile only: with several and none requested, Pebble picks one
	// at random.
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: uint64(validity.Seconds())}}
	p.ca = ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	var w wfe.WebFrontEndImpl
	// Pebble reads these environment variables when its parts are built.
	// They are set for the build alone, under a lock, so that tests
	// running Pebbles in parallel (t.Parallel forbids t.Setenv) each get
	// their own settings.
	withEnv(map[string]string{
		"PEBBLE_VA_NOSLEEP":      "1",
		"PEBBLE_WFE_NONCEREJECT": strconv.Itoa(opts.NonceRejectPercent),
		"PEBBLE_AUTHZREUSE":      "0",
	}, func() {
		v := va.New(logger, opts.HTTPPort, 0, false, p.DNS, store)
		// No Retry-After on authorizations and orders being processed
		// (Pebble's command sets 3 s and 5 s): the client then polls at its
		// own pace (acmez: 250 ms), and an issuance takes a fraction of a
		// second instead of eight.
		w = wfe.New(logger, store, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	})
	mux := http.NewServeMux()
	mux.Handle("/", p.countBadNonces(w.Handler()))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	p.DirectoryURL = srv.URL + "/dir"
	p.CARootsFile = filepath.Join(t.TempDir(), "pebble-https.pem")
	if err := os.WriteFile(p.CARootsFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// envMu serialises the environment Pebble's constructors read.
var envMu sync.Mutex

// withEnv runs build with env set, then restores the environment.
func withEnv(env map[string]string, build func()) {
	envMu.Lock()
	defer envMu.Unlock()
	for k, v := range env {
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	build()
}

// BadNonces is how many requests Pebble refused with a badNonce problem
// (NonceRejectPercent refuses good nonces too).
func (p *Pebble) BadNonces() int { return int(p.badNonces.Load()) }

func (p *Pebble) countBadNonces(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&nonceWatch{ResponseWriter: w, p: p}, r)
	})
}

// nonceWatch counts the responses whose problem document is badNonce.
type nonceWatch struct {
	http.ResponseWriter
	p    *Pebble
	seen bool
}

func (w *nonceWatch) Write(b []byte) (int, error) {
	if !w.seen {
		w.seen = true
		if bytes.Contains(b, []byte("urn:ietf:params:acme:error:badNonce")) {
			w.p.badNonces.Add(1)
		}
	}
	return w.ResponseWriter.Write(b)
}

// Root returns the root that issued certificates chain to.
func (p *Pebble) Root() *x509.Certificate { return p.ca.GetRootCert(0).Cert }

// SetHost makes the DNS server answer name with ip ("" answers NXDOMAIN).
// Names never set resolve to 127.0.0.1.
func (p *Pebble) SetHost(name, ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hosts[dns.Fqdn(name)] = ip
}

func (p *Pebble) lookup(fqdn string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ip, ok := p.hosts[fqdn]
	if !ok {
		return "127.0.0.1", true
	}
	return ip, ip != ""
}

// startDNS serves A records on UDP and TCP of one loopback port. Pebble's
// VA asks over TCP, AAAA first: it gets no AAAA record, then the A record.
func (p *Pebble) startDNS(t testing.TB) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		for _, q := range req.Question {
			ip, ok := p.lookup(q.Name)
			if !ok {
				m.Rcode = dns.RcodeNameError
				continue
			}
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
					A: net.ParseIP(ip).To4()})
			}
		}
		_ = w.WriteMsg(m)
	})
	for range 20 {
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		udp, err := net.ListenPacket("udp", tcp.Addr().String())
		if err != nil {
			tcp.Close()
			continue // the UDP port is taken: try another
		}
		ts := &dns.Server{Listener: tcp, Handler: handler}
		us := &dns.Server{PacketConn: udp, Handler: handler}
		go ts.ActivateAndServe()
		go us.ActivateAndServe()
		t.Cleanup(func() { ts.Shutdown(); us.Shutdown() })
		return tcp.Addr().String()
	}
	t.Fatal("no loopback port free on both UDP and TCP for the test DNS server")
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// listener that Pebble must know before the edge starts (testutil.FreePort:
// below Linux's ephemeral range, handed out once per process).
func FreePort(t testing.TB) int { return testutil.FreePort(t) }
