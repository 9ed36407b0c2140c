// Package conf holds the small pieces that the node config (viper) and the
// property files (YAML) share: durations that accept days, errors that name a
// file, line and field, and a strict key check that walks a YAML document
// against the Go struct it will be decoded into.
package conf
