package node

import (
	"runtime/debug"

	"go.uber.org/zap"
)

// releaseStartGarbage gives the memory of a large start-up back to the
// system at once. Reading thousands of property files, certificate records
// and versions, and writing their events, leaves garbage several times the
// live heap; with GOGC at 200 (tuneGC) the runtime keeps it mapped, idle,
// and returns it only over the next minutes. Measured at 10,000 properties
// (cmd/bench -properties): about 100 MiB of 220 MiB RSS was such idle heap.
// Run calls it right after readiness: the forced collection of a large
// heap took 4 s of a 100,000-property start when it ran before.
func releaseStartGarbage(properties int) {
	if properties >= 1000 {
		debug.FreeOSMemory()
	}
}

// releaseStoreMapping takes the bbolt file's pages out of the process's
// resident memory once a start, or the certificate warm-up, has read
// through all of it (store.Bolt.ReleaseMapped): with 100,000 certificates
// they were 360 MiB of its RSS. Nothing on etcd.
func (n *node) releaseStoreMapping() {
	if n.slot == nil {
		return
	}
	if b := n.slot.cur.Load(); b != nil {
		if err := b.ReleaseMapped(); err != nil {
			n.log.Debug("releasing the store's mapped pages", zap.Error(err))
		}
	}
}
