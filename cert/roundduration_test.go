package cert

import (
	"testing"
	"time"
)

// TestRoundDurationToTheSecond: a renewal window of 3 days less half a
// second (a 6-day Pebble certificate is a second short) read
// "72h0m0s or less of validity left"; it reads 3d.
func TestRoundDurationToTheSecond(t *testing.T) {
	for d, want := range map[time.Duration]string{
		72*time.Hour - 500*time.Millisecond: "3d",
		25 * 24 * time.Hour:                 "25d",
		36 * time.Hour:                      "36h0m0s",
		90 * time.Second:                    "1m30s",
	} {
		if got := RoundDuration(d); got != want {
			t.Errorf("RoundDuration(%s) = %s, want %s", d, got, want)
		}
	}
}
