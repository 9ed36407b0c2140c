package node

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// releaseBinaryPages takes the executable's read-only pages (its code,
// read-only data and the function tables the runtime reads for stack
// walks) out of the process's resident set: madvise(MADV_DONTNEED) on
// the executable's mappings that are readable, not writable and private.
// The pages stay in the kernel's page cache; what the node runs next
// faults back in, 64 KiB at a time (the kernel's fault-around). Writable
// mappings (the data segment, whose pages this process has changed) are
// never touched: dropping them would bring back the file's contents. Nor
// is a read-only mapping holding private copies of pages: a debugger's
// breakpoints or a uprobe (perf, bpftrace) wrote into the code there, and
// dropping the copies would remove them.
//
// Why (issue 22): the start runs every package's initialisation, spread
// over the whole binary, and the kernel maps 64 KiB around each page it
// faults: 20 of the binary's 24 MiB of code and read-only data stayed
// resident, about half the node's RSS under load, against 12–15 MiB
// that serving touches.
func releaseBinaryPages() error {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return err
	}
	defer f.Close()
	spans, err := readOnlyFileSpans(f, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	if err != nil {
		return err
	}
	for _, s := range spans {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s[0], s[1]-s[0], unix.MADV_DONTNEED); e != 0 {
			return e
		}
	}
	return nil
}

// readOnlyFileSpans reads /proc/<pid>/smaps and returns the address
// ranges of the mappings of the file (device major:minor, inode) that
// are readable, not writable, private, and hold no anonymous (private
// copy) pages.
func readOnlyFileSpans(smaps io.Reader, major, minor uint32, ino uint64) ([][2]uintptr, error) {
	dev := fmt.Sprintf("%02x:%02x", major, minor)
	inode := strconv.FormatUint(ino, 10)
	var spans [][2]uintptr
	var cur [2]uintptr
	candidate := false
	flush := func() {
		if candidate {
			spans = append(spans, cur)
		}
		candidate = false
	}
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			// A mapping's header: start-end perms offset dev inode [path].
			flush()
			if len(fields) < 5 || fields[3] != dev || fields[4] != inode || !readOnlyPrivate(fields[1]) {
				continue
			}
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || end <= start {
				continue
			}
			cur, candidate = [2]uintptr{uintptr(start), uintptr(end)}, true
			continue
		}
		if candidate && fields[0] == "Anonymous:" && (len(fields) < 2 || fields[1] != "0") {
			candidate = false // private copies: breakpoints, uprobes
		}
	}
	flush()
	return spans, sc.Err()
}

// readOnlyPrivate reports whether a mapping's permissions (as
// /proc/self/maps writes them, "r-xp") are readable, not writable and
// private.
func readOnlyPrivate(perms string) bool {
	return len(perms) == 4 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p'
}
