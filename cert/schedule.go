package cert

import (
	"fmt"
	"slices"
	"time"
)

// Policy is the node's renewal policy (SPEC §6).
type Policy struct {
	RenewBefore time.Duration // renew with this much validity left (25d)
}

// RenewAt returns when c is due for renewal and why, as pure arithmetic:
//   - no CA-issued certificate yet, or names that differ from wanted: due
//     now (the zero time);
//   - otherwise NotAfter less RenewBefore, or less a third of the lifetime
//     (half below 10 days) when that is less, so short-lived certificates
//     renew in time;
//   - ariAt, the moment chosen inside the CA's ARI window, when earlier.
func RenewAt(c *Certificate, wanted []string, ariAt time.Time, p Policy) (time.Time, string) {
	if c.Source != SourceACME && c.Source != SourceUpload {
		return time.Time{}, "no CA-issued certificate yet"
	}
	if !sameNames(c.SubjectNames, wanted) {
		return time.Time{}, "the wanted names differ from the certificate's"
	}
	before := RenewWindow(c, p)
	at := c.NotAfter.Add(-before)
	reason := fmt.Sprintf("%s or less of validity left", RoundDuration(before))
	if !ariAt.IsZero() && ariAt.Before(at) {
		// ariAt may be months away: say when, not that the window is open.
		return ariAt, "the CA's renewal window (ARI): a moment chosen inside it"
	}
	return at, reason
}

// RenewWindow is how much validity c has left when it is due for renewal:
// RenewBefore, or a third of its lifetime (half below 10 days) when that
// is less.
func RenewWindow(c *Certificate, p Policy) time.Duration {
	before := p.RenewBefore
	life := c.NotAfter.Sub(c.NotBefore)
	share := life / 3
	if life < 10*24*time.Hour {
		share = life / 2
	}
	if share < before {
		before = share
	}
	return before
}

// ExpiryWarning is when, before c's expiry, certificate.expiring is
// announced: warning (notify.expiry_warning) is meant for certificates
// whose renewal window is the full RenewBefore, and shrinks with a
// shorter window in the same proportion, so a certificate of 6 days
// (renewed with 3 days left) is not announced as expiring as soon as it is
// issued: with the defaults (7d of 25d) it is announced with 20h left,
// when its renewal is overdue by two days.
func ExpiryWarning(c *Certificate, p Policy, warning time.Duration) time.Duration {
	window := RenewWindow(c, p)
	if p.RenewBefore <= 0 || window >= p.RenewBefore {
		return warning
	}
	return time.Duration(float64(warning) * float64(window) / float64(p.RenewBefore))
}

// sameNames compares name sets, ignoring order.
func sameNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// Backoff returns how long to wait after the attempts-th failure in a row:
// about 1m, 10m, 100m, then daily; never more than a quarter of the
// validity left (a minute at least), so a certificate close to expiry is
// retried often; and once it has expired never more than ExpiredBackoff:
// the daily step is for certificates that still serve, not for an outage.
// A CA's Retry-After, when longer, is applied on top (acme.Failure.MinWait).
func Backoff(attempts int, notAfter, now time.Time) time.Duration {
	var d time.Duration
	switch {
	case attempts <= 1:
		d = time.Minute
	case attempts == 2:
		d = 10 * time.Minute
	case attempts == 3:
		d = 100 * time.Minute
	default:
		d = 24 * time.Hour
	}
	switch left := notAfter.Sub(now); {
	case left <= 0:
		d = min(d, ExpiredBackoff)
	case d > left/4:
		d = max(left/4, time.Minute)
	}
	return d
}

// ExpiredBackoff is the longest wait between attempts for an expired
// certificate: within Let's Encrypt's failed-validation limit (5 an hour
// per name), yet an expired name is retried several times a day.
const ExpiredBackoff = 100 * time.Minute

// RoundDuration writes d, to the second, in days when it is a whole number
// of them (half of Pebble's 6-day lifetime, a second short, is "3d").
func RoundDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.Round(time.Second).String()
}
