package acme

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/mholt/acmez/v3/acme"
)

// TestChallengeAnsweredFromTheStore: a token that another node stored
// (and this process never saw) is answered, for any hostname; malformed
// tokens and unknown ones are not.
func TestChallengeAnsweredFromTheStore(t *testing.T) {
	a, err := New(fixture.Bolt(t), Config{Directory: "https://ca.test/dir", AgreeTOS: true, HTTPHost: "127.0.0.1", HTTPPort: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	chal := acme.Challenge{Type: acme.ChallengeTypeHTTP01, Token: "tok-from-node-b_123", KeyAuthorization: "tok-from-node-b_123.thumbprint",
		Identifier: acme.Identifier{Type: "dns", Value: "other-node.example"}}
	b, _ := json.Marshal(chal)
	key := path.Join("acme", certmagic.StorageKeys.Safe(a.issuer.IssuerKey()), "challenge_tokens", certmagic.StorageKeys.Safe("other-node.example")+".json")
	if err := a.storage.Store(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, token string
		want        bool
	}{
		{"other-node.example", "tok-from-node-b_123", true},
		{"other-node.example", "unknown-token", false},
		{"another.example", "tok-from-node-b_123", false}, // the token is bound to its name
		{"other-node.example", "bad/../token", false},
		{"other-node.example", "", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://"+tc.host+"/.well-known/acme-challenge/"+tc.token, nil)
		w := httptest.NewRecorder()
		got := a.ServeChallenge(w, r, tc.host, tc.token)
		if got != tc.want || (got && w.Body.String() != chal.KeyAuthorization) {
			t.Errorf("%s %q: served %v (%q), want %v", tc.host, tc.token, got, w.Body.String(), tc.want)
		}
	}
	// Probe tokens too, from the store.
	tok, answer, err := a.newProbe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if !a.ServeChallenge(w, httptest.NewRequest("GET", "http://x.example/.well-known/acme-challenge/"+tok, nil), "x.example", tok) || w.Body.String() != answer {
		t.Errorf("probe not answered: %q", w.Body.String())
	}
}
