package audit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

type recordSink struct{ got []Alarm }

func (r *recordSink) Notify(_ context.Context, a Alarm) { r.got = append(r.got, a) }

func TestDenialBurstFiresAndResolves(t *testing.T) {
	now := time.Unix(1000, 0)
	sink := &recordSink{}
	a := NewAlarms(Rules{DenialLimit: 3, DenialWindow: time.Minute, Quiet: 2 * time.Minute}, func() time.Time { return now }, sink)
	deny := Event{Decision: Deny, TenantID: "t1", Subject: "u1"}
	for i := 0; i < 3; i++ {
		a.Observe(context.Background(), deny)
	}
	if len(sink.got) != 0 {
		t.Fatalf("fired at the limit: %+v", sink.got)
	}
	a.Observe(context.Background(), deny)
	a.Observe(context.Background(), deny)
	if len(sink.got) != 1 || !sink.got[0].Firing || sink.got[0].Rule != "denial_burst" {
		t.Fatalf("over the limit: %+v", sink.got)
	}
	// Another principal's denials count apart.
	a.Observe(context.Background(), Event{Decision: Deny, TenantID: "t1", Subject: "u2"})
	if len(sink.got) != 1 {
		t.Fatalf("another principal fired: %+v", sink.got)
	}
	// Denials spread out over more than the window do not fire.
	now = now.Add(time.Hour)
	a.Tick(context.Background())
	if len(sink.got) != 2 || sink.got[1].Firing {
		t.Fatalf("resolve: %+v", sink.got)
	}
	for i := 0; i < 10; i++ {
		now = now.Add(30 * time.Second)
		a.Observe(context.Background(), Event{Decision: Deny, TenantID: "t1", Subject: "u3"})
	}
	if len(sink.got) != 2 {
		t.Fatalf("slow denials fired: %+v", sink.got)
	}
}

func TestProbeAndRowSecurityFire(t *testing.T) {
	sink := &recordSink{}
	a := NewAlarms(Rules{Probe: true, RowSecurity: true}, nil, sink)
	a.Observe(context.Background(), Event{Decision: Probe, TenantID: "t1"})
	a.Observe(context.Background(), Event{Decision: Deny, Code: "row_security_violation", TenantID: "t2", Subject: "fn"})
	a.Observe(context.Background(), Event{Decision: Allow, TenantID: "t3"})
	if len(sink.got) != 2 || sink.got[0].Rule != "cross_tenant_probe" || sink.got[1].Rule != "row_security_violation" {
		t.Fatalf("%+v", sink.got)
	}
	if st := a.State(); len(st) != 2 || !st[0].Firing {
		t.Fatalf("state %+v", st)
	}
}

func TestWebhookSignsAndRetries(t *testing.T) {
	secret := []byte("webhook-secret")
	var calls atomic.Int32
	got := make(chan Alarm, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first try fails
			return
		}
		if r.Header.Get("X-Bulkhead-Signature") != Signature(secret, body) {
			t.Errorf("bad signature %q", r.Header.Get("X-Bulkhead-Signature"))
		}
		// The timestamped signature binds the body to the time it was sent,
		// so a receiver can refuse a replay.
		ts, err := strconv.ParseInt(r.Header.Get("X-Bulkhead-Timestamp"), 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)) > time.Minute || time.Until(time.Unix(ts, 0)) > time.Minute {
			t.Errorf("X-Bulkhead-Timestamp %q, want the time of sending", r.Header.Get("X-Bulkhead-Timestamp"))
		}
		if got := r.Header.Get("X-Bulkhead-Signature-Timestamped"); got != TimestampedSignature(secret, ts, body) || got == TimestampedSignature(secret, ts-1, body) {
			t.Errorf("bad timestamped signature %q", got)
		}
		var a Alarm
		json.Unmarshal(body, &a)
		got <- a
	}))
	defer srv.Close()
	w := &WebhookSink{URL: srv.URL, Secret: secret, Backoff: time.Millisecond}
	w.Notify(context.Background(), Alarm{ID: "cross_tenant_probe:t1", Rule: "cross_tenant_probe", Firing: true})
	select {
	case a := <-got:
		if a.ID != "cross_tenant_probe:t1" || calls.Load() != 2 {
			t.Fatalf("delivered %+v after %d calls", a, calls.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook never delivered")
	}
}
