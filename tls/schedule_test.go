package tls

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

func TestRenewAt(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	p := Policy{RenewBefore: 25 * day}
	cert := func(src string, life time.Duration, names ...string) *Certificate {
		return &Certificate{Source: src, NotBefore: now, NotAfter: now.Add(life), SubjectNames: names}
	}
	ari := now.Add(40 * day)
	for _, tc := range []struct {
		name   string
		c      *Certificate
		wanted []string
		ari    time.Time
		want   time.Time
		reason string
	}{
		{"self-signed bootstrap: now", cert(SourceSelfSigned, 365*day, "a"), []string{"a"}, time.Time{}, time.Time{}, "no CA-issued"},
		{"names differ: now", cert(SourceACME, 90*day, "a"), []string{"a", "b"}, time.Time{}, time.Time{}, "names differ"},
		{"names in another order: same", cert(SourceACME, 90*day, "b", "a"), []string{"a", "b"}, time.Time{}, now.Add(65 * day), "25d"},
		{"90-day certificate: 25 days before", cert(SourceACME, 90*day, "a"), []string{"a"}, time.Time{}, now.Add(65 * day), "25d or less"},
		{"uploaded CA certificate counts", cert(SourceUpload, 90*day, "a"), []string{"a"}, time.Time{}, now.Add(65 * day), "25d"},
		{"45-day certificate: a third (15d)", cert(SourceACME, 45*day, "a"), []string{"a"}, time.Time{}, now.Add(30 * day), "15d"},
		{"6-day certificate: half (3d)", cert(SourceACME, 6*day, "a"), []string{"a"}, time.Time{}, now.Add(3 * day), "3d"},
		{"ARI earlier wins", cert(SourceACME, 90*day, "a"), []string{"a"}, ari, ari, "ARI"},
		{"ARI later loses", cert(SourceACME, 90*day, "a"), []string{"a"}, now.Add(80 * day), now.Add(65 * day), "25d"},
	} {
		got, reason := RenewAt(tc.c, tc.wanted, tc.ari, p)
		if !got.Equal(tc.want) || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: got %s (%s), want %s (%s)", tc.name, got, reason, tc.want, tc.reason)
		}
	}
}

func TestBackoff(t *testing.T) {
	now := time.Now()
	far := now.Add(60 * 24 * time.Hour)
	for _, tc := range []struct {
		attempts int
		notAfter time.Time
		want     time.Duration
	}{
		{1, far, time.Minute}, {2, far, 10 * time.Minute}, {3, far, 100 * time.Minute}, {4, far, 24 * time.Hour}, {9, far, 24 * time.Hour},
		{4, now.Add(8 * time.Hour), 2 * time.Hour},  // expiry near: a quarter of what is left
		{2, now.Add(2 * time.Minute), time.Minute},  // never under a minute
		{3, now.Add(-time.Hour), 100 * time.Minute}, // expired: the plain schedule
	} {
		if got := Backoff(tc.attempts, tc.notAfter, now); got != tc.want {
			t.Errorf("Backoff(%d, in %s) = %s, want %s", tc.attempts, tc.notAfter.Sub(now).Round(time.Minute), got, tc.want)
		}
	}
}

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
			[]string{"could not connect to c.example on port 80"}, 0},
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
		f := describe(tc.err, []string{"a.example", "b.example"}, "edge.example")
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
	c := newCerts(t)
	s := &acmeStorage{st: c.st, now: time.Now}
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
