// Package cache is Edge's shared HTTP cache (RFC 9111) in front of a
// property's origins, with RFC 5861 stale-while-revalidate and stale-if-error,
// RFC 9213 CDN-Cache-Control and RFC 9211 Cache-Status.
//
// It owns: the cache key (key.go), what may be stored and for how long
// (policy.go: Decide, a pure function of request, response, now and
// settings), the tiers (memory.go: otter W-TinyLFU bounded by bytes;
// disk.go: one file per object, written to a temporary name, fsync'd and
// renamed, indexed at start from the object heads), request collapsing and
// streaming fills (fill.go, miss.go, head.go, follow.go), answers from stored
// objects (respond.go: 304s, ranges, HEAD), purges (purge.go), statistics and
// metrics (stats.go, metrics.go).
//
// Wiring. One Cache per node, from New(Config{MemorySize, DiskSize, Dir,
// Logger, Registerer}); Close at shutdown, after the listeners stop. The
// proxy calls
//
//	cache.Serve(w, r, prop, upstream)
//
// for every request of a property; a property without cache.enabled goes
// straight to upstream. upstream is an http.Handler that forwards a request
// to the origin and writes the origin's response (502/504 when it cannot).
// It may be called on a goroutine of the cache, after the client that caused
// it has gone, with a clone of the client's request whose context keeps the
// values but not the cancellation: it must take what it needs from that
// request. SetProperties at start and reload, DropProperty for a removed
// property, Purge for the API and for purges arriving from other nodes,
// Stats for the API and CLI.
//
// A request through Serve is looked up in this order: the memory tier, then
// the disk tier (a disk hit is promoted to memory). A fresh object is served;
// a stale one is revalidated through the one fill of its key (or served stale
// while a background refresh runs, or served stale when the origin fails); a
// miss joins the fill of its key or starts one. A fill is a goroutine owned
// by the Cache that calls upstream with a ResponseWriter of its own and
// appends the body to a buffer that every waiting client follows as it
// grows; a client leaving never cancels a fill that others follow or that
// will be stored. Only a complete body, whose length matches its
// Content-Length, is stored; a body cut short aborts the clients that
// followed it (http.ErrAbortHandler), so none takes it for a whole one.
//
// Memory is bounded by cache.memory_size whatever clients send: the memory
// tier gets it less a 1/32 share for hit-for-pass markers (hashed keys,
// weighed, evicted) and a 1/8 share for the bodies of fills in flight, which
// reserve their bytes as they grow (never from a Content-Length alone); a
// fill that finds that share full, or an object over memory_size/16,
// streams through uncached within a small window. A fill being stored whose
// origin sends nothing for timeouts.body_idle is ended as cut short.
//
// Close cancels the fills and background work and waits for every goroutine
// the cache started (fills, the disk writer, otter's maintenance).
package cache
