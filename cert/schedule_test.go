package cert

import (
	"strings"
	"testing"
	"time"
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
		{1, now.Add(-time.Hour), time.Minute},       // expired: first retries quick
		{4, now.Add(-time.Hour), ExpiredBackoff},    // expired: never daily
		{9, now.Add(-30 * 24 * time.Hour), ExpiredBackoff},
		{4, now, ExpiredBackoff}, // expiring this instant
	} {
		if got := Backoff(tc.attempts, tc.notAfter, now); got != tc.want {
			t.Errorf("Backoff(%d, in %s) = %s, want %s", tc.attempts, tc.notAfter.Sub(now).Round(time.Minute), got, tc.want)
		}
	}
}
