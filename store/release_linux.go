package store

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ReleaseMapped takes the store file's pages out of this process's
// resident memory: bbolt reads through a mapping of the whole file, and a
// start that reads every certificate record and version (100,000
// certificates: a 370 MB file) left all of it counted in the process's
// RSS. The pages stay in the kernel's page cache and come back at the
// next read. It runs inside a read transaction, during which bbolt does
// not remap the file.
func (b *Bolt) ReleaseMapped() error {
	path, err := filepath.Abs(b.path)
	if err != nil {
		return err
	}
	return b.db.View(func(*bolt.Tx) error {
		f, err := os.Open("/proc/self/maps")
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// start-end perms offset dev inode path
			fields := strings.Fields(sc.Text())
			if len(fields) < 6 || fields[5] != path || !strings.HasPrefix(fields[1], "r") || strings.Contains(fields[1], "w") {
				continue
			}
			lo, hi, ok := strings.Cut(fields[0], "-")
			if !ok {
				continue
			}
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				continue
			}
			if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED); e != 0 {
				return e
			}
		}
		return sc.Err()
	})
}
