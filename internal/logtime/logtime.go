// Package logtime is the logs' time encoder: zapcore.ISO8601TimeEncoder's
// text, formatted once per millisecond instead of once per line (a busy
// node's access log writes many lines in each).
package logtime

import (
	"sync/atomic"
	"time"

	"go.uber.org/zap/zapcore"
)

const layout = "2006-01-02T15:04:05.000Z0700" // zapcore.ISO8601TimeEncoder's

// stamp is one millisecond's text in one location.
type stamp struct {
	ms  int64
	loc *time.Location
	s   string
}

var last atomic.Pointer[stamp]

// ISO8601 writes t as zapcore.ISO8601TimeEncoder does. The layout shows
// milliseconds, truncated, so every time within one millisecond (of one
// location) has the same text; the last one made is kept and shared.
func ISO8601(t time.Time, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendString(Format(t))
}

// Format is t in ISO8601's layout.
func Format(t time.Time) string {
	ms := t.UnixMilli()
	if ms <= 0 { // before 1970 UnixMilli rounds up, the layout down
		return t.Format(layout)
	}
	loc := t.Location()
	if p := last.Load(); p != nil && p.ms == ms && p.loc == loc {
		return p.s
	}
	s := t.Format(layout)
	last.Store(&stamp{ms: ms, loc: loc, s: s})
	return s
}
