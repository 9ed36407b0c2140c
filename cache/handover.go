package cache

import "errors"

// SuspendDisk lets go of the disk tier for another process: the new process
// of a binary upgrade, which opens cache.dir itself (cleaning its temporary
// files, unlinking what the purge journal lists, indexing the objects).
// From its return until ResumeDisk this cache reads, writes and unlinks no
// object under the directory and writes no purge journal; the memory tier
// serves alone. Writes asked for meanwhile are dropped; files it drops from
// its index are unlinked only if it takes the tier back; a purge applies to
// memory and the index but returns an error saying it was not recorded.
func (c *Cache) SuspendDisk() error {
	if c.disk == nil {
		return nil
	}
	d := c.disk
	if !d.suspended.CompareAndSwap(false, true) {
		return nil
	}
	ack := make(chan struct{})
	select {
	case d.pause <- ack:
		<-ack // the writer finished the operation it was on and waits
	case <-d.done:
	}
	d.journal.close()
	return nil
}

// ResumeDisk takes the disk tier back after SuspendDisk (the other process
// failed and is gone): the purge journal is opened again (unlinking what
// the other process may have journaled), and the writer goes on with the
// unlinks queued meanwhile.
func (c *Cache) ResumeDisk() error {
	if c.disk == nil || !c.disk.suspended.Load() {
		return nil
	}
	d := c.disk
	j, err := openJournal(d.dir)
	if err != nil {
		return err
	}
	d.journal.mu.Lock()
	d.journal.f, d.journal.size = j.f, 0
	d.journal.mu.Unlock()
	d.suspended.Store(false)
	select {
	case d.resume <- struct{}{}:
	case <-d.done:
		return errors.New("cache closed")
	}
	return nil
}

// paused holds the writer while the tier is handed over; false when the
// cache closed meanwhile (the files queued for unlinking are left: they
// may be the other process's now).
func (d *diskTier) paused(ack chan struct{}) bool {
	close(ack)
	select {
	case <-d.resume:
		return true
	case <-d.done:
		d.trashMu.Lock()
		d.trashed, d.trashClosed = nil, true
		d.trashMu.Unlock()
		return false
	}
}
