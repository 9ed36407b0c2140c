// Package events announces what happens to certificates and properties
// (SPEC §8): each event is logged, kept in the store (the most recent
// Options.Keep), listed by the admin API, and POSTed to every webhook that
// asks for its type.
//
// Webhook delivery is at-least-once and ordered per webhook: each webhook
// has one worker and a cursor in the store (meta bucket,
// webhook_cursor/<hash of URL>) naming the last event it delivered. The
// worker reads the events after its cursor, retries each with backoff until
// the receiver answers 2xx, then moves the cursor on. Emit only queues the
// event in memory: one flusher goroutine per Log stores the queue in
// batches (one transaction for many events) and wakes the workers, so no
// request, handshake, reload or renewal waits for the store or a webhook,
// and a slow or dead webhook delays no other. While the store is
// unreachable events wait in memory, in order, up to Options.MaxPending;
// beyond that Emit refuses the newest (ErrQueueFull, counted by Pending),
// which are still in the process log. Close stores what it can within its
// context and stops the flusher. A new webhook starts
// at the newest event; one that falls more than Keep events behind loses the
// oldest (logged).
package events
