package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-cdn/edge/internal/testutil"
	"github.com/edge-cdn/edge/store"
)

func openLog(t *testing.T, path string, keep int) (*Log, *store.Bolt) {
	t.Helper()
	st, err := store.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(context.Background(), st, Options{Node: "n1", Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLog(t, l) })
	return l, st
}

func closeLog(t *testing.T, l *Log) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Error(err)
	}
}

func TestKeepsARecentWindow(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "edge.db")
	l, st := openLog(t, path, 5)
	for i := range 8 {
		if _, err := l.Emit(ctx, Event{Type: PropertyLoaded, Property: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := l.After(ctx, 0, 0)
	if len(evs) != 5 || evs[0].Seq != 4 || evs[4].Seq != 8 || evs[4].Node != "n1" || !strings.HasPrefix(evs[4].ID, "evt_") {
		t.Fatalf("kept %d events %+v, want seq 4..8", len(evs), evs)
	}
	closeLog(t, l)
	st.Close()
	// Reopened: the sequence continues.
	l2, st2 := openLog(t, path, 5)
	defer st2.Close()
	_, _ = l2.Emit(ctx, Event{Type: PropertyLoaded})
	if err := l2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if seq, _ := l2.Latest(ctx); seq != 9 {
		t.Errorf("after reopen seq %d, want 9", seq)
	}
}

// receiver is a webhook endpoint that fails its first fails deliveries.
type receiver struct {
	mu     sync.Mutex
	fails  int
	got    []Event
	bad    []string
	secret string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.fails > 0 {
		rc.fails--
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	// Verify Edge-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.
	sig := r.Header.Get(SignatureHeader)
	parts := strings.Split(sig, ",")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "t=") || !strings.HasPrefix(parts[1], "v1=") {
		rc.bad = append(rc.bad, "malformed signature "+sig)
		return
	}
	mac := hmac.New(sha256.New, []byte(rc.secret))
	fmt.Fprintf(mac, "%s.%s", parts[0][2:], body)
	if want := hex.EncodeToString(mac.Sum(nil)); parts[1][3:] != want {
		rc.bad = append(rc.bad, "bad signature")
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get("Edge-Event-Id") {
		rc.bad = append(rc.bad, "bad body")
		return
	}
	rc.got = append(rc.got, ev)
}

func (rc *receiver) events() []Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Event(nil), rc.got...)
}

func TestWebhookDelivery(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "edge.db")
	l, st := openLog(t, path, 100)
	_, _ = l.Emit(ctx, Event{Type: PropertyLoaded, Property: "before"}) // before the webhook existed: not sent
	good := &receiver{secret: "s3cret", fails: 2}
	only := &receiver{secret: "other"}
	gs, os := httptest.NewServer(good), httptest.NewServer(only)
	defer gs.Close()
	defer os.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.ReadAll(r.Body); <-r.Context().Done() }))
	defer hang.Close()
	defer hang.CloseClientConnections()
	var mu sync.Mutex
	results := map[string]int{}
	stop := l.StartWebhooks([]Webhook{
		{URL: gs.URL, Secret: "s3cret"},
		{URL: os.URL, Secret: "other", Events: []string{CertificateFailed}},
		{URL: hang.URL}, // a dead receiver delays no other
	}, DeliveryOptions{RetryBase: 20 * time.Millisecond, Client: &http.Client{Timeout: 30 * time.Second},
		OnDelivery: func(r string) { mu.Lock(); results[r]++; mu.Unlock() }})
	for i := range 3 {
		_, _ = l.Emit(ctx, Event{Type: PropertyLoaded, Property: fmt.Sprint(i)})
	}
	_, _ = l.Emit(ctx, Event{Type: CertificateFailed, Detail: "boom"})
	testutil.WaitFor(t, "4 deliveries to the good receiver", func() bool { return len(good.events()) == 4 })
	testutil.WaitFor(t, "1 delivery to the filtered receiver", func() bool { return len(only.events()) == 1 })
	got := good.events()
	for i, ev := range got[:3] {
		if ev.Property != fmt.Sprint(i) {
			t.Errorf("delivery %d: %+v, want property %d in order", i, ev, i)
		}
	}
	if only.events()[0].Type != CertificateFailed {
		t.Errorf("filtered receiver got %+v", only.events())
	}
	if len(good.bad)+len(only.bad) > 0 {
		t.Errorf("signature or body problems: %v %v", good.bad, only.bad)
	}
	// The receiver has the events a moment before the worker hears its
	// answer and counts it.
	testutil.WaitFor(t, "2 failed and 5 good deliveries counted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return results["error"] >= 2 && results["ok"] >= 5
	}, func() string { mu.Lock(); defer mu.Unlock(); return fmt.Sprint(results) })
	stop()
	closeLog(t, l)
	st.Close()

	// Restart: events emitted while the node was down are delivered, the
	// ones already delivered are not sent again.
	l2, st2 := openLog(t, path, 100)
	defer st2.Close()
	_, _ = l2.Emit(ctx, Event{Type: CertificateIssued, Detail: "while away"})
	stop2 := l2.StartWebhooks([]Webhook{{URL: gs.URL, Secret: "s3cret"}}, DeliveryOptions{RetryBase: 20 * time.Millisecond})
	defer stop2()
	testutil.WaitFor(t, "the event emitted before the restart", func() bool { return len(good.events()) == 5 })
	time.Sleep(100 * time.Millisecond)
	if got := good.events(); len(got) != 5 || got[4].Detail != "while away" {
		t.Errorf("after restart: %d events, last %+v", len(got), got[len(got)-1])
	}
}

func TestSign(t *testing.T) {
	got := Sign("k", time.Unix(1700000000, 0), []byte(`{"a":1}`))
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write([]byte(`1700000000.{"a":1}`))
	if want := "t=1700000000,v1=" + hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}
