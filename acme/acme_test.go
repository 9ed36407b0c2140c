package acme

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/fixture"
	"github.com/mholt/acmez/v3/acme"
)

func TestDescribe(t *testing.T) {
	authz := func(name string) acme.Authorization {
		return acme.Authorization{Identifier: acme.Identifier{Type: "dns", Value: name}}
	}
	wrap := func(p acme.Problem) error { return fmt.Errorf("solving challenges: %w", p) }
	for _, tc := range []struct {
		name string
		err  error
		want []string
		wait time.Duration
	}{
		{"unauthorized names the identifier", wrap(acme.Problem{Type: acme.ProblemTypeUnauthorized, Detail: "404", Resource: authz("b.example")}),
			[]string{"reached b.example", "point to edge.example", "(CA: 404)"}, 0},
		{"connection", wrap(acme.Problem{Type: acme.ProblemTypeConnection, Resource: &[]acme.Authorization{authz("c.example")}[0]}),
			[]string{"could not reach c.example on port 80", "resolve in public DNS", "so a.example, b.example were not checked"}, 0},
		{"dns from subproblems", wrap(acme.Problem{Type: acme.ProblemTypeCompound, Subproblems: []acme.Subproblem{
			{Problem: acme.Problem{Type: acme.ProblemTypeDNS}, Identifier: acme.Identifier{Value: "d.example"}}}}),
			[]string{"refused the order for d.example"}, 0},
		{"dns", wrap(acme.Problem{Type: acme.ProblemTypeDNS, Resource: authz("d.example")}), []string{"could not resolve d.example"}, 0},
		{"caa", wrap(acme.Problem{Type: acme.ProblemTypeCAA, Resource: authz("e.example")}), []string{"CAA record of e.example", "letsencrypt.org"}, 0},
		{"rate limited waits", wrap(acme.Problem{Type: acme.ProblemTypeRateLimited}), []string{"rate limit", "a.example, b.example"}, time.Hour},
		{"rejected identifier", wrap(acme.Problem{Type: acme.ProblemTypeRejectedIdentifier, Resource: authz("f.example")}), []string{"will not issue for f.example"}, 0},
		{"not an ACME problem", errors.New("boom"), []string{"the certificate order failed: boom"}, 0},
		{"timeout", context.DeadlineExceeded, []string{"in time"}, 0},
	} {
		f := Describe(tc.err, []string{"a.example", "b.example"}, "edge.example")
		for _, w := range tc.want {
			if !strings.Contains(f.Detail, w) {
				t.Errorf("%s: %q lacks %q", tc.name, f.Detail, w)
			}
		}
		if f.MinWait != tc.wait {
			t.Errorf("%s: MinWait %s, want %s", tc.name, f.MinWait, tc.wait)
		}
	}
}

func TestACMEStorageContract(t *testing.T) {
	ctx := context.Background()
	s := &acmeStorage{st: fixture.Bolt(t), now: time.Now}
	for _, k := range []string{"acme/ca/users/a/key", "acme/ca/users/a/reg.json", "acme/ca/users/b/key", "acme/ca/challenge_tokens/x.json"} {
		if err := s.Store(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := s.Load(ctx, "acme/ca/users/a/key"); err != nil || string(v) != "acme/ca/users/a/key" {
		t.Errorf("Load: %q %v", v, err)
	}
	if _, err := s.Load(ctx, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load missing: %v", err)
	}
	if l, err := s.List(ctx, "acme/ca", false); err != nil || fmt.Sprint(l) != "[acme/ca/challenge_tokens acme/ca/users]" {
		t.Errorf("List non-recursive: %v %v", l, err)
	}
	if l, _ := s.List(ctx, "acme/ca/users", true); len(l) != 3 {
		t.Errorf("List recursive: %v", l)
	}
	if _, err := s.List(ctx, "nothing", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List missing: %v", err)
	}
	if ki, err := s.Stat(ctx, "acme/ca/users/a/key"); err != nil || !ki.IsTerminal || ki.Size != int64(len("acme/ca/users/a/key")) || time.Since(ki.Modified) > time.Minute {
		t.Errorf("Stat key: %+v %v", ki, err)
	}
	if ki, err := s.Stat(ctx, "acme/ca/users"); err != nil || ki.IsTerminal {
		t.Errorf("Stat directory: %+v %v", ki, err)
	}
	if _, err := s.Stat(ctx, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat missing: %v", err)
	}
	if err := s.Delete(ctx, "acme/ca/users"); err != nil || s.Exists(ctx, "acme/ca/users/b/key") || !s.Exists(ctx, "acme/ca/challenge_tokens/x.json") {
		t.Errorf("Delete directory: %v", err)
	}
	if err := s.Delete(ctx, "missing"); err != nil {
		t.Errorf("Delete missing: %v", err)
	}
	// Locks: exclusive, and waiting honours the context.
	if err := s.Lock(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := s.Lock(short, "l"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Lock: %v, want the context's deadline", err)
	}
	s.Unlock(ctx, "l")
	if err := s.Lock(ctx, "l"); err != nil {
		t.Errorf("Lock after Unlock: %v", err)
	}
}
