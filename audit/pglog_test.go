package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseInvalidContext(t *testing.T) {
	for _, tt := range []struct {
		line, why, role string
		ok              bool
	}{
		{`2026-11-25 22:00:00.000 UTC [123] LOG:  bulkhead: invalid tenant context (bad signature) for role bulkhead_fn_orders`, "bad signature", "bulkhead_fn_orders", true},
		{`... LOG:  bulkhead: invalid tenant context (audience is another login role) for role bulkhead_gw_ab12`, "audience is another login role", "bulkhead_gw_ab12", true},
		{`... LOG:  bulkhead: tenant context for a tenant that is not active (suspended) for role bulkhead_fn_x`, "tenant suspended", "bulkhead_fn_x", true},
		{`... LOG:  checkpoint starting: time`, "", "", false},
	} {
		e, ok := ParseInvalidContext(tt.line)
		if ok != tt.ok || (ok && (e.LoginRole != tt.role || string(e.Detail) != `{"why":"`+tt.why+`"}` || e.Visibility != VisiblePlatform)) {
			t.Errorf("ParseInvalidContext(%q) = %+v %v", tt.line, e, ok)
		}
	}
}

func TestTailLogAndAlarm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "postgres.log")
	os.WriteFile(path, []byte("old line: bulkhead: invalid tenant context (expired) for role old_role\n"), 0o600)
	sink := &recordSink{}
	alarms := NewAlarms(Rules{InvalidContext: true}, nil, sink)
	got := make(chan Event, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tail, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	go tail.Follow(ctx, func(e Event) { alarms.Observe(ctx, e); got <- e })
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("LOG:  bulkhead: invalid tenant context (bad signature) for role bulkhead_fn_a\n")
	f.Close()
	select {
	case e := <-got:
		if e.LoginRole != "bulkhead_fn_a" {
			t.Fatalf("tailed %+v; the line written before the tail started must not be reported", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TailLog reported nothing")
	}
	if len(sink.got) != 1 || sink.got[0].Rule != "invalid_context" || !sink.got[0].Firing {
		t.Fatalf("alarms: %+v", sink.got)
	}
}
