package audit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Resolved alarms are never dropped: every source address that once went
// over the denial limit keeps an Alarm in memory for the life of the
// process (and in every GET /v1/alarms answer and every /metrics scrape).
// Denials without credentials come from addresses the client chooses.
// TestResolvedAlarmsAreForgotten: an alarm per source address stayed for
// the life of the process once resolved, so addresses that crossed the
// denial limit grew the state without bound; resolved alarms now go after
// ResolvedRetention, firing ones never.
func TestResolvedAlarmsAreForgotten(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a := NewAlarms(Rules{DenialLimit: 20, DenialWindow: time.Minute}, func() time.Time { return now })
	const sources = 5000
	for i := 0; i < sources; i++ {
		ip := fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff)
		for j := 0; j < 21; j++ {
			a.Observe(context.Background(), Event{Decision: Deny, SourceIP: ip})
		}
	}
	// One more address keeps denying: its alarm keeps firing.
	busy := func() {
		for j := 0; j < 21; j++ {
			a.Observe(context.Background(), Event{Decision: Deny, SourceIP: "192.0.2.1"})
		}
	}
	busy()
	now = now.Add(10 * time.Minute)
	busy()
	a.Tick(context.Background()) // the others resolve now
	if n := len(a.State()); n != sources+1 {
		t.Fatalf("%d alarms just after they resolved, want all %d kept for a while", n, sources+1)
	}
	now = now.Add(ResolvedRetention + time.Minute)
	busy()
	a.Tick(context.Background())
	st := a.State()
	if len(st) != 1 || !st[0].Firing || st[0].ID != "denial_burst:ip:192.0.2.1" {
		t.Fatalf("after the retention: %d alarms (%+v), want only the firing one", len(st), st[:min(len(st), 2)])
	}
}
