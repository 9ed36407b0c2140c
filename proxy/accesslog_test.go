package proxy

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// fixedClock makes every log entry's time the same.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                         { return c.t }
func (c fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// TestAccessLineIsTheFieldList: the access line is byte for byte what the
// list of fields the log's contract names gives, in JSON and console
// format, with and without an error (errors with detail add errorVerbose).
func TestAccessLineIsTheFieldList(t *testing.T) {
	detailed := errWithDetail{errors.New("origin reset")}
	for _, format := range []string{"json", "console"} {
		for _, err := range []error{nil, errors.New("origin closed the connection"), detailed} {
			var got, want testutil.SyncBuffer
			ec := zap.NewProductionEncoderConfig()
			ec.TimeKey = "time"
			ec.EncodeTime = zapcore.ISO8601TimeEncoder
			enc := zapcore.NewJSONEncoder(ec)
			if format == "console" {
				enc = zapcore.NewConsoleEncoder(ec)
			}
			clock := zap.WithClock(fixedClock{time.Date(2026, 11, 29, 20, 0, 0, 123e6, time.UTC)})
			logger := func(w *testutil.SyncBuffer) *zap.Logger {
				return zap.New(zapcore.NewCore(enc.Clone(), zapcore.AddSync(w), zapcore.InfoLevel), clock)
			}
			s := New(Config{AccessLog: true, AccessLogger: logger(&got)})
			r := httptest.NewRequest("PUT", "http://c.example/a%20b?x=1&y=\"q\"", nil)
			r.RemoteAddr = "192.0.2.1:1234"
			rec := &recorder{status: 502, bytes: 12345}
			req := &request{began: monoNow() - 1500*time.Millisecond, origin: "http://127.0.0.1:8080", err: err}
			s.ids.next(req)
			s.logAccess(rec, r, req, monoNow()-req.began)
			s.Close()
			var d time.Duration
			if _, e := fmtSscanDuration(lines(&got)[0], format, &d); e != nil {
				t.Fatalf("%s: no duration in %q: %v", format, lines(&got)[0], e)
			}
			logger(&want).Info("request", zap.String("request_id", req.id), zap.String("property", ""),
				zap.String("host", r.Host), zap.String("method", r.Method), zap.String("uri", r.RequestURI),
				zap.String("proto", r.Proto), zap.Int("status", rec.status), zap.Int64("bytes", rec.bytes),
				zap.Duration("duration", d), zap.String("origin", req.origin), zap.String("remote", r.RemoteAddr),
				zap.Error(err))
			mask := regexp.MustCompile(`"duration":[0-9.e+-]+`)
			g, w := lines(&got)[0], lines(&want)[0]
			if mask.ReplaceAllString(g, "D") != mask.ReplaceAllString(w, "D") || d < 1500*time.Millisecond || d > time.Minute {
				t.Errorf("%s, error %v:\n got %s\nwant %s", format, err, g, w)
			}
		}
	}
}

// errWithDetail is an error whose %+v says more than Error.
type errWithDetail struct{ error }

func (e errWithDetail) Format(s fmt.State, verb rune) {
	if verb == 'v' && s.Flag('+') {
		fmt.Fprint(s, e.Error()+"\n\tat the origin")
		return
	}
	fmt.Fprint(s, e.Error())
}

// fmtSscanDuration reads the duration (seconds, as the encoder wrote it)
// out of an access line.
func fmtSscanDuration(line, format string, d *time.Duration) (int, error) {
	key := `"duration":`
	i := strings.Index(line, key)
	if i < 0 {
		return 0, errors.New("no duration")
	}
	var sec float64
	n, err := fmt.Sscanf(line[i+len(key):], "%g", &sec)
	*d = time.Duration(sec * float64(time.Second))
	return n, err
}
