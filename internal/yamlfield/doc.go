// Package yamlfield holds the small pieces that the node config (viper) and
// the property files (YAML) share about their fields: durations that accept
// days, errors that name a file, line and field, and a strict key check that
// walks a YAML document against the Go struct it will be decoded into. (It
// was internal/conf, a name too close to internal/config, which loads the
// node config.)
package yamlfield
