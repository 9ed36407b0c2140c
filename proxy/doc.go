// Package proxy serves the HTTP and HTTPS ports: ACME challenge paths,
// redirects to HTTPS, and reverse proxying to each property's origins.
//
// Order of a request on the HTTP port:
//  1. Host is normalised (property.Normalize); missing → 421, malformed → 400;
//  2. /.well-known/acme-challenge/<token> is offered to the
//     ChallengeResponder; an unknown token is proxied for a property with
//     renew automation off, else 404;
//  3. an unknown Host → 421 (never proxied);
//  4. tls.redirect_http → 308 to https;
//  5. otherwise proxied.
//
// On the HTTPS port, a Host whose property uses another certificate than the
// SNI's property → 421; then hsts and proxying.
//
// Proxying picks an origin by weight among the healthy ones (all of them
// when none is healthy), retries on another origin only when that is safe,
// and maps errors to 502/504 through one function (statusFor). Routes are an
// immutable snapshot behind an atomic pointer, swapped by Update.
package proxy
