// Package config reads the node config (SPEC §3) into an immutable Config:
// YAML node → unknown-key check → decode with defaults and EDGE_*
// overrides → the checks of each section. Every problem names the file and
// line, or the environment variable, and the key. Viper is used here only;
// nothing downstream sees it, and nothing here knows the daemon.
package config
