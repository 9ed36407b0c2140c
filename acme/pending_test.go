package acme

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/edge-cdn/edge/store"
	"github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
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

// TestJunkHostsCannotStarveChallenges: a flood of challenge requests
// for hosts no property serves (random Host values from the internet)
// costs a bounded number of store reads, and does not use up the budget
// of a property's host: a token another node stored a moment ago for
// that host (not yet in this node's memory) is still answered, and so is
// the pending token. The refusals do not flood the log either.
func TestJunkHostsCannotStarveChallenges(t *testing.T) {
	st := &countingStore{Bolt: fixture.Bolt(t)}
	cfg := Config{Directory: "https://ca.test/dir", AgreeTOS: true, HTTPHost: "127.0.0.1", HTTPPort: 1}
	other, err := New(st, cfg) // the node that places the orders
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cfg.KnownHost = func(h string) bool { return h == "prop.example" }
	core, logs := observer.New(zap.WarnLevel)
	cfg.Logger = zap.New(core)
	a, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	base := challengeServer(t, a)
	storeToken(t, a, "pending.example", "tok-pending")
	const junk = 200
	before, start := st.views.Load(), time.Now()
	for i := range junk {
		host := fmt.Sprintf("random%d.example", i)
		if code, _ := fetchChallenge(t, base, host, fmt.Sprintf("Zm9vYmFy%d", i)); code != 404 {
			t.Fatalf("junk host %s: %d, want 404", host, code)
		}
	}
	// Each lookup is at most two reads (probe, then challenge).
	allowed := unknownLookupBurst + int(unknownLookupRate*time.Since(start).Seconds()) + 1
	if n := st.views.Load() - before; n == 0 || n > int64(2*allowed) {
		t.Errorf("%d challenge requests for junk hosts cost %d store reads, want some, at most %d", junk, n, 2*allowed)
	}
	// The junk used up its own budget, not the property hosts'.
	storeToken(t, other, "prop.example", "tok-prop")
	if code, body := fetchChallenge(t, base, "prop.example", "tok-prop"); code != 200 || body != "tok-prop.thumbprint" {
		t.Errorf("a property host's token stored by another node, after the junk: %d %q", code, body)
	}
	if code, body := fetchChallenge(t, base, "pending.example", "tok-pending"); code != 200 || body != "tok-pending.thumbprint" {
		t.Errorf("pending host: %d %q", code, body)
	}
	// Random tokens for a property's host: at most the bucket's burst (and
	// what refills meanwhile) reach the store.
	before, start = st.views.Load(), time.Now()
	for range lookupBurst * 3 {
		fetchChallenge(t, base, "prop.example", "nope")
	}
	allowed = lookupBurst + int(lookupRate*time.Since(start).Seconds()) + 1
	if n := st.views.Load() - before; n == 0 || n > int64(2*allowed) {
		t.Errorf("%d lookups for a property host cost %d store reads, want some, at most %d", lookupBurst*3, n, 2*allowed)
	}
	if n := logs.FilterMessageSnippet("over their rate").Len(); n != 1 {
		t.Errorf("%d log lines for the refused lookups, want 1", n)
	}
}

// TestPendingFollowsTheFleet: a token stored by another node sharing the
// store is answered at once, from the store (its write is the fence), and
// known in memory after the watch's Refresh (or a Rescan); it is forgotten
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
	if code, body := fetchChallenge(t, base, "fleet.example", "tok-fleet"); code != 200 || body != "tok-fleet.thumbprint" {
		t.Fatalf("before the watch told node B: %d %q, want the token from the store", code, body)
	}
	if nodeB.pending.hasName("fleet.example") {
		t.Fatal("known in memory before the watch told node B")
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

// TestEveryNameReadsTheStoreOnAMiss: a probe or challenge token another
// node stored a moment ago (its watch event not yet here) is answered from
// the store, for a host a property serves and for a name none serves (a
// certificate requested through the API): the other node's store write
// returned before it asked the CA to validate, so the store has it.
func TestEveryNameReadsTheStoreOnAMiss(t *testing.T) {
	st := fixture.Bolt(t)
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
	for _, host := range []string{"prop.example", "other.example"} {
		if code, body := fetchChallenge(t, base, host, tok); code != 200 || body != answer {
			t.Errorf("probe for %s: %d %q", host, code, body)
		}
	}
	storeToken(t, nodeA, "api-only.example", "tok-api")
	if code, body := fetchChallenge(t, base, "api-only.example", "tok-api"); code != 200 || body != "tok-api.thumbprint" {
		t.Errorf("a token for a name no property serves: %d %q", code, body)
	}
	if code, _ := fetchChallenge(t, base, "elsewhere.example", "tok-api"); code != 404 {
		t.Errorf("the token for another host: %d, want 404", code)
	}
	// A new token for a host this node knows pending with an older one.
	storeToken(t, nodeB, "renewed.example", "tok-old")
	storeToken(t, nodeA, "renewed.example", "tok-new")
	if code, body := fetchChallenge(t, base, "renewed.example", "tok-new"); code != 200 || body != "tok-new.thumbprint" {
		t.Errorf("a newer token than the one in memory: %d %q", code, body)
	}
}
