// Package h1 is Edge's own HTTP/1.x server front: one goroutine per
// connection, a request head read whole into a per-connection buffer and
// parsed in one pass, and a response written with one Write when it fits.
// It feeds the same http.Handler as Go's net/http server and answers every
// request Go's server would refuse with the same status and bytes: a head
// the fast parser does not take as plainly well-formed is handed, raw, to
// net/http's own parser (http.ReadRequest), so the rare shapes (obs-fold,
// bare LF, absolute-form targets, Pragma, request trailers...) get Go's
// verdict exactly. internal/h1/conformance_test.go runs one table of raw
// requests against both fronts.
package h1
