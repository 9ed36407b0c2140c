// Package cache is Edge's shared HTTP cache (RFC 9111) in front of a
// property's origins, with RFC 5861 stale-while-revalidate and stale-if-error,
// RFC 9213 CDN-Cache-Control and RFC 9211 Cache-Status.
//
// It owns: the cache key (key.go), what may be stored and for how long
// (policy.go, a pure function of request, response, now and settings), the
// tiers (memory.go: otter W-TinyLFU bounded by bytes; disk.go: one file per
// object, written to a temporary name, fsync'd and renamed, indexed at start
// from the object heads), request collapsing and streaming fills (fill.go),
// purges (purge.go), statistics and metrics (stats.go, metrics.go).
//
// A request through Cache.Serve is looked up in this order: the memory tier,
// then the disk tier (a disk hit is promoted to memory). A fresh object is
// served; a stale one is revalidated through the one fill of its key (or
// served stale while a background refresh runs, or served stale when the
// origin fails); a miss joins the fill of its key or starts one. A fill is a
// goroutine owned by the Cache that calls the upstream handler with a
// ResponseWriter of its own and appends the body to a buffer that every
// waiting client follows as it grows; a client leaving never cancels a fill
// that others follow or that will be stored. Only a complete body, whose
// length matches its Content-Length, is stored.
//
// Close cancels the fills and background work and waits for them.
package cache
