//go:build !linux

package store

// ReleaseMapped does nothing here (see the Linux version).
func (b *Bolt) ReleaseMapped() error { return nil }
