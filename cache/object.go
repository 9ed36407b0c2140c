package cache

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// object is one stored response, or a variant marker. It is immutable once
// stored, except for softPurged and the per-second header cache; a 304
// revalidation stores a new object.
type object struct {
	Key    string      `json:"key"`
	Status int         `json:"status,omitempty"`
	Header http.Header `json:"header,omitempty"`
	// Times of RFC 9111 §4.2.3, Unix nanoseconds.
	RequestTime  int64 `json:"request_time"`
	ResponseTime int64 `json:"response_time"`
	Date         int64 `json:"date"`
	AgeValue     int64 `json:"age_value,omitempty"`
	// Freshness, from Decide.
	Lifetime   time.Duration `json:"lifetime,omitempty"`
	SWR        time.Duration `json:"swr,omitempty"`
	SIE        time.Duration `json:"sie,omitempty"`
	Revalidate bool          `json:"revalidate,omitempty"`
	NoCache    bool          `json:"no_cache,omitempty"`
	Tags       []string      `json:"tags,omitempty"`
	// A variant marker lists the header names the responses at this
	// primary key vary on, under generation Gen.
	Marker bool     `json:"marker,omitempty"`
	Vary   []string `json:"vary,omitempty"`
	Gen    uint64   `json:"gen,omitempty"`

	body       []byte
	softPurged atomic.Bool
	clen       []string // Content-Length value, built once
	stamp      atomic.Pointer[stamp]
}

// stamp caches the Age and Cache-Status values of a hit for one second.
type stamp struct {
	sec         int64
	age, status []string
}

// size is what the object weighs in a tier: key, head and body, with what
// Go holds for them besides their bytes (the object, its header map's
// entries and slices, the tier's node, the hit stamp). Measured: 100,000
// small objects (4 fields, 100-byte bodies) held about 980 bytes of heap
// each, which these constants give; with 128 bytes for the object and 16
// per field, they weighed half that, and a tier full of small objects
// held twice its memory_size.
func (o *object) size() int64 {
	n := int64(len(o.Key)) + objectOverhead
	for k, vs := range o.Header {
		n += int64(len(k)) + fieldOverhead
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	for _, t := range o.Tags {
		n += int64(len(t)) + 16
	}
	for _, v := range o.Vary {
		n += int64(len(v)) + 16
	}
	return n + int64(len(o.body))
}

const (
	objectOverhead = 512 // the object struct, the stamp of a hit, the tier's node and map slot
	fieldOverhead  = 64  // a header map entry: its slot, key string header, value slice
)

// age is the object's current age at now (RFC 9111 §4.2.3).
func (o *object) age(now time.Time) time.Duration {
	return currentAge(time.Unix(0, o.Date), o.AgeValue, time.Unix(0, o.RequestTime), time.Unix(0, o.ResponseTime), now)
}

// ttl is how much longer the object is fresh (negative: stale for that long).
func (o *object) ttl(now time.Time) time.Duration {
	if o.softPurged.Load() {
		return min(-time.Nanosecond, o.Lifetime-o.age(now))
	}
	return o.Lifetime - o.age(now)
}

// seal prepares the values the hit path reuses; call it before storing.
func (o *object) seal() *object {
	o.clen = []string{strconv.Itoa(len(o.body))}
	return o
}

// etag and lastModified are the object's validators.
func (o *object) etag() string         { return headerValue(o.Header, "Etag") }
func (o *object) lastModified() string { return headerValue(o.Header, "Last-Modified") }

func headerValue(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}
