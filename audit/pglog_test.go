package audit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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
		{`... LOG:  bulkhead: tenant context for a tenant that is not active (moving) for role bulkhead_gw_ab12`, "tenant moving", "bulkhead_gw_ab12", true},
		{`... LOG:  bulkhead: invalid tenant context (issued before the tenant moved) for role bulkhead_fn_x`, "issued before the tenant moved", "bulkhead_fn_x", true},
		{`... LOG:  checkpoint starting: time`, "", "", false},
		{`2026-11-25 22:00:00.000 UTC [123] LOG:  00000: bulkhead: invalid tenant context (expired) for role bulkhead_gw_ab12`, "expired", "bulkhead_gw_ab12", true},
		{`LOG:  bulkhead: invalid tenant context (exp or iat missing or not a number) for role bulkhead_fn_x`, "exp or iat missing or not a number", "bulkhead_fn_x", true},
		// Business code in a minter runs as the business role.
		{`... LOG:  bulkhead: invalid tenant context (expired) for role bulkhead_tx_0a1b2c3d4e5f`, "expired", "bulkhead_tx_0a1b2c3d4e5f", true},
		// What any session's own SQL can make the server log.
		{`2026-11-25 22:00:00.000 UTC [123] ERROR:  invalid input syntax for type integer: "bulkhead: invalid tenant context (x) for role bulkhead_gw_victim" at character 8`, "", "", false},
		{`2026-11-25 22:00:00.000 UTC [123] STATEMENT:  SELECT 'bulkhead: invalid tenant context (x) for role bulkhead_gw_victim'::int`, "", "", false},
		{`2026-11-25 22:00:00.000 UTC [123] STATEMENT:  SELECT 1 -- LOG:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim`, "", "", false},
		{`2026-11-25 22:00:00.000 UTC [123] DETAIL:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim`, "", "", false},
		{"\tLOG:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim", "", "", false},
		{`2026-11-25 22:00:00.000 UTC [123] LOG:  bulkhead: invalid tenant context (x) for role bulkhead_gw_victim`, "", "", false},
		{`2026-11-25 22:00:00.000 UTC [123] LOG:  bulkhead: invalid tenant context (expired) for role postgres`, "", "", false},
		{`2026-11-25 22:00:00.000 UTC [123] LOG:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim and more`, "", "", false},
		{`2026-11-25 22:00:00.000 UTC [123] LOG:  statement: SELECT 'bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim'`, "", "", false},
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

// TestFollowChecksContext: a report counts when the CONTEXT line after it
// names bulkhead.context(), or when no CONTEXT line follows it at all;
// the same line raised by an app role's own code (a DO block, with or
// without a DETAIL) is dropped.
func TestFollowChecksContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "postgres.log")
	os.WriteFile(path, nil, 0o600)
	tail, err := OpenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Event, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tail.Follow(ctx, func(e Event) { got <- e })
	const p = "2026-11-25 22:00:00.000 UTC [123] "
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(p + "LOG:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim\n" +
		p + "CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n" +
		p + "LOG:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim\n" +
		p + "DETAIL:  x\n" + p + "CONTEXT:  PL/pgSQL function bulkhead.context() line 9 at RAISE\n" +
		p + "LOG:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim\n" +
		"\tCONTEXT:  PL/pgSQL function bulkhead.context() line 9 at RAISE\n" +
		p + "CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n" +
		p + "LOG:  bulkhead: invalid tenant context (bad signature) for role bulkhead_gw_real\n" +
		p + "CONTEXT:  PL/pgSQL function bulkhead.context() line 29 at RAISE\n" +
		"\tSQL function \"tenant_id\" statement 1\n" +
		p + "LOG:  bulkhead: invalid tenant context (retired key) for role bulkhead_gw_native\n" +
		p + "CONTEXT:  bulkhead.context(), the native verifier\n" +
		"\tPL/pgSQL function bulkhead.tenant_id() line 3 at RETURN\n" +
		p + "LOG:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim\n" +
		"\tCONTEXT:  bulkhead.context(), the native verifier\n" +
		p + "CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n" +
		p + "LOG:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim\n" +
		p + "CONTEXT:  bulkhead.context(), the native verifier, said the app\n" +
		p + "LOG:  bulkhead: invalid tenant context (expired) for role bulkhead_gw_terse\n" +
		p + "LOG:  checkpoint starting: time\n" +
		p + "LOG:  bulkhead: invalid tenant context (malformed) for role bulkhead_fn_last\n")
	f.Close()
	var roles []string
	for len(roles) < 4 {
		select {
		case e := <-got:
			var d struct{ Confirmed bool }
			json.Unmarshal(e.Detail, &d)
			roles = append(roles, e.LoginRole+map[bool]string{true: "+", false: "?"}[d.Confirmed])
		case <-time.After(10 * time.Second):
			t.Fatalf("reported %v, then nothing", roles)
		}
	}
	// "+": the verifier's CONTEXT line followed; "?": nothing told it from
	// a forgery.
	if want := "bulkhead_gw_real+,bulkhead_gw_native+,bulkhead_gw_terse?,bulkhead_fn_last?"; strings.Join(roles, ",") != want {
		t.Fatalf("reported %v, want %s", roles, want)
	}
}
