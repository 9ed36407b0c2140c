package proxy

import (
	"errors"
	"net"
	"net/http"
	"sync/atomic"
)

// maxAttempts bounds the origins one request may try.
const maxAttempts = 3

// attemptError is a failed attempt, classified for the retry policy.
type attemptError struct {
	err     error
	dial    bool // the origin was never reached: nothing was sent
	timeout bool // the request was sent; no response head came in time
}

func (e *attemptError) Error() string { return e.err.Error() }
func (e *attemptError) Unwrap() error { return e.err }

// classify wraps an exchange's error for mayRetry.
func classify(err error, x *exchange) error {
	return &attemptError{err: err, timeout: isTimeout(err) && x.bodySentOrNone()}
}

// classifyTransport classifies an http.Transport error.
func classifyTransport(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &attemptError{err: err, dial: true}
	}
	return &attemptError{err: err, timeout: isTimeout(err)}
}

func (x *exchange) bodySentOrNone() bool { return !x.hasBody || x.bodySent }

// mayRetry reports whether a failed attempt may go to another origin:
//   - a dial error (the request never reached an origin), any method:
//     its body, if any, was not read;
//   - a response-header timeout, once per request, for an idempotent
//     request without a body: the origin may still be working on it, so
//     a second slow origin ends the request (at most two timeouts, not
//     three);
//   - nothing else: a reset or a malformed response is answered 502, as
//     retrying would multiply the load on a struggling pool;
//
// and every retry takes a token from the site's retry budget.
func (st *site) mayRetry(r *http.Request, req *request, err error, timeoutRetried *bool) bool {
	var ae *attemptError
	if !errors.As(err, &ae) {
		return false
	}
	switch {
	case ae.dial:
		if !bodyUntouched(req) {
			return false
		}
	case ae.timeout && !*timeoutRetried && idempotent(r.Method) && !hasBody(r):
		*timeoutRetried = true
	default:
		return false
	}
	if !st.budget.withdraw() {
		st.s.log.Debug("retry budget exhausted; not retrying")
		return false
	}
	return true
}

// retryBudget is a token bucket that bounds retries to a share of the
// requests (as Finagle's and Envoy's retry budgets): each request adds
// budgetPerRequest, each retry takes budgetPerRetry, the bucket holds at
// most budgetCap. Under a failure storm a site sends at most about 1.2
// times its request rate to its origins, plus a burst of budgetCap/1000
// retries. In thousandths of a retry.
type retryBudget struct{ milli atomic.Int64 }

const (
	budgetPerRequest = 200 // 20 %
	budgetPerRetry   = 1000
	budgetCap        = 10 * budgetPerRetry
)

func newRetryBudget() *retryBudget {
	b := &retryBudget{}
	b.milli.Store(budgetCap)
	return b
}

// deposit credits one request. A full bucket is only read: no write
// contention in the steady state.
func (b *retryBudget) deposit() {
	if b.milli.Load() < budgetCap {
		if b.milli.Add(budgetPerRequest) > budgetCap {
			b.milli.Store(budgetCap)
		}
	}
}

// withdraw takes one retry's tokens, or reports false when there are not
// enough.
func (b *retryBudget) withdraw() bool {
	for {
		v := b.milli.Load()
		if v < budgetPerRetry {
			return false
		}
		if b.milli.CompareAndSwap(v, v-budgetPerRetry) {
			return true
		}
	}
}
