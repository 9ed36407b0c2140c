package rawsend

import (
	"os"
	"syscall"
)

// WriteHeld makes one write(2) of h.Held to the non-blocking socket fd
// (again when interrupted) and drops what it wrote from h.Held. wrote
// tells whether any byte went; err is a failure other than EAGAIN. A
// write that is partial or would block leaves the rest in h.Held, for the
// caller to finish the ordinary way.
func (h *Holder) WriteHeld(fd uintptr) (wrote bool, err error) {
	for {
		n, err := syscall.Write(int(fd), h.Held)
		if err == syscall.EINTR {
			continue
		}
		if n > 0 {
			wrote = true
			h.Held = h.Held[n:]
		}
		if err != nil && err != syscall.EAGAIN {
			return wrote, os.NewSyscallError("write", err)
		}
		return wrote, nil
	}
}
