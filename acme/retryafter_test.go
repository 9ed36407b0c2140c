package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/fixture"
)

// busyCA is a real HTTPS server that serves an ACME directory and nonces,
// and answers every other request with status, its Retry-After and body.
func busyCA(t *testing.T, status int, retryAfter, contentType, body string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var posts atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Replay-Nonce", fmt.Sprintf("nonce%d", time.Now().UnixNano()))
		switch {
		case r.URL.Path == "/dir":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"newNonce":"%[1]s/nonce","newAccount":"%[1]s/account","newOrder":"%[1]s/order","revokeCert":"%[1]s/revoke","keyChange":"%[1]s/key"}`, srv.URL)
		case r.URL.Path == "/nonce":
			w.WriteHeader(http.StatusOK)
		default:
			posts.Add(1)
			w.Header().Set("Retry-After", retryAfter)
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &posts
}

func issueAgainst(t *testing.T, srv *httptest.Server) error {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	st := fixture.Bolt(t)
	c, err := New(st, Config{Directory: srv.URL + "/dir", Email: "ops@example.com", AgreeTOS: true, CARoots: roots,
		HTTPHost: "127.0.0.1", HTTPPort: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Issue(ctx, []string{"a.example"}, key, false)
	if err == nil {
		t.Fatal("issued against a CA that refuses everything")
	}
	return err
}

// TestRetryAfterHonoured: the CA's Retry-After on a 429 rate-limit problem
// and on a bare 503 (as a load balancer sends it) becomes the least wait
// before the next attempt, instead of a fixed hour.
func TestRetryAfterHonoured(t *testing.T) {
	date := time.Now().Add(3 * time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name, retryAfter, contentType, body string
		status                              int
		wantMin, wantMax                    time.Duration
		wantResult, wantDetail              string
	}{
		{"429 rateLimited, seconds", "1800", "application/problem+json",
			`{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders","status":429}`, http.StatusTooManyRequests,
			30 * time.Minute, 30 * time.Minute, "rateLimited", "rate limit"},
		{"503 from a load balancer, HTTP date", date, "text/html", "<html>busy</html>", http.StatusServiceUnavailable,
			3*time.Hour - time.Minute, 3 * time.Hour, "ca_unavailable", "temporarily unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, posts := busyCA(t, tc.status, tc.retryAfter, tc.contentType, tc.body)
			err := issueAgainst(t, srv)
			var ra *RetryAfterError
			if !errors.As(err, &ra) {
				t.Fatalf("error %v carries no Retry-After", err)
			}
			f := Describe(err, []string{"a.example"}, "")
			if f.MinWait < tc.wantMin || f.MinWait > tc.wantMax || f.Result != tc.wantResult || !strings.Contains(f.Detail, tc.wantDetail) {
				t.Errorf("Describe: %+v; want MinWait in [%s, %s], result %s, detail with %q", f, tc.wantMin, tc.wantMax, tc.wantResult, tc.wantDetail)
			}
			if posts.Load() == 0 {
				t.Error("the CA was never asked")
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, false},
		{"-3", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"99999999999", MaxRetryAfter, true},
		{now.Add(90 * time.Minute).Format(http.TimeFormat), 90 * time.Minute, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, false},
		{now.Add(30 * 24 * time.Hour).Format(http.TimeFormat), MaxRetryAfter, true},
	} {
		if got, ok := parseRetryAfter(tc.v, now); got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}
