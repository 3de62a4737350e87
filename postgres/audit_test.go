package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// sequenced drains the inbox into the chain and returns the events.
func sequenced(t *testing.T, e *env) []audit.Event {
	t.Helper()
	ctx := context.Background()
	for {
		got, err := e.db.Sequence(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
	}
	page, err := e.db.ChainPage(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, c := range page {
		var ev audit.Event
		if err := json.Unmarshal(c.Body, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestDirectSQLWritesAreAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	before := len(sequenced(t, e)) // the canary inserts of newEnv
	tok := e.mint(t, "sa", nil)
	// A write that commits leaves one event per statement, stamped from the
	// verified context, in the silo too.
	e.exec(t, tok, `INSERT INTO `+e.table("sa", "projects")+` (name) SELECT 'p' || g FROM generate_series(1, 3) g`)
	// A write that rolls back leaves none.
	err := postgres.ScopedTx(ctx, e.db.App(), tok, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM `+e.table("sa", "projects")); err != nil {
			return err
		}
		return errors.New("changed my mind")
	})
	if err == nil {
		t.Fatal("rollback expected")
	}
	evs := sequenced(t, e)
	if len(evs) != before+1 {
		t.Fatalf("%d events after one committed and one rolled-back statement, want %d", len(evs), before+1)
	}
	last := evs[len(evs)-1]
	if last.Action != "data:Insert" || last.Rows != 3 || last.TenantID != string(e.tenants["sa"].ID) ||
		last.Subject != "u-sa" || last.LoginRole != e.db.AppRole || !strings.HasSuffix(last.Resource, ":table/projects") {
		t.Fatalf("event %+v", last)
	}
	rep, err := e.db.VerifyAudit(ctx, nil, nil)
	if err != nil || rep.Break != nil || rep.Events != int64(len(evs)) {
		t.Fatalf("VerifyAudit = %+v, %v", rep, err)
	}
}

// TestAuditTampering edits the chain as the superuser, in every way, and
// demands that verification names the first event touched.
func TestAuditTampering(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		sql    string
		seq    int64
		reason string
	}{
		{"edit a body", `UPDATE bulkhead_audit.events SET body = replace(body, 'allow', 'deny') WHERE seq = 3`, 3, "edited"},
		{"edit a decision column and body", `UPDATE bulkhead_audit.events SET body = replace(body, '"allow"', '"deny"') WHERE seq = 2`, 2, "edited"},
		{"delete an event", `DELETE FROM bulkhead_audit.events WHERE seq = 2`, 3, "sequence"},
		{"reorder two events", `UPDATE bulkhead_audit.events SET seq = 100 WHERE seq = 2; UPDATE bulkhead_audit.events SET seq = 2 WHERE seq = 3;
			UPDATE bulkhead_audit.events SET seq = 3 WHERE seq = 100`, 2, "previous-hash"},
		{"insert a forged event", `UPDATE bulkhead_audit.events SET seq = seq + 100 WHERE seq >= 3; UPDATE bulkhead_audit.events SET seq = seq - 99 WHERE seq >= 100;
			INSERT INTO bulkhead_audit.events SELECT 3, gen_random_uuid(), at, tenant_id, sub, action, decision, visibility, body, prev_hash, hash FROM bulkhead_audit.events WHERE seq = 2`, 3, "previous-hash"},
		{"cut off the tail after a checkpoint", `DELETE FROM bulkhead_audit.events WHERE seq = (SELECT max(seq) FROM bulkhead_audit.events)`, 8, "cut off"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t) // four tenants created and four inserts: eight events
			ctx := t.Context()
			if n := len(sequenced(t, e)); n != 8 {
				t.Fatalf("%d events, want 8", n)
			}
			if _, err := e.db.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			if rep, err := e.db.VerifyAudit(ctx, nil, nil); err != nil || rep.Break != nil {
				t.Fatalf("before tampering: %+v %v", rep, err)
			}
			conn := e.adminConn(t)
			for _, s := range strings.Split(tt.sql, ";") {
				if _, err := conn.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			rep, err := e.db.VerifyAudit(ctx, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Break == nil || rep.Break.Seq != tt.seq || !strings.Contains(rep.Break.Reason, tt.reason) {
				t.Fatalf("VerifyAudit after %q = %+v, want a break at %d mentioning %q", tt.name, rep.Break, tt.seq, tt.reason)
			}
		})
	}
}

func TestAppRoleCannotTouchAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	tok := e.mint(t, "pa", nil)
	for _, sql := range []string{
		`SELECT * FROM bulkhead_audit.events`,
		`INSERT INTO bulkhead_audit.inbox (event) VALUES ('{}')`,
		`DELETE FROM bulkhead_audit.inbox`,
		`UPDATE bulkhead_audit.events SET body = ''`,
		`SELECT bulkhead_audit.record_change()`,
		`ALTER TABLE app.projects DISABLE TRIGGER audit_insert`,
	} {
		err := postgres.ScopedTx(ctx, e.db.App(), tok, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
		if err == nil {
			t.Errorf("%s: allowed for the app role", sql)
		}
	}
}

func TestAuditRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	if n := len(sequenced(t, e)); n != 8 {
		t.Fatalf("%d events, want 8", n)
	}
	conn := e.adminConn(t)
	// Date the first two events in the past, then remove what is older
	// than a day.
	if _, err := conn.Exec(ctx, `UPDATE bulkhead_audit.events SET at = at - interval '10 days' WHERE seq <= 2`); err != nil {
		t.Fatal(err)
	}
	ret, err := e.db.PruneAudit(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || ret == nil || ret.ThroughSeq != 2 || ret.Removed != 2 {
		t.Fatalf("PruneAudit = %+v, %v", ret, err)
	}
	rep, err := e.db.VerifyAudit(ctx, nil, nil)
	if err != nil || rep.Break != nil || rep.Events != 6 || rep.Retained == nil {
		t.Fatalf("after retention: %+v %v", rep, err)
	}
	// Deleting more events without a record is caught.
	if _, err := conn.Exec(ctx, `DELETE FROM bulkhead_audit.events WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	if rep, _ := e.db.VerifyAudit(ctx, nil, nil); rep.Break == nil || rep.Break.Seq != 4 {
		t.Fatalf("events deleted behind retention's back: %+v", rep.Break)
	}
	// So is a retention record edited to cover them.
	if _, err := conn.Exec(ctx, `UPDATE bulkhead_audit.retention SET through_seq = 3`); err != nil {
		t.Fatal(err)
	}
	if rep, _ := e.db.VerifyAudit(ctx, nil, nil); rep.Break == nil || !strings.Contains(rep.Break.Reason, "retention record") {
		t.Fatalf("forged retention record: %+v", rep.Break)
	}
}

// TestControlChangesAuditedInTheirTransaction checks that a control-plane
// change writes its event, stamped with the actor, and that a change that
// fails writes none.
func TestControlChangesAuditedInTheirTransaction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := postgres.WithActor(t.Context(), postgres.Actor{Subject: "cli:tester", RequestID: "req-1"})
	before := len(sequenced(t, e))
	sa := e.tenants["sa"].ID
	if err := e.db.SetTenantStatus(ctx, sa, tenant.Suspended); err != nil {
		t.Fatal(err)
	}
	got := sequenced(t, e)
	if len(got) != before+1 {
		t.Fatalf("%d events after one change, want %d", len(got), before+1)
	}
	last := got[len(got)-1]
	if last.Action != "tenants:Update" || last.Subject != "cli:tester" || last.RequestID != "req-1" || last.TenantID != string(sa) ||
		last.Resource != "brn:bulkhead:control:"+string(sa)+":tenant/"+string(sa) || string(last.Detail) != `{"status":"suspended"}` {
		t.Fatalf("change event = %+v", last)
	}
	// Failed changes: an unknown tenant, a policy name the catalog refuses.
	if err := e.db.SetTenantStatus(ctx, tenant.ID(uuid.NewString()), tenant.Active); err == nil {
		t.Fatal("SetTenantStatus(unknown tenant) succeeded")
	}
	if _, err := e.db.PutPolicy(ctx, sa, "no spaces allowed", `{"version":"2026-01-01","statements":[]}`); err == nil {
		t.Fatal("PutPolicy(bad name) succeeded")
	}
	if n := len(sequenced(t, e)); n != before+1 {
		t.Fatalf("%d events after two failed changes, want %d", n, before+1)
	}
}

// TestZeroRowWritesVerifyLess counts the runs of the verifier for an
// UPDATE and a DELETE, with their audit trigger and without it (disabled
// in the transaction), when they change one row and when they change none.
// The trigger verifies the context only when it records an event: for one
// row it adds a run, for none it adds nothing.
func TestZeroRowWritesVerifyLess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	conn := e.adminConn(t)
	// The superuser counts function calls, then works as the app role under
	// row security, with a context whose audience is its own login.
	if _, err := conn.Exec(ctx, `SET track_functions = 'all'`); err != nil {
		t.Fatal(err)
	}
	var login string
	if err := conn.QueryRow(ctx, `SELECT session_user`).Scan(&login); err != nil {
		t.Fatal(err)
	}
	tok := e.mint(t, "pa", func(c *ctxtoken.Claims) { c.Audience = login })
	projects := e.table("pa", "projects")
	verifications := func(sql string, trigger bool) (runs, rows int64) {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if !trigger {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+projects+` DISABLE TRIGGER USER`); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.Exec(ctx, postgres.SetContextSQL, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_app`); err != nil {
			t.Fatal(err)
		}
		// Calls not yet flushed to the statistics count too: take the
		// difference around the statement. The counters are the
		// superuser's to read (app roles may not run pg_stat_get_*).
		calls := func() (n int64) {
			if _, err := tx.Exec(ctx, `RESET ROLE`); err != nil {
				t.Fatal(err)
			}
			if err := tx.QueryRow(ctx, `SELECT coalesce(pg_stat_get_xact_function_calls('bulkhead.context()'::regprocedure), 0)`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_app`); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := calls()
		tag, err := tx.Exec(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return calls() - before, tag.RowsAffected()
	}
	for _, verb := range []string{`UPDATE ` + projects + ` SET name = name || '!'`, `DELETE FROM ` + projects} {
		for _, c := range []struct {
			where string
			rows  int64
			extra int64 // the trigger's runs
		}{{` WHERE name = 'canary-pa'`, 1, 1}, {` WHERE name = 'no such project'`, 0, 0}} {
			with, n := verifications(verb+c.where, true)
			without, _ := verifications(verb+c.where, false)
			if n != c.rows {
				t.Fatalf("%s%s: %d rows, want %d", verb, c.where, n, c.rows)
			}
			if with-without != c.extra {
				t.Errorf("%s%s: the verifier ran %d times with the audit trigger and %d without, want %d more with it", verb, c.where, with, without, c.extra)
			}
		}
	}
}

// TestFindEventsWindow: with MaxScan, a read examines at most that many of
// a tenant's visible events, whatever the filters; paging on from where
// each read stopped finds every matching event, and never one of another
// tenant or one the tenant may not see.
func TestFindEventsWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sequenced(t, e) // the setup's own events first
	pa, pb := string(e.tenants["pa"].ID), string(e.tenants["pb"].ID)
	var evs []audit.Event
	for i := range 30 {
		ev := audit.Event{EventID: uuid.NewString(), At: time.Now(), TenantID: pa, Action: "data:Select", Decision: audit.Allow, Visibility: audit.VisibleTenant}
		switch {
		case i == 12 || i == 27:
			ev.Action = "data:Delete"
		case i%7 == 3:
			ev.TenantID = pb // another tenant's, interleaved
			ev.Action = "data:Delete"
		case i%5 == 4:
			ev.Visibility = audit.VisiblePlatform // the tenant may not see it
			ev.Action = "data:Delete"
		}
		evs = append(evs, ev)
	}
	if err := e.db.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	sequenced(t, e)
	// The tenant's visible events, in order, read without a bound.
	var visible []int64
	for after := int64(0); ; {
		page, err := e.db.FindEvents(ctx, postgres.EventFilter{TenantID: &pa, After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Events {
			var ev struct{ Seq int64 }
			json.Unmarshal(raw, &ev)
			visible = append(visible, ev.Seq)
		}
		if len(page.Events) < 1000 {
			break
		}
		after = page.Next
	}
	const window = 4
	action := "data:Delete"
	var found []string
	var after int64
	calls := 0
	for calls = 1; calls < 100; calls++ {
		page, err := e.db.FindEvents(ctx, postgres.EventFilter{TenantID: &pa, Action: &action, After: after, Limit: 10, MaxScan: window})
		if err != nil {
			t.Fatal(err)
		}
		last := page.Next
		// It examined at most window events after after, and stopped at
		// the last one examined.
		examined := 0
		for _, s := range visible {
			if s > after && s <= last {
				examined++
			}
		}
		if examined > window || (last != 0 && examined == 0) {
			t.Fatalf("a read after %d ended at %d: %d events examined, window %d", after, last, examined, window)
		}
		for _, raw := range page.Events {
			var ev audit.Event
			json.Unmarshal(raw, &ev)
			if ev.TenantID != pa || ev.Visibility != audit.VisibleTenant || ev.Action != action {
				t.Fatalf("a read returned %+v", ev)
			}
			found = append(found, ev.EventID)
		}
		if last == 0 {
			break // nothing left to examine
		}
		after = last
	}
	want := []string{evs[12].EventID, evs[27].EventID}
	if strings.Join(found, ",") != strings.Join(want, ",") {
		t.Fatalf("paging through the windows found %v, want %v", found, want)
	}
	if min := (len(visible)+window-1)/window + 1; calls != min {
		t.Fatalf("%d reads for %d visible events in windows of %d, want %d", calls, len(visible), window, min)
	}

	// The same, paging by event ids without sequence numbers, as a tenant
	// reads: the same events, and no seq in them.
	found = nil
	var afterEvent *string
	for calls = 1; calls < 100; calls++ {
		page, err := e.db.FindEvents(ctx, postgres.EventFilter{TenantID: &pa, Action: &action, AfterEvent: afterEvent, Limit: 10, MaxScan: window, OmitSeq: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Events {
			if strings.Contains(string(raw), `"seq"`) {
				t.Fatalf("an event with its sequence number: %s", raw)
			}
			var ev audit.Event
			json.Unmarshal(raw, &ev)
			found = append(found, ev.EventID)
		}
		if page.NextEvent == "" {
			break
		}
		afterEvent = &page.NextEvent
	}
	if strings.Join(found, ",") != strings.Join(want, ",") {
		t.Fatalf("paging by event ids found %v, want %v", found, want)
	}
	// An event id the tenant may not page from is refused, the same way
	// whether it is another tenant's, one it may not see, or none.
	for what, id := range map[string]string{"another tenant's event": evs[3].EventID, "an event it may not see": evs[4].EventID,
		"no event": uuid.NewString(), "not an id": "12"} {
		if _, err := e.db.FindEvents(ctx, postgres.EventFilter{TenantID: &pa, AfterEvent: &id, MaxScan: window, OmitSeq: true}); err != postgres.ErrUnknownEvent {
			t.Fatalf("after %s: %v; want ErrUnknownEvent", what, err)
		}
	}
}

// TestAppendEventsRejects: an event whose content the trail cannot hold
// is refused with audit.ErrRejected in the chain, so that the writer
// commits the events it shared a commit with on their own; a NUL is not
// such content.
func TestAppendEventsRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	good := audit.Event{EventID: uuid.NewString(), At: time.Now(), Action: "data:Select", Decision: audit.Deny, Resource: "path\x00with a NUL"}
	bad := audit.Event{EventID: uuid.NewString(), At: time.Now(), Action: "data:Select", Decision: audit.Deny, Detail: json.RawMessage(`{"unclosed":`)}
	if err := e.db.AppendEvents(ctx, []audit.Event{good, bad}); !errors.Is(err, audit.ErrRejected) {
		t.Fatalf("a batch with an event that cannot be encoded: %v; want audit.ErrRejected", err)
	}
	if err := e.db.AppendEvents(ctx, []audit.Event{good}); err != nil {
		t.Fatalf("an event with a NUL: %v", err)
	}
	for _, ev := range sequenced(t, e) {
		if ev.EventID == bad.EventID {
			t.Fatal("the refused batch's bad event is in the trail")
		}
		if ev.EventID == good.EventID && ev.Resource != "path\uFFFDwith a NUL" {
			t.Fatalf("the NUL came back as %q", ev.Resource)
		}
	}
}

// TestSequencerSurvivesSessionSettings: business code that changes its
// session's TimeZone before a write cannot make an event the sequencer
// fails on (which stopped the chain for every tenant), and an inbox row
// that does not decode anyway is chained as audit:Unreadable, visible to
// platform administrators only, rather than blocking the rows after it.
func TestSequencerSurvivesSessionSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sequenced(t, e)
	err := postgres.ScopedTx(ctx, e.db.App(), e.mint(t, "pa", nil), postgres.ScopeOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL TimeZone = 'XXX-100'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+e.table("pa", "projects")+` (name) VALUES ('odd-clock')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A row no writer of bulkhead's makes, as if the inbox were damaged.
	conn := e.adminConn(t)
	if _, err := conn.Exec(ctx, `INSERT INTO bulkhead_audit.inbox (event) VALUES ('{"at": "yesterday", "action": "data:Insert"}')`); err != nil {
		t.Fatal(err)
	}
	e.exec(t, e.mint(t, "pb", nil), `INSERT INTO `+e.table("pb", "projects")+` (name) VALUES ('after')`)
	var actions []string
	for _, ev := range sequenced(t, e) {
		switch {
		case ev.Action == "data:Insert" && ev.Tenant == "pa":
			if ev.At.Location() != time.UTC || time.Since(ev.At) > time.Hour || time.Since(ev.At) < -time.Hour {
				t.Errorf("pa's insert at %v, want now in UTC", ev.At)
			}
			actions = append(actions, "pa:insert")
		case ev.Action == "data:Insert" && ev.Tenant == "pb":
			actions = append(actions, "pb:insert")
		case ev.Action == "audit:Unreadable":
			if ev.Visibility != audit.VisiblePlatform || ev.Decision != audit.Invalid || !strings.Contains(string(ev.Detail), "yesterday") {
				t.Errorf("the unreadable row's event: %+v %s", ev, ev.Detail)
			}
			actions = append(actions, "unreadable")
		}
	}
	if got := strings.Join(actions, ","); !strings.HasSuffix(got, "pa:insert,unreadable,pb:insert") {
		t.Fatalf("chained %q, want pa's insert, the unreadable row, then pb's insert", got)
	}
	if rep, err := e.db.VerifyAudit(ctx, nil, nil); err != nil || rep.Break != nil {
		t.Fatalf("verify: %v %v", rep.Break, err)
	}
}

// TestPruneEverythingContinuesTheChain: a retention run that removes every
// event leaves the chain to continue from its record, not from the
// genesis: the next event gets the next sequence number, the trail
// verifies, and checkpoints are stored again.
func TestPruneEverythingContinuesTheChain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	if n := len(sequenced(t, e)); n != 8 {
		t.Fatalf("%d events, want 8", n)
	}
	if _, err := e.db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	ret, err := e.db.PruneAudit(ctx, time.Now().Add(time.Hour))
	if err != nil || ret == nil || ret.ThroughSeq != 8 || ret.Removed != 8 {
		t.Fatalf("PruneAudit(every event) = %+v, %v", ret, err)
	}
	if err := e.db.AppendEvents(ctx, []audit.Event{{Action: "data:Select", Decision: audit.Deny}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.db.Sequence(ctx, 100)
	if err != nil || len(got) != 1 || got[0].Seq != 9 {
		var seqs []int64
		for _, c := range got {
			seqs = append(seqs, c.Seq)
		}
		t.Fatalf("Sequence after pruning every event chained events %v, %v; want event 9", seqs, err)
	}
	c, err := e.db.Checkpoint(ctx)
	if err != nil || c.Seq != 9 {
		t.Fatalf("Checkpoint = %+v, %v", c, err)
	}
	rep, err := e.db.VerifyAudit(ctx, nil, nil)
	if err != nil || rep.Break != nil || rep.Events != 1 || rep.Retained == nil || rep.Checkpoints != 2 {
		t.Fatalf("VerifyAudit after pruning every event = %+v (break %v), %v; want 1 event, 2 checkpoints, no break", rep, rep.Break, err)
	}
}

// TestAuditColumnTampering edits, one at a time, the columns copied out
// of an event's body, which FindEvents filters on and PruneAudit selects
// by, leaving the body and the hashes alone, and demands that verification
// names the event and the column.
func TestAuditColumnTampering(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	if n := len(sequenced(t, e)); n != 8 {
		t.Fatalf("%d events, want 8", n)
	}
	conn := e.adminConn(t)
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE orig AS SELECT * FROM bulkhead_audit.events WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	for col, set := range map[string]string{
		"event_id":   `event_id = gen_random_uuid()`,
		"at":         `at = at - interval '10 days'`,
		"tenant_id":  `tenant_id = gen_random_uuid()`,
		"sub":        `sub = 'someone-else'`,
		"action":     `action = 'audit:Forged'`,
		"decision":   `decision = CASE decision WHEN 'allow' THEN 'deny' ELSE 'allow' END`,
		"visibility": `visibility = CASE visibility WHEN 'tenant' THEN 'platform' ELSE 'tenant' END`,
	} {
		if _, err := conn.Exec(ctx, `UPDATE bulkhead_audit.events SET `+set+` WHERE seq = 3`); err != nil {
			t.Fatalf("%s: %v", set, err)
		}
		rep, err := e.db.VerifyAudit(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := "its columns do not match its body (" + col + ")"; rep.Break == nil || rep.Break.Seq != 3 || rep.Break.Reason != want {
			t.Errorf("VerifyAudit after %s = %v, want a break at 3: %s", set, rep.Break, want)
		}
		if _, err := conn.Exec(ctx, `UPDATE bulkhead_audit.events e SET (event_id, at, tenant_id, sub, action, decision, visibility) =
			(SELECT event_id, at, tenant_id, sub, action, decision, visibility FROM orig) WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
	}
	// The tenant column emptied: the event no longer shows in its tenant's trail.
	if _, err := conn.Exec(ctx, `UPDATE bulkhead_audit.events SET tenant_id = NULL WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.db.VerifyAudit(ctx, nil, nil); err != nil || rep.Break == nil || rep.Break.Seq != 3 || !strings.Contains(rep.Break.Reason, "(tenant_id)") {
		t.Fatalf("VerifyAudit after the tenant column was emptied = %+v, %v", rep, err)
	}
	if _, err := conn.Exec(ctx, `UPDATE bulkhead_audit.events SET tenant_id = (SELECT tenant_id FROM orig) WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.db.VerifyAudit(ctx, nil, nil); err != nil || rep.Break != nil {
		t.Fatalf("VerifyAudit after the columns were restored = %+v, %v", rep, err)
	}
}

// TestVerifyWhileChaining runs verification over some 20,000 events while
// another goroutine keeps appending, chaining and signing checkpoints, as
// a live server does: a checkpoint signed while verification reads must
// not look like a cut-off tail. An external checkpoint signed after
// verification took its snapshot is checked against the events chained
// since.
func TestVerifyWhileChaining(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	batch := make([]audit.Event, 1000)
	for range 20 {
		for i := range batch {
			batch[i] = audit.Event{At: time.Now(), Action: "data:Select", Decision: audit.Deny, Visibility: audit.VisiblePlatform}
		}
		if err := e.db.AppendEvents(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Sequence(ctx, 1000); err != nil {
			t.Fatal(err)
		}
	}
	sequenced(t, e)
	// append, chain and sign one checkpoint, as the sequencer does.
	step := func() (audit.Checkpoint, error) {
		if err := e.db.AppendEvents(ctx, []audit.Event{{Action: "data:Select", Decision: audit.Deny}, {Action: "data:Insert", Decision: audit.Deny}}); err != nil {
			return audit.Checkpoint{}, err
		}
		if _, err := e.db.Sequence(ctx, 1000); err != nil {
			return audit.Checkpoint{}, err
		}
		return e.db.Checkpoint(ctx)
	}
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := step(); err != nil {
				done <- err
				return
			}
		}
	}()
	for i := range 4 {
		rep, err := e.db.VerifyAudit(ctx, nil, nil)
		if err != nil || rep.Break != nil || rep.Events < 20000 {
			close(stop)
			<-done
			t.Fatalf("verification %d while chaining: %+v (break %v), %v", i+1, rep, rep.Break, err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// An external checkpoint of an event chained after the snapshot: the
	// sink it comes from is read as verification goes (here, it is filled
	// in from the progress callback, after the snapshot began).
	external := make([]audit.Checkpoint, 1)
	var stepErr error
	rep, err := e.db.VerifyAudit(ctx, external, func(n int64) {
		if external[0].Seq == 0 {
			external[0], stepErr = step()
		}
	})
	if stepErr != nil {
		t.Fatal(stepErr)
	}
	if err != nil || rep.Break != nil || external[0].Seq == 0 {
		t.Fatalf("verification with a checkpoint signed after its snapshot (%d): %+v (break %v), %v", external[0].Seq, rep, rep.Break, err)
	}
}

// TestInvalidContextLogCannotBeForged follows the test cluster's server
// log as serve --pg-log does, while an app role's own SQL writes the
// verifier's report naming another login role (a DO block's RAISE LOG,
// with and without a DETAIL, with the verifiers' CONTEXT lines after a
// newline in its text, and a cast error that echoes it): none of it
// becomes an event, and a real refusal by bulkhead.context() does.
func TestInvalidContextLogCannotBeForged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	var dir string
	if err := e.db.Admin().QueryRow(ctx, `SELECT current_setting('data_directory')`).Scan(&dir); err != nil {
		t.Fatal(err)
	}
	// pgcluster, and .ci/run, write the server log next to the data
	// directory; another cluster named by BULKHEAD_TEST_DATABASE_URL may not.
	tail, err := audit.OpenLog(filepath.Join(filepath.Dir(dir), "postgres.log"))
	if err != nil {
		t.Skipf("the server log is not next to the data directory (%s): %v", dir, err)
	}
	got := make(chan audit.Event, 64)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go tail.Follow(fctx, func(ev audit.Event) { got <- ev })
	const forged = `bulkhead: invalid tenant context (expired) for role bulkhead_gw_victim`
	for _, sql := range []string{
		`DO $$ BEGIN RAISE LOG '` + forged + `'; END $$`,
		`DO $$ BEGIN RAISE LOG '` + forged + `' USING DETAIL = 'x'; END $$`,
		`SELECT '` + forged + `'::int`,
		`SELECT 1 -- LOG:  ` + forged,
		// The verifiers' CONTEXT lines inside the message: PostgreSQL
		// starts each line after the first with a tab.
		`DO $$ BEGIN RAISE LOG E'` + forged + `\nCONTEXT:  bulkhead.context(), the native verifier'; END $$`,
		`DO $$ BEGIN RAISE LOG E'` + forged + `\nCONTEXT:  PL/pgSQL function bulkhead.context() line 17 at RAISE'; END $$`,
		`DO $$ BEGIN RAISE LOG E'` + forged + `\r\nCONTEXT:  bulkhead.context(), the native verifier\r\n'; END $$`,
	} {
		postgres.ScopedTx(ctx, e.db.App(), e.mint(t, "pa", nil), postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
	}
	// A real refusal, after them in the log.
	bad := e.mint(t, "pa", nil)
	e.names(t, bad[:len(bad)-2]+"AA", "pa")
	for {
		select {
		case ev := <-got:
			if ev.LoginRole == "bulkhead_gw_victim" {
				t.Fatalf("an app role's own SQL made an event: %+v %s", ev, ev.Detail)
			}
			if ev.LoginRole == e.db.AppRole {
				// Test databases copied from one template share its
				// gateway role, so parallel tests' refusals (a context
				// issued before its tenant moved, say) name it too:
				// only this test's reason is waited for.
				var d struct {
					Confirmed bool
					Why       string
				}
				if err := json.Unmarshal(ev.Detail, &d); err != nil {
					t.Fatalf("the refusal's detail %s: %v", ev.Detail, err)
				}
				if d.Why != "bad signature" {
					continue
				}
				// The verifier's CONTEXT line followed it in the real log.
				if !d.Confirmed {
					t.Fatalf("the real refusal is not confirmed: %s", ev.Detail)
				}
				return
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the verifier's real report was not followed")
		}
	}
}

// TestUpdateEventsNameOldIDs: an UPDATE that changes a row's id is audited
// with the id it had (old_ids) as well as the one it has (ids), in the pool
// and in a silo; one that keeps its ids has no old_ids.
func TestUpdateEventsNameOldIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	for _, slug := range []string{"pa", "sa"} {
		sequenced(t, e)
		tok := e.mint(t, slug, nil)
		table := e.table(slug, "projects")
		var oldID, newID string
		err := postgres.ScopedTx(ctx, e.db.App(), tok, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT id::text FROM `+table+` LIMIT 1`).Scan(&oldID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE `+table+` SET name = 'renamed'`); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `UPDATE `+table+` SET id = gen_random_uuid() WHERE id = $1 RETURNING id::text`, oldID).Scan(&newID)
		})
		if err != nil {
			t.Fatalf("%s: %v", slug, err)
		}
		evs := sequenced(t, e)
		if len(evs) < 2 {
			t.Fatalf("%s: %d events", slug, len(evs))
		}
		var rename, move struct {
			IDs    []string `json:"ids"`
			OldIDs []string `json:"old_ids"`
		}
		a, b := evs[len(evs)-2], evs[len(evs)-1]
		if a.Action != "data:Update" || b.Action != "data:Update" || json.Unmarshal(a.Detail, &rename) != nil || json.Unmarshal(b.Detail, &move) != nil {
			t.Fatalf("%s: the last two events are %s %s and %s %s", slug, a.Action, a.Detail, b.Action, b.Detail)
		}
		if len(rename.IDs) != 1 || rename.OldIDs != nil {
			t.Errorf("%s: a rename's detail %s, want its id and no old_ids", slug, a.Detail)
		}
		if len(move.IDs) != 1 || move.IDs[0] != newID || len(move.OldIDs) != 1 || move.OldIDs[0] != oldID {
			t.Errorf("%s: changing the id from %s to %s was audited as %s", slug, oldID, newID, b.Detail)
		}
	}
}

// TestIdleSequencerTakesNoLock: with the inbox empty, Sequence returns at
// once even while another transaction holds the chain's table locked (a
// retention run does); with an event waiting, it waits for the lock, as
// it must to extend the chain.
func TestIdleSequencerTakesNoLock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sequenced(t, e)
	holder := e.adminConn(t)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `LOCK TABLE bulkhead_audit.events IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if got, err := e.db.Sequence(short, 100); err != nil || len(got) != 0 {
		t.Fatalf("an idle Sequence behind the lock: %d events, %v; want none at once", len(got), err)
	}
	// The witness: with work to do, it needs the lock.
	if _, err := e.adminConn(t).Exec(ctx, `INSERT INTO bulkhead_audit.inbox (event) VALUES ('{"action": "test:Witness"}')`); err != nil {
		t.Fatal(err)
	}
	waiting, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := e.db.Sequence(waiting, 100); err == nil {
		t.Fatal("Sequence extended the chain while another transaction held it locked")
	}
	tx.Rollback(ctx)
	if got, err := e.db.Sequence(ctx, 100); err != nil || len(got) != 1 {
		t.Fatalf("after the lock: %d events, %v; want the witness", len(got), err)
	}
}
