//go:build !linux

package property

import (
	"os"
	"time"
)

// statOf is the fileStat of st, taken at readAt: size and modification
// time only.
func statOf(st os.FileInfo, readAt time.Time) fileStat {
	return fileStat{size: st.Size(), mtime: st.ModTime().UnixNano(), readAt: readAt.UnixNano()}
}
