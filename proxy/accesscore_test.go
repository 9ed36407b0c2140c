package proxy

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/logtime"
	"github.com/edge-cdn/edge/property"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// nodeEncoderConfig is the node's log encoder configuration
// (internal/node/log.go).
func nodeEncoderConfig() zapcore.EncoderConfig {
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = logtime.ISO8601
	return ec
}

// TestAccessCoreLinesAreZaps: NewAccessCore writes every access line byte
// for byte as zapcore.NewCore does on the same encoder: plain lines (its
// fast path), strings that need escaping (quotes, control bytes, UTF-8,
// invalid UTF-8), errors with and without detail, With fields, a
// namespace, the console format, and lines that are not access lines.
func TestAccessCoreLinesAreZaps(t *testing.T) {
	type variant struct {
		name     string
		enc      func() zapcore.Encoder
		with     []zap.Field
		wantFast bool
		millis   bool // NewAccessCore's timeMillis
	}
	variants := []variant{
		{"json", func() zapcore.Encoder { return zapcore.NewJSONEncoder(nodeEncoderConfig()) }, nil, true, true},
		{"json+node", func() zapcore.Encoder { return zapcore.NewJSONEncoder(nodeEncoderConfig()) },
			[]zap.Field{zap.String("node", "edge-1")}, true, true},
		{"json, zap's time", func() zapcore.Encoder {
			ec := nodeEncoderConfig()
			ec.EncodeTime = zapcore.ISO8601TimeEncoder
			return zapcore.NewJSONEncoder(ec)
		}, nil, true, true},
		{"json, nanosecond time", func() zapcore.Encoder {
			ec := nodeEncoderConfig()
			ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
			return zapcore.NewJSONEncoder(ec)
		}, nil, true, false},
		{"json+namespace", func() zapcore.Encoder { return zapcore.NewJSONEncoder(nodeEncoderConfig()) },
			[]zap.Field{zap.Namespace("ns"), zap.String("node", "edge-1")}, false, true},
		{"json+millis", func() zapcore.Encoder {
			ec := nodeEncoderConfig()
			ec.EncodeDuration = zapcore.MillisDurationEncoder
			return zapcore.NewJSONEncoder(ec)
		}, nil, false, true},
		{"json bare", func() zapcore.Encoder { return zapcore.NewJSONEncoder(zapcore.EncoderConfig{}) }, nil, false, true},
		{"bench", func() zapcore.Encoder {
			return zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg", TimeKey: "time",
				EncodeTime: logtime.ISO8601, EncodeDuration: zapcore.SecondsDurationEncoder})
		}, nil, true, true},
		{"console", func() zapcore.Encoder { return zapcore.NewConsoleEncoder(nodeEncoderConfig()) }, nil, false, true},
	}
	type line struct {
		host, uri, remote, origin string
		status                    int
		bytes                     int64
		elapsed                   time.Duration
		err                       error
		fast                      bool // the fast path can write it
	}
	lines := []line{
		{"c.example", "/object?x=1", "192.0.2.1:1234", "http://127.0.0.1:8080", 200, 100, 1234567 * time.Nanosecond, nil, true},
		{"c.example", "/", "[2001:db8::1]:443", "", 0, 0, 0, nil, true},
		{"c.example", "/big", "192.0.2.1:1", "https://o.example", 502, 1 << 40, time.Hour + time.Nanosecond, nil, true},
		{"c.example", "/a~b!$&'()*+,;=:@%20", "192.0.2.1:1", "o", 304, 1, time.Nanosecond, nil, true},
		{"c.example", `/a?y="q"`, "192.0.2.1:1", "o", 200, 1, time.Second, nil, false},
		{"c.example", `/a\b`, "192.0.2.1:1", "o", 200, 1, time.Second, nil, false},
		{"c.example", "/a\x01b\tc\x7f", "192.0.2.1:1", "o", 200, 1, time.Second, nil, false},
		{"c.example", "/caf\u00e9/\u2028", "192.0.2.1:1", "o", 200, 1, time.Second, nil, false},
		{"c.example", "/bad\xff\xfe", "192.0.2.1:1", "o", 200, 1, time.Second, nil, false},
		{"c.example", "/x", "192.0.2.1:1", "o", 502, 0, time.Second, errors.New(`origin said "no"`), false},
		{"c.example", "/x", "192.0.2.1:1", "o", 502, 0, time.Second, errWithDetail{errors.New("origin reset")}, false},
	}
	when := time.Date(2026, 11, 29, 20, 0, 0, 123e6, time.FixedZone("X", 3600))
	prop := &property.Property{Name: "shop"}
	for _, v := range variants {
		var got, want bytes.Buffer
		fastCore := NewAccessCore(v.enc(), zapcore.AddSync(&got), zapcore.InfoLevel, v.millis)
		zapCore := zapcore.NewCore(v.enc(), zapcore.AddSync(&want), zapcore.InfoLevel)
		if v.with != nil {
			fastCore, zapCore = fastCore.With(v.with), zapCore.With(v.with)
		}
		ac := fastCore.(*accessCore)
		if ac.fast != v.wantFast {
			t.Errorf("%s: fast path %v, want %v", v.name, ac.fast, v.wantFast)
		}
		for i, tc := range lines {
			r := httptest.NewRequest("GET", "http://c.example/", nil)
			r.Host, r.RequestURI, r.RemoteAddr = tc.host, tc.uri, tc.remote
			req := &request{prop: prop, origin: tc.origin, err: tc.err}
			ids := newRequestIDs()
			ids.next(req)
			l := &accessLine{rec: &recorder{status: tc.status, bytes: tc.bytes}, r: r, req: req, elapsed: tc.elapsed}
			fields := []zap.Field{zap.Inline(l), zap.Error(req.err)}
			// Entries in one millisecond, the next, another location, another
			// message and logger, the first again: the reused entry part is
			// that of the entry at hand.
			for j, ent := range []zapcore.Entry{
				{Level: zapcore.InfoLevel, Time: when, LoggerName: "access", Message: "request"},
				{Level: zapcore.InfoLevel, Time: when.Add(999 * time.Microsecond), LoggerName: "access", Message: "request"},
				{Level: zapcore.InfoLevel, Time: when.Add(time.Millisecond), LoggerName: "access", Message: "request"},
				{Level: zapcore.InfoLevel, Time: when.Add(time.Millisecond).UTC(), LoggerName: "access", Message: "request"},
				{Level: zapcore.WarnLevel, Time: when.Add(time.Millisecond).UTC(), LoggerName: "access", Message: "request"},
				{Level: zapcore.WarnLevel, Time: when.Add(time.Millisecond).UTC(), LoggerName: "access.x", Message: "request"},
				{Level: zapcore.WarnLevel, Time: when.Add(time.Millisecond).UTC(), LoggerName: "access.x", Message: "other"},
				{Level: zapcore.InfoLevel, Time: when.Add(time.Millisecond).UTC(), Message: "request",
					Caller: zapcore.NewEntryCaller(0, "proxy/server.go", 1, true)},
				{Level: zapcore.InfoLevel, Time: when, LoggerName: "access", Message: "request"},
			} {
				for _, core := range []zapcore.Core{fastCore, zapCore} {
					if ce := core.Check(ent, nil); ce != nil {
						ce.Write(fields...)
					}
				}
				if g, w := got.String(), want.String(); g != w {
					t.Errorf("%s, line %d, entry %d:\n got %s\nwant %s", v.name, i, j, g, w)
				}
				got.Reset()
				want.Reset()
			}
			ent := zapcore.Entry{Level: zapcore.InfoLevel, Time: when, LoggerName: "access", Message: "request"}
			if v.wantFast && tc.err == nil {
				if done, _ := ac.writeFast(ent, l); done != tc.fast {
					t.Errorf("%s, line %d: fast path took it: %v, want %v", v.name, i, done, tc.fast)
				}
			}
			got.Reset()
			want.Reset()
		}
		// Not an access line: zap's.
		fastCore.Write(zapcore.Entry{Level: zapcore.WarnLevel, Time: when, Message: "other"}, []zap.Field{zap.String("k", "v")})
		zapCore.Write(zapcore.Entry{Level: zapcore.WarnLevel, Time: when, Message: "other"}, []zap.Field{zap.String("k", "v")})
		if g, w := got.String(), want.String(); g != w {
			t.Errorf("%s, other line:\n got %s\nwant %s", v.name, g, w)
		}
	}
}

// TestAccessCoreLevel: the core keeps its level (zap.Logger.Level reads it)
// and drops entries below it.
func TestAccessCoreLevel(t *testing.T) {
	var buf bytes.Buffer
	l := zap.New(NewAccessCore(zapcore.NewJSONEncoder(nodeEncoderConfig()), zapcore.AddSync(&buf), zapcore.InfoLevel, true))
	if l.Level() != zapcore.InfoLevel {
		t.Errorf("level %v", l.Level())
	}
	l.Debug("hidden")
	if buf.String() != "" {
		t.Errorf("debug written: %q", buf.String())
	}
}

// TestPlainJSON: the eight-bytes-at-a-time check agrees with a byte loop
// for every byte value at every position of strings of 1 to 20 bytes.
func TestPlainJSON(t *testing.T) {
	slow := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
				return false
			}
		}
		return true
	}
	for n := 1; n <= 20; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("a~ !#/[]", 3)[:n])
				b[pos] = byte(c)
				if s := string(b); plainJSON(s) != slow(s) {
					t.Fatalf("%q: %v", s, plainJSON(s))
				}
			}
		}
	}
}

// TestAppendSeconds: the hand-written seconds are strconv's shortest
// float64 text of d/1e9 for durations of every size and digit pattern.
func TestAppendSeconds(t *testing.T) {
	ds := []time.Duration{0, 1, 9, 10, 999, 1000, 1e6, 1e9 - 1, 1e9, 1e9 + 1, 1500 * time.Millisecond, 1234567891,
		time.Hour, 1e15 - 1, 1e15, 1e15 + 1, 1<<63 - 1, -1, -1e9}
	for range 200000 {
		ds = append(ds, time.Duration(rand.Int64N(1e15)), time.Duration(rand.Int64N(1e10)),
			time.Duration(rand.Int64N(1e6))*1000, time.Duration(rand.Int64N(1e4))*1e6)
	}
	for _, d := range ds {
		want := strconv.FormatFloat(float64(d)/float64(time.Second), 'f', -1, 64)
		if got := string(appendSeconds(nil, d)); got != want {
			t.Fatalf("%d ns: %s, want %s", int64(d), got, want)
		}
	}
}
