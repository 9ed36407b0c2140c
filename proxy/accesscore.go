package proxy

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap/zapcore"
)

// NewAccessCore is zapcore.NewCore(enc, out, lvl) for the access log,
// with the same output byte for byte, made cheaper for the proxy's access
// lines: when enc writes JSON lines (checked once, by encoding a probe
// line both ways), the line's fixed fields are appended by hand after the
// entry's own part (level, time, logger, message and the With fields,
// which enc still writes). zap's encoder checks each byte of each string
// for escaping through several calls; here a string needing none (the
// common case) is copied whole. A line with an error, a string that needs
// escaping or anything else is zap's, unchanged.
//
// With timeMillis, enc writes an entry's time with the same text throughout
// a millisecond (logtime.ISO8601 does): the entry's part is then encoded
// once per millisecond (and level, logger and message) and reused.
func NewAccessCore(enc zapcore.Encoder, out zapcore.WriteSyncer, lvl zapcore.LevelEnabler, timeMillis bool) zapcore.Core {
	c := &accessCore{LevelEnabler: lvl, enc: enc, out: out, inner: zapcore.NewCore(enc, out, lvl), millis: timeMillis}
	c.fast = c.probe()
	return c
}

type accessCore struct {
	zapcore.LevelEnabler
	enc    zapcore.Encoder
	out    zapcore.WriteSyncer
	inner  zapcore.Core // zap's own core on the same encoder and output
	fast   bool         // enc's lines are JSON as appendFast writes them
	millis bool         // enc's time text changes once per millisecond at most
	head   atomic.Pointer[entryHead]
}

// entryHead is the encoded part of an entry, without its closing "}\n",
// for entries of one millisecond (one location), level, logger and message.
type entryHead struct {
	ms        int64
	loc       *time.Location
	level     zapcore.Level
	name, msg string
	b         []byte
}

// Level reports the core's minimum level, as zapcore.LevelOf reads it.
func (c *accessCore) Level() zapcore.Level { return zapcore.LevelOf(c.LevelEnabler) }

func (c *accessCore) With(fields []zapcore.Field) zapcore.Core {
	enc := c.enc.Clone()
	for i := range fields {
		fields[i].AddTo(enc)
	}
	return NewAccessCore(enc, c.out, c.LevelEnabler, c.millis)
}

func (c *accessCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c *accessCore) Sync() error { return c.out.Sync() }

func (c *accessCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	if l := accessLineOf(fields); c.fast && l != nil && ent.Stack == "" && ent.Level <= zapcore.ErrorLevel {
		if done, err := c.writeFast(ent, l); done {
			return err
		}
	}
	return c.inner.Write(ent, fields)
}

// accessLineOf returns the line of logAccess's fields when it has no
// error, or nil.
func accessLineOf(fields []zapcore.Field) *accessLine {
	if len(fields) != 2 || fields[0].Type != zapcore.InlineMarshalerType || fields[1].Type != zapcore.SkipType {
		return nil
	}
	l, _ := fields[0].Interface.(*accessLine)
	return l
}

// lineBufs lends the fast path its line buffers.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeFast writes l's line and reports true, or reports false, having
// written nothing, when one of its strings needs escaping.
func (c *accessCore) writeFast(ent zapcore.Entry, l *accessLine) (bool, error) {
	bp := lineBufs.Get().(*[]byte)
	defer lineBufs.Put(bp)
	b := (*bp)[:0]
	ms := ent.Time.UnixMilli()
	reuse := c.millis && ms > 0 && !ent.Caller.Defined // else the entry's part is not the same for a millisecond
	if h := c.head.Load(); reuse && h != nil && h.ms == ms && h.loc == ent.Time.Location() &&
		h.level == ent.Level && h.name == ent.LoggerName && h.msg == ent.Message {
		b = append(b, h.b...)
	} else {
		head, err := c.enc.EncodeEntry(ent, nil)
		if err != nil {
			return false, nil
		}
		hb := head.Bytes() // {...}\n: the entry's part, then the line's fields
		hb = hb[:len(hb)-2]
		b = append(b, hb...)
		if reuse {
			c.head.Store(&entryHead{ms: ms, loc: ent.Time.Location(), level: ent.Level, name: ent.LoggerName,
				msg: ent.Message, b: bytes.Clone(hb)})
		}
		head.Free()
	}
	b, ok := l.appendFast(b)
	*bp = b[:0]
	if !ok {
		return false, nil
	}
	_, err := c.out.Write(append(b, '}', '\n'))
	return true, err
}

// probe reports whether enc writes a line as writeFast does: the entry's
// part, closed by "}\n", and string, integer and duration (as seconds)
// fields as appendFast writes them.
func (c *accessCore) probe() bool {
	ent := zapcore.Entry{Level: zapcore.InfoLevel, Time: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC),
		LoggerName: "access", Message: "request"}
	head, err := c.enc.EncodeEntry(ent, nil)
	if err != nil {
		return false
	}
	defer head.Free()
	d := 1234567891 * time.Nanosecond
	full, err := c.enc.EncodeEntry(ent, []zapcore.Field{{Key: "s", Type: zapcore.StringType, String: "v"},
		{Key: "n", Type: zapcore.Int64Type, Integer: -7}, {Key: "d", Type: zapcore.DurationType, Integer: int64(d)}})
	if err != nil {
		return false
	}
	defer full.Free()
	h := head.Bytes()
	if !bytes.HasSuffix(h, []byte("}\n")) || len(h) < 3 || h[len(h)-3] == '{' {
		return false
	}
	want := append(h[:len(h)-2:len(h)-2], `,"s":"v","n":-7,"d":`...)
	want = appendSeconds(want, d)
	want = append(want, "}\n"...)
	return bytes.Equal(full.Bytes(), want)
}

// appendFast appends the line's fields as zap's JSON encoder writes them
// (",key":value each), or reports false when a string needs escaping.
func (l *accessLine) appendFast(b []byte) ([]byte, bool) {
	ok := true
	b, ok = appendPlain(b, `,"request_id":"`, l.req.id, ok)
	b, ok = appendPlain(b, `,"property":"`, l.req.propertyName(), ok)
	b, ok = appendPlain(b, `,"host":"`, l.r.Host, ok)
	b, ok = appendPlain(b, `,"method":"`, l.r.Method, ok)
	b, ok = appendPlain(b, `,"uri":"`, l.r.RequestURI, ok)
	b, ok = appendPlain(b, `,"proto":"`, l.r.Proto, ok)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.rec.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, l.rec.bytes, 10)
	b = append(b, `,"duration":`...)
	b = appendSeconds(b, l.elapsed)
	b, ok = appendPlain(b, `,"origin":"`, l.req.originName(), ok)
	b, ok = appendPlain(b, `,"remote":"`, l.r.RemoteAddr, ok)
	return b, ok
}

// appendPlain appends key (its opening quote included), v and the closing
// quote when v needs no escaping and ok; else it reports false.
func appendPlain(b []byte, key, v string, ok bool) ([]byte, bool) {
	if !ok || !plainJSON(v) {
		return b, false
	}
	b = append(b, key...)
	b = append(b, v...)
	return append(b, '"'), true
}

// appendSeconds is zapcore.SecondsDurationEncoder on the JSON encoder:
// the shortest decimal of float64(d)/1e9. Under 10^15 ns (11 days) that is
// d's own decimal digits with the point moved 9 places and trailing zeros
// dropped (d/1e9 has at most 15 significant digits, which a float64 keeps
// exactly, and no shorter decimal reads back as the same float64), written
// here without strconv's float formatting.
func appendSeconds(b []byte, d time.Duration) []byte {
	if d <= 0 || d >= 1e15 {
		return strconv.AppendFloat(b, float64(d)/float64(time.Second), 'f', -1, 64)
	}
	sec, ns := int64(d)/1e9, int64(d)%1e9
	b = strconv.AppendInt(b, sec, 10)
	if ns == 0 {
		return b
	}
	var frac [10]byte
	frac[0] = '.'
	for i := 9; i >= 1; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := 10
	for frac[n-1] == '0' {
		n--
	}
	return append(b, frac[:n]...)
}

// plainJSON reports whether zap's JSON encoder writes s as it is: ASCII,
// no control byte, no quote, no backslash. Eight bytes at a time.
func plainJSON(s string) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		b := s[i : i+8]
		x := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		q, bs := x^(lo*'"'), x^(lo*'\\')
		// A byte below 0x20, one with the top bit set, or a zero byte in
		// q or bs (a quote or a backslash): its top bit in t.
		t := (x - lo*0x20) | x | (q - lo) | (bs - lo)
		if t&hi != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
