package cli

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows a long command's progress (issue 21): on a terminal a bar
// with the count, rate and time left, redrawn at most ten times a second
// and cleared at the end; anywhere else (a script, CI, a file) nothing.
// The command prints its one final line either way. A nil *progress is
// valid and shows nothing.
type progress struct {
	bar *progressbar.ProgressBar
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns the progress of a task of total units (-1:
// unknown), counted in bytes or in items named unit.
func newProgress(w io.Writer, desc string, total int64, bytes bool, unit string) *progress {
	if !isTerminal(w) {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionClearOnFinish(),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit))
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...)}
}

// set reports done of total (total changes when it becomes known).
func (p *progress) set(done, total int64) {
	if p == nil {
		return
	}
	if total >= 0 && p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
}

// Write counts len(b) bytes done: a progress is the io.Writer of a copy.
func (p *progress) Write(b []byte) (int, error) {
	if p != nil {
		_ = p.bar.Add64(int64(len(b)))
	}
	return len(b), nil
}

// SetTotal is the size of what is being copied, once known.
func (p *progress) SetTotal(n int64) {
	if p != nil && n >= 0 {
		p.bar.ChangeMax64(n)
		_ = p.bar.RenderBlank() // show the size now, not at the next throttled redraw
	}
}

// finish clears the bar; the command then prints its final line.
func (p *progress) finish() {
	if p != nil {
		_ = p.bar.Finish()
	}
}
