package node

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// releaseBinaryPages takes the executable's read-only pages (its code,
// read-only data and the function tables the runtime reads for stack
// walks) out of the process's resident set: madvise(MADV_DONTNEED) on
// the executable's mappings that are not writable. The pages stay in the
// kernel's page cache; what the node runs next faults back in, 64 KiB at
// a time (the kernel's fault-around). Writable mappings (the data
// segment, whose pages this process has changed) are never touched:
// dropping them would bring back the file's contents.
//
// Why (issue 22): the start runs every package's initialisation, spread
// over the whole binary, and the kernel maps 64 KiB around each page it
// faults: 20 of the binary's 24 MiB of code and read-only data stayed
// resident, about half the node's RSS under load, against a few MiB
// that serving uses.
func releaseBinaryPages() error {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return err
	}
	dev := fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev))
	ino := strconv.FormatUint(st.Ino, 10)
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	var spans [][2]uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[3] != dev || fields[4] != ino || !readOnlyPrivate(fields[1]) {
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
		spans = append(spans, [2]uintptr{uintptr(start), uintptr(end)})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for _, s := range spans {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s[0], s[1]-s[0], unix.MADV_DONTNEED); e != 0 {
			return e
		}
	}
	return nil
}

// readOnlyPrivate reports whether a mapping's permissions (as
// /proc/self/maps writes them, "r-xp") are readable, not writable and
// private.
func readOnlyPrivate(perms string) bool {
	return len(perms) == 4 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p'
}
