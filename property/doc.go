// Package property loads the operator's property files and turns them into an
// immutable routing Table.
//
// Loading order for one directory (LoadDir):
//  1. every *.yaml file is parsed strictly (unknown keys are errors) and
//     validated on its own (hostnames, origins, TLS, timeouts, headers);
//  2. the surviving files are merged into one Table, unchanged files first,
//     so that on a reload a changed file that collides with another
//     (duplicate hostname, duplicate name, too many names on one certificate)
//     is the one rejected;
//  3. a rejected file that had a last good version keeps that version in the
//     new Table.
//
// The package knows YAML and hostnames, not sockets or certificates' bytes.
// Normalize is the one hostname normaliser of the node: property loading, SNI
// selection and Host routing all use it.
package property
