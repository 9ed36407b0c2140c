package acme

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// MaxRetryAfter caps a CA's Retry-After, against a wrong or hostile value:
// Let's Encrypt's longest rate-limit window is a week.
const MaxRetryAfter = 7 * 24 * time.Hour

// RetryAfterError is an issuance or ARI error during which the CA answered
// 429 (rate limited) or 503 (unavailable, as Let's Encrypt's load balancers
// answer under load) with a Retry-After: After is how long it asked to
// wait. acmez keeps the problem document but not the header, so the
// client's transport reads it (see retryTransport).
type RetryAfterError struct {
	Err    error
	Status int           // the HTTP status that carried Retry-After
	After  time.Duration // how long the CA asked to wait, capped at MaxRetryAfter
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (HTTP %d, Retry-After %s)", e.Err, e.Status, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// retryNote collects the Retry-After answers of one operation (an order, an
// ARI request): the transport finds it in the request's context.
type retryNote struct {
	mu     sync.Mutex
	status int
	after  time.Duration
}

type retryNoteKey struct{}

func withRetryNote(ctx context.Context) (context.Context, *retryNote) {
	n := &retryNote{}
	return context.WithValue(ctx, retryNoteKey{}, n), n
}

// wrap returns err as a *RetryAfterError when the CA asked to wait during
// the operation, else err itself.
func (n *retryNote) wrap(err error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil || n.after <= 0 {
		return err
	}
	return &RetryAfterError{Err: err, Status: n.status, After: n.after}
}

// note keeps the longest wait asked for.
func (n *retryNote) note(status int, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d > n.after {
		n.status, n.after = status, d
	}
}

// retryTransport notes the Retry-After of 429 and 503 answers into the
// request context's retryNote.
type retryTransport struct {
	next http.RoundTripper
	now  func() time.Time
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return resp, err
	}
	if n, ok := req.Context().Value(retryNoteKey{}).(*retryNote); ok {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), t.now()); ok {
			n.note(resp.StatusCode, d)
		}
	}
	return resp, err
}

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): seconds or
// an HTTP date. A date in the past or a zero wait is no wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s > int64(MaxRetryAfter/time.Second) {
			s = int64(MaxRetryAfter / time.Second)
		}
		d = time.Duration(s) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	} else {
		return 0, false
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, MaxRetryAfter), true
}

// hookTransport puts a retryTransport under the HTTP client of iss.
// certmagic builds that client in NewACMEIssuer and does not export it; it
// is reached by reflection. If a certmagic upgrade renames the field this
// returns false and rate limits fall back to the fixed wait (the tests of
// this package then fail, which is the point).
func hookTransport(iss *certmagic.ACMEIssuer, now func() time.Time) bool {
	f := reflect.ValueOf(iss).Elem().FieldByName("httpClient")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*http.Client]() || f.IsNil() {
		return false
	}
	hc := (*http.Client)(f.UnsafePointer())
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = &retryTransport{next: next, now: now}
	return true
}
