package acme

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

// Failure is why an attempt failed, for people: Detail is the sentence for
// status_detail; MinWait, when set, is the least time before the next
// attempt (rate limits).
type Failure struct {
	Detail  string
	MinWait time.Duration
	Result  string // for metrics: the problem kind
}

// Describe turns an issuance error into a sentence a person can act on. It
// classifies by the ACME problem type and the identifiers it names, never by
// the CA's wording, which it only appends. When the CA answered with a
// Retry-After (a *RetryAfterError), that wait is MinWait; a rate limit
// without one waits an hour.
func Describe(err error, names []string, edgeHostname string) Failure {
	f := describe(err, names, edgeHostname)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > 0 {
		f.MinWait = ra.After
		if ra.Status == http.StatusServiceUnavailable && f.Result == "error" {
			f.Result = "ca_unavailable"
			f.Detail = fmt.Sprintf("the CA is temporarily unavailable (HTTP 503): %v", ra.Err)
		}
		f.Detail += fmt.Sprintf("; the CA asked to wait %s before retrying", ra.After.Round(time.Second))
	}
	return f
}

func describe(err error, names []string, edgeHostname string) Failure {
	target := "this edge"
	if edgeHostname != "" {
		target = edgeHostname
	}
	var p acme.Problem
	if !errors.As(err, &p) {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return Failure{Detail: "the CA did not finish the order in time; Edge will retry", Result: "timeout"}
		case isNetError(err):
			return Failure{Detail: fmt.Sprintf("cannot reach the ACME server: %v; check acme.directory and this node's outbound network", err), Result: "ca_unreachable"}
		}
		return Failure{Detail: fmt.Sprintf("the certificate order failed: %v", err), Result: "error"}
	}
	ids := problemIdentifiers(p)
	if len(ids) == 0 {
		ids = names
	}
	who := strings.Join(ids, ", ")
	kind := strings.TrimPrefix(p.Type, acme.ProblemTypeNamespace)
	f := Failure{Result: kind}
	switch p.Type {
	case acme.ProblemTypeUnauthorized, acme.ProblemTypeIncorrectResponse:
		f.Detail = fmt.Sprintf("the CA reached %s but did not get this edge's HTTP-01 answer: verify that these hostnames point to %s (CNAME) and that nothing in front of the edge answers /.well-known/acme-challenge/ itself", who, target)
	case acme.ProblemTypeDNS:
		f.Detail = fmt.Sprintf("the CA could not resolve %s: verify that these hostnames have DNS records pointing to %s", who, target)
	case acme.ProblemTypeConnection:
		// CAs report a name that does not resolve as a connection problem
		// too (Pebble does), so the sentence covers both.
		f.Detail = fmt.Sprintf("the CA could not reach %s on port 80: verify that these hostnames resolve in public DNS (a CNAME to %s) and that port 80 is open to the internet", who, target)
	case acme.ProblemTypeCAA:
		f.Detail = fmt.Sprintf("a CAA record of %s does not allow Let's Encrypt: add `0 issue \"letsencrypt.org\"` to its DNS or remove the CAA record", who)
	case acme.ProblemTypeRateLimited:
		f.Detail = fmt.Sprintf("the CA's rate limit was reached for %s; Edge waits before retrying (no action needed unless this repeats)", who)
		f.MinWait = time.Hour
	case acme.ProblemTypeRejectedIdentifier, acme.ProblemTypeUnsupportedIdentifier:
		f.Detail = fmt.Sprintf("the CA will not issue for %s (policy or blocklist): remove these hostnames from the certificate", who)
	case acme.ProblemTypeTLS:
		f.Detail = fmt.Sprintf("the CA hit a TLS error following a redirect for %s: make sure http://%s/.well-known/acme-challenge/ is not redirected to a broken https site", who, firstOf(ids))
	case acme.ProblemTypeBadNonce, acme.ProblemTypeServerInternal:
		f.Detail = "the CA had a temporary problem; Edge will retry"
	case acme.ProblemTypeExternalAccountRequired, acme.ProblemTypeAccountDoesNotExist, acme.ProblemTypeInvalidContact, acme.ProblemTypeUnsupportedContact:
		f.Detail = "the CA refused the ACME account: check acme.email and acme.directory"
	case acme.ProblemTypeUserActionRequired:
		f.Detail = "the CA requires action on the ACME account (often new terms of service): visit the CA's instructions and then renew"
	default:
		f.Detail = fmt.Sprintf("the CA refused the order for %s", who)
	}
	if d := strings.TrimSpace(p.Detail); d != "" {
		f.Detail += " (CA: " + d + ")"
	}
	if rest := unchecked(names, ids); len(rest) > 0 && len(ids) > 0 && len(ids) < len(names) {
		f.Detail += fmt.Sprintf("; the CA stops at the first failing name, so %s were not checked", strings.Join(rest, ", "))
	}
	return f
}

// unchecked are the names of an order that a problem does not name.
func unchecked(names, named []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(named, n) {
			out = append(out, n)
		}
	}
	return out
}

// problemIdentifiers returns the names a problem is about: the failed
// authorization's identifier, and those of its subproblems.
func problemIdentifiers(p acme.Problem) []string {
	set := map[string]bool{}
	switch r := p.Resource.(type) {
	case acme.Authorization:
		set[r.Identifier.Value] = true
	case *acme.Authorization:
		if r != nil {
			set[r.Identifier.Value] = true
		}
	}
	for _, sp := range p.Subproblems {
		if sp.Identifier.Value != "" {
			set[sp.Identifier.Value] = true
		}
	}
	delete(set, "")
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
