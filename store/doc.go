// Package store keeps the node's state in an embedded bbolt file
// (<data_dir>/edge.db, mode 0600). It knows buckets and bytes, not what a
// certificate means: the tls package owns the encoding of what it stores.
//
// Schema version 1. Buckets are created once, when the file is opened:
//
//	meta
//	  schema_version          → "1"
//	  event_seq               → seq of the newest event (taken in the same transaction)
//	  webhook_cursor/<node>/<hash> → seq of the last event that node delivered to a webhook
//	certificates
//	  <id>                    → JSON certificate record (tls.Certificate)
//	certificate_names
//	  <name>                  → <id>
//	certificate_versions
//	  <id>/<version:%010d>    → JSON version (PEM chain and PEM private key)
//	events                    (operator interface: recent events)
//	  <seq:%020d>             → JSON event
//	acme                      (ACME: account, challenge tokens, locks)
//	  <certmagic storage key> → bytes
//
// Every method runs in one transaction. Values handed out are copies, valid
// after the transaction ends.
//
// On etcd every request carries a deadline (EtcdConfig.OpTimeout, 5 s by
// default, also under context.Background()), Lock waits at most
// LockTimeout when the caller gives no deadline, and an Update is always
// one commit: one too large for etcd fails with ErrTxnTooLarge; only Copy
// (migration) writes in several commits. A batched scan resumes with
// Tx.ForEachFrom instead of restarting at the bucket start. A lock holder
// learns that its lease ended from Fencer.Lost (or HeldContext) and makes
// its writes conditional on what it read under the lock with
// Tx.Revision and Tx.Require.
package store
