package logtime

import (
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// TestISO8601IsZaps: the cached text is zap's ISO8601 text for times in
// the same millisecond, across milliseconds, locations (and the same
// instant in two of them), before 1970 and at zero.
func TestISO8601IsZaps(t *testing.T) {
	base := time.Date(2026, 12, 7, 9, 30, 0, 999_999_000, time.UTC)
	locs := []*time.Location{time.UTC, time.FixedZone("A", 3600), time.FixedZone("B", -5*3600-1800), time.Local}
	var times []time.Time
	for i := range 200 {
		tm := base.Add(time.Duration(rand.Int64N(int64(5 * time.Millisecond))))
		times = append(times, tm.In(locs[i%len(locs)]))
	}
	times = append(times, time.Time{}, time.Unix(0, 0), time.Unix(-1, 999e6), time.Unix(0, 1e6-1),
		time.Date(1969, 12, 31, 23, 59, 59, 999_500_000, time.UTC), base.In(locs[1]), base.In(locs[2]))
	for _, tm := range times {
		got, want := zapcore.NewMapObjectEncoder(), zapcore.NewMapObjectEncoder()
		got.AddArray("t", zapcore.ArrayMarshalerFunc(func(e zapcore.ArrayEncoder) error { ISO8601(tm, e); return nil }))
		want.AddArray("t", zapcore.ArrayMarshalerFunc(func(e zapcore.ArrayEncoder) error { zapcore.ISO8601TimeEncoder(tm, e); return nil }))
		g, w := got.Fields["t"].([]any)[0], want.Fields["t"].([]any)[0]
		if g != w {
			t.Errorf("%v: got %v, want %v", tm, g, w)
		}
	}
}
