package postgres_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// TestTenantReadSkipsHiddenEvents: a tenant's read of its audit trail
// never visits the events it may not see, whatever their number. Those
// include the cross-tenant probe findings recorded under its own tenant
// id; had the read visited and filtered them, every request of the
// tenant that asked for an id existing in another tenant would make its
// later reads slower, an oracle it could time. EXPLAIN ANALYZE counts the
// events each read visited and dropped (bitmap scans, which would count
// them differently, are turned off).
func TestTenantReadSkipsHiddenEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sequenced(t, e)
	// A trail of any size, where one tenant's events are a few among many.
	conn := e.adminConn(t)
	if _, err := conn.Exec(ctx, `INSERT INTO bulkhead_audit.events (seq, event_id, at, tenant_id, sub, action, decision, visibility, body, prev_hash, hash)
		SELECT m + g, gen_random_uuid(), now(), gen_random_uuid(), 'u', 'data:Select', 'allow', 'tenant', '{}', '\x00', '\x00'
		FROM generate_series(1, 100000) g, (SELECT coalesce(max(seq), 0) AS m FROM bulkhead_audit.events) s`); err != nil {
		t.Fatal(err)
	}
	pa, pb := string(e.tenants["pa"].ID), string(e.tenants["pb"].ID)
	var evs []audit.Event
	for i := range 400 {
		ev := audit.Event{EventID: uuid.NewString(), At: time.Now(), TenantID: pa, Action: "data:Select", Decision: audit.Allow, Visibility: audit.VisibleTenant}
		switch {
		case i%10 == 0:
		case i%10 == 1:
			ev.TenantID = pb
		default: // a probe finding of pa's: platform administrators only
			ev.Action, ev.Decision, ev.Visibility = "data:Probe", audit.Probe, audit.VisiblePlatform
		}
		evs = append(evs, ev)
	}
	if err := e.db.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	sequenced(t, e)
	all, err := e.db.FindEvents(ctx, postgres.EventFilter{TenantID: &pa, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	visible := len(all.Events)
	for _, set := range []string{`SET enable_bitmapscan = off`, `ANALYZE bulkhead_audit.events`} {
		if _, err := conn.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	action := "data:Select"
	for name, f := range map[string]postgres.EventFilter{
		"a page":                 {TenantID: &pa, Limit: 1000, MaxScan: 5000, OmitSeq: true},
		"a page of one action":   {TenantID: &pa, Action: &action, Limit: 10, MaxScan: 5000, OmitSeq: true},
		"without a bound":        {TenantID: &pa, Limit: 1000},
		"after the first events": {TenantID: &pa, After: 5, Limit: 1000, MaxScan: 5000, OmitSeq: true},
	} {
		sql, args := postgres.EventsQuery(f)
		var plan []byte
		if err := conn.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+sql, args...).Scan(&plan); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var doc []struct{ Plan planNode }
		if err := json.Unmarshal(plan, &doc); err != nil || len(doc) != 1 {
			t.Fatalf("%s: the plan %s: %v", name, plan, err)
		}
		visited, dropped := doc[0].Plan.events()
		if dropped != 0 || visited > visible {
			t.Errorf("%s: a tenant's read visited %d events and dropped %d; it may see %d\n%s", name, visited, dropped, visible, plan)
		}
	}
}

// planNode is a node of EXPLAIN (FORMAT JSON) output.
type planNode struct {
	Relation string     `json:"Relation Name"`
	Rows     int        `json:"Actual Rows"`
	Loops    int        `json:"Actual Loops"`
	Filtered int        `json:"Rows Removed by Filter"`
	Recheck  int        `json:"Rows Removed by Index Recheck"`
	Plans    []planNode `json:"Plans"`
}

// events sums, over the scans of bulkhead_audit.events under n, the rows
// they returned and the rows they read and dropped.
func (n planNode) events() (visited, dropped int) {
	if n.Relation == "events" {
		visited += n.Rows * max(1, n.Loops)
		dropped += (n.Filtered + n.Recheck) * max(1, n.Loops)
	}
	for _, c := range n.Plans {
		v, d := c.events()
		visited, dropped = visited+v, dropped+d
	}
	return visited, dropped
}
