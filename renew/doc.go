// Package renew decides when certificates are ordered and runs the orders:
// the renewal loop (Renewer) with its agenda (a min-heap of due times, so a
// pass costs what is due), the request flow of the API (Request, Renew),
// expiry notices and their announcements.
//
// Lifecycle: Run once at start (a full rescan), then on the check interval,
// on Wake and on Changed/PropertiesChanged; each due certificate is attempted
// under its lock (an etcd lease in a fleet), re-checked after the lock is
// taken. Imports point down: renew → acme → cert → store.
package renew
