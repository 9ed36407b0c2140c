package acme

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/store"
	"github.com/mholt/acmez/v3/acme"
)

// countingStore is the real bbolt store, counting the transactions run on
// it.
type countingStore struct {
	*store.Bolt
	views atomic.Int64
}

func (c *countingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	c.views.Add(1)
	return c.Bolt.View(ctx, fn)
}

// challengeServer serves ServeChallenge on a real socket, as the node's
// HTTP port does, answering 404 when it declines.
func challengeServer(t *testing.T, a *Client) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		if !a.ServeChallenge(w, r, r.Host, tok) {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func fetchChallenge(t *testing.T, base, host, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/.well-known/acme-challenge/"+token, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func storeToken(t *testing.T, a *Client, host, token string) string {
	t.Helper()
	chal := acme.Challenge{Type: acme.ChallengeTypeHTTP01, Token: token, KeyAuthorization: token + ".thumbprint",
		Identifier: acme.Identifier{Type: "dns", Value: host}}
	b, _ := json.Marshal(chal)
	key := path.Join("acme", certmagic.StorageKeys.Safe(a.issuer.IssuerKey()), "challenge_tokens", certmagic.StorageKeys.Safe(host)+".json")
	if err := a.storage.Store(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
	return key
}

// TestUnknownHostsCostNoStoreRead: challenge requests for hosts with no
// order pending, and wrong tokens for a pending host, are refused without
// a store transaction, however many; the pending token is answered;
// lookups for a property's host are rate-bounded.
func TestUnknownHostsCostNoStoreRead(t *testing.T) {
	st := &countingStore{Bolt: fixture.Bolt(t)}
	a, err := New(st, Config{Directory: "https://ca.test/dir", AgreeTOS: true, HTTPHost: "127.0.0.1", HTTPPort: 1,
		KnownHost: func(h string) bool { return h == "prop.example" }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	base := challengeServer(t, a)
	storeToken(t, a, "pending.example", "tok-pending")
	before := st.views.Load()
	for i := range 200 {
		host := "random" + string(rune('a'+i%26)) + ".example"
		if code, _ := fetchChallenge(t, base, host, "Zm9vYmFy"+string(rune('a'+i%26))); code != 404 {
			t.Fatalf("unknown host %s: %d, want 404", host, code)
		}
	}
	if n := st.views.Load() - before; n != 0 {
		t.Errorf("200 challenge requests for unknown hosts cost %d store reads, want 0", n)
	}
	if code, body := fetchChallenge(t, base, "pending.example", "tok-pending"); code != 200 || body != "tok-pending.thumbprint" {
		t.Errorf("pending host: %d %q", code, body)
	}
	before = st.views.Load()
	for range 100 {
		if code, _ := fetchChallenge(t, base, "pending.example", "nope"); code != 404 {
			t.Fatalf("a wrong token for a pending host: %d, want 404", code)
		}
	}
	if n := st.views.Load() - before; n != 0 {
		t.Errorf("100 wrong tokens for a pending host cost %d store reads, want 0", n)
	}
	// Random tokens for a property's host: at most the bucket's burst (and
	// what refills meanwhile) reach the store.
	before = st.views.Load()
	for range lookupBurst * 3 {
		fetchChallenge(t, base, "prop.example", "nope")
	}
	if n := st.views.Load() - before; n == 0 || n > 2*(lookupBurst+lookupRate*5) {
		t.Errorf("%d lookups for a property host cost %d store reads, want some, bounded near %d", lookupBurst*3, n, 2*lookupBurst)
	}
}

// TestPendingFollowsTheFleet: a token stored by another node sharing the
// store is known after the watch's Refresh (or a Rescan), and forgotten
// when that node deletes it.
func TestPendingFollowsTheFleet(t *testing.T) {
	st := fixture.Bolt(t)
	cfg := Config{Directory: "https://ca.test/dir", AgreeTOS: true, HTTPHost: "127.0.0.1", HTTPPort: 1}
	nodeA, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nodeA.Close()
	nodeB, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nodeB.Close()
	base := challengeServer(t, nodeB)
	key := storeToken(t, nodeA, "fleet.example", "tok-fleet")
	if code, _ := fetchChallenge(t, base, "fleet.example", "tok-fleet"); code != 404 {
		t.Fatalf("before the watch told node B: %d, want 404", code)
	}
	if err := nodeB.Refresh(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if code, body := fetchChallenge(t, base, "fleet.example", "tok-fleet"); code != 200 || body != "tok-fleet.thumbprint" {
		t.Fatalf("after Refresh: %d %q", code, body)
	}
	if err := nodeA.storage.Delete(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if err := nodeB.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if nodeB.pending.hasName("fleet.example") {
		t.Error("a deleted token is still pending after Rescan")
	}
	// Probes stored by another node are answered from memory once known.
	tok, answer, err := nodeA.newProbe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := nodeB.Refresh(context.Background(), probeKey(tok)); err != nil {
		t.Fatal(err)
	}
	if code, body := fetchChallenge(t, base, "any.example", tok); code != 200 || body != answer {
		t.Errorf("probe from another node: %d %q", code, body)
	}
}

// TestPropertyHostsReadTheStore: for a host a property serves, a probe
// another node stored a moment ago (its watch event not yet here) is
// answered from the store; other hosts still cost no read.
func TestPropertyHostsReadTheStore(t *testing.T) {
	st := &countingStore{Bolt: fixture.Bolt(t)}
	cfg := Config{Directory: "https://ca.test/dir", AgreeTOS: true, HTTPHost: "127.0.0.1", HTTPPort: 1}
	nodeA, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nodeA.Close()
	cfg.KnownHost = func(h string) bool { return h == "prop.example" }
	nodeB, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nodeB.Close()
	base := challengeServer(t, nodeB)
	tok, answer, err := nodeA.newProbe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if code, body := fetchChallenge(t, base, "prop.example", tok); code != 200 || body != answer {
		t.Errorf("probe for a property host: %d %q", code, body)
	}
	before := st.views.Load()
	if code, _ := fetchChallenge(t, base, "other.example", tok); code != 404 {
		t.Errorf("probe for a host no property serves, before the watch: %d, want 404", code)
	}
	if n := st.views.Load() - before; n != 0 {
		t.Errorf("%d store reads for an unknown host", n)
	}
}
