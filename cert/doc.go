// Package cert owns certificate records and their versions in the store
// (Certs), the checks of uploaded certificates (ParseUpload), self-signed
// and bootstrap certificates, and the pure renewal schedule (RenewAt,
// Backoff) that both the renewal loop and the admin API's view use.
//
// A record (bucket certificates, by id; certificate_names maps a name to
// its id) holds the metadata and the facts of the current version; each
// version (certificate_versions, "<id>/<version>") holds chain and key. The
// last KeepVersions versions are kept. Every method is one transaction.
package cert
