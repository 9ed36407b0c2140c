package node

import (
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/edge-cdn/edge/internal/config"
	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
)

// SnapshotFile is where a node keeps the compiled snapshot of its property
// table (see property.Snapshot): in data_dir, not in the store, whose
// bbolt file the process being upgraded holds locked while the new one
// starts. Deleting it is always safe: the next start reads and parses
// every property file, and writes it again.
func SnapshotFile(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, "properties.snapshot")
}

func (n *node) snapshotID() property.SnapshotID {
	return property.SnapshotID{Build: property.BuildID(), Dir: n.cfg.PropertiesDir}
}

// readSnapshot returns the snapshot a start may take unchanged files from;
// nil when there is none, or (with one warning) when it cannot be
// trusted: another build's, truncated or corrupt.
func (n *node) readSnapshot() *property.Snapshot {
	s, err := property.ReadSnapshot(SnapshotFile(n.cfg), n.snapshotID())
	switch {
	case err == nil:
		return s
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		n.log.Warn("property snapshot ignored: every property file is read and parsed",
			zap.String("file", SnapshotFile(n.cfg)), zap.Error(err))
		return nil
	}
}

// startSnapshots runs the snapshot writer: it writes the snapshot of each
// table offerSnapshot hands it (the latest only, when several came while it
// wrote), off the request path and off the reload loop (100,000 properties
// take most of a second to write and fsync). The returned function stops
// it and waits; a table not written yet is dropped (the next start then
// parses the files that changed).
func (n *node) startSnapshots() (stop func()) {
	n.snapshots = make(chan *property.Table, 1)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case t := <-n.snapshots:
				n.writeSnapshot(t)
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// offerSnapshot hands t, the table now in service, to the snapshot writer,
// replacing one it has not started to write. Called by Run's goroutine
// only (the start, the reload loop).
func (n *node) offerSnapshot(t *property.Table) {
	if n.snapshots == nil {
		return
	}
	for {
		select {
		case n.snapshots <- t:
			return
		default:
			select {
			case <-n.snapshots: // an older table, not written yet
			default:
			}
		}
	}
}

// writeSnapshot writes the snapshot of t for the next start.
func (n *node) writeSnapshot(t *property.Table) {
	start := time.Now()
	k, err := property.WriteSnapshot(SnapshotFile(n.cfg), n.snapshotID(), t)
	if err != nil {
		n.log.Warn("writing the property snapshot; the next start parses every property file",
			zap.String("file", SnapshotFile(n.cfg)), zap.Error(err))
		return
	}
	n.log.Info("property snapshot written", zap.String("file", SnapshotFile(n.cfg)),
		zap.Int("properties", k), zap.Duration("took", time.Since(start)))
}
