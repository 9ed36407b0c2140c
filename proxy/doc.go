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
// # Paths
//
// A request path with a dot-segment is refused with 400, never normalised:
// after percent-decoding, a segment (split at "/" or "\") that is "." or
// "..", spelt with "." or "%2e" (so "%2e%2e", "..%2f", ".%2e", "%252e%252e"
// and "..;params" too), would let a request leave or walk around the path of
// an origin URL such as http://o/tenant-a, and origins disagree on how to
// resolve them. Browsers never send such paths. File origins are served
// through an os.Root: no name or symlink reaches outside their directory.
//
// # Upstreams
//
// site.upstream (site.forward) is the one entry for sending a request to a
// property's origins; the cache sits in front of it. It picks an origin by
// weight among the healthy ones (all of them when none is healthy).
//
// http origins, and https origins once a response shows they speak
// HTTP/1.1 only, use the synchronous path (exchange.go): the
// handler's goroutine takes a keep-alive connection from the origin's pool
// (pool.go), writes the request head and streams the body, reads the
// response with http.ReadResponse and streams it back, flushing streams
// (unknown length, text/event-stream) as they come. A connection goes back
// to the pool only when the response was HTTP/1.1 keep-alive, read to its
// end, the request was sent in full and nothing followed the response; and
// before reuse a non-blocking peek checks the origin neither closed it nor
// sent anything unasked (the rest of a response that lied about its
// length). Idle connections are bounded per origin and closed after the
// property's idle timeout. Other https origins go through an
// http.Transport, which speaks HTTP/2 with them: one connection carries
// many requests, where the transport's goroutines pay for themselves.
//
// Retries (retry.go): a request goes to another origin after a dial error
// (nothing was sent), or once after a response-header timeout when it is
// idempotent and has no body; never after anything else. Every retry takes
// a token of the site's retry budget (20 % of requests, a burst of 10). A
// reused connection the origin had closed while idle is replaced by a new
// one once, when the request can go again. Errors become 400 (the client's
// body broke), 499 (the client left), 504 (a timeout) or 502 (anything
// else) through statusFor; an origin that fails after the response began
// cuts the client's connection, so a truncated body never looks whole.
//
// Routes are an immutable snapshot behind an atomic pointer, swapped by
// Update.
package proxy
