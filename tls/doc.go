// Package tls is the handshake side of the node: the index of parsed
// certificates (Manager), GetCertificate and the server's TLS config. It
// reads certificates through package cert and never orders or renews them.
//
// Handshake lookup, in order, with no lock and no allocation:
//  1. the SNI is normalised (property.Normalize; already-canonical names are
//     used as they are);
//  2. the property table maps it to a property: exact name, then a wildcard
//     for its first label; the property names its certificate;
//  3. the certificate snapshot maps that name to the parsed current version.
//
// An unknown SNI, a missing SNI or a property without a certificate fails the
// handshake with the unrecognized_name alert. Both the property table and the
// certificate snapshot are immutable values behind atomic pointers: a reload
// or a new certificate version swaps one pointer and the next handshake uses
// it.
//
// A certificate the background warm-up has not reached yet is read and
// parsed by its first handshake: concurrent first handshakes share one load
// (singleflight), each waits no longer than its own handshake context, the
// load is bounded (DefaultLoadTimeout), and only a success is kept - a
// failure is tried again after DefaultRetryDelay. The snapshot never goes
// back to a lower version of a certificate, and Load keeps the entries that
// did not change.
package tls
