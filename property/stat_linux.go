package property

import (
	"os"
	"syscall"
	"time"
)

// statOf is the fileStat of st, taken at readAt.
func statOf(st os.FileInfo, readAt time.Time) fileStat {
	f := fileStat{size: st.Size(), mtime: st.ModTime().UnixNano(), readAt: readAt.UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		f.ctime = sys.Ctim.Nano()
		f.ino = sys.Ino
	}
	return f
}
