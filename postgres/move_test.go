package postgres_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// fastMove is a move that does not wait for minters' caches: these tests
// run none.
var fastMove = postgres.MoveOptions{Settle: 100 * time.Millisecond}

// moveRows returns the (table, id, name-or-title) rows of slug as the
// superuser sees them in schema, sorted.
func (e *env) moveRows(t *testing.T, schema, slug string) []string {
	t.Helper()
	conn := e.adminConn(t)
	rows, err := conn.Query(t.Context(), `SELECT 'projects/' || id || '/' || name || '/' || coalesce(description, '') FROM `+quote(schema)+`.projects WHERE tenant_id = $1
		UNION ALL SELECT 'tasks/' || id || '/' || project_id || '/' || title || '/' || done FROM `+quote(schema)+`.tasks WHERE tenant_id = $1`,
		string(e.tenants[slug].ID))
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func quote(s string) string { return `"` + s + `"` }

// schemaExists reports whether the schema exists.
func (e *env) schemaExists(t *testing.T, schema string) bool {
	t.Helper()
	var n int
	if err := e.adminConn(t).QueryRow(t.Context(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// reload re-reads slug's catalog row into the env, so that e.table and
// e.names follow its placement.
func (e *env) reload(t *testing.T, slug string) *tenant.Tenant {
	t.Helper()
	tn, err := e.db.FindTenantByID(t.Context(), e.tenants[slug].ID)
	if err != nil {
		t.Fatal(err)
	}
	e.tenants[slug] = tn
	return tn
}

// TestMoveTenantThereAndBack: a pool tenant with a project and a task
// moves into a silo of its own and back. Each way its rows arrive
// identical (same ids, same values), its old copy is gone, it is active,
// its fresh contexts read its rows in the new place, a context issued
// before the move verifies nowhere, and the other tenants, pool and silo,
// see exactly what they saw before.
func TestMoveTenantThereAndBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	tok := e.mint(t, "pa", nil)
	e.exec(t, tok, `INSERT INTO app.tasks (project_id, title) SELECT id, 'task-pa' FROM app.projects`)
	e.exec(t, tok, `UPDATE app.projects SET description = 'secret of pa'`)
	before := e.moveRows(t, "app", "pa")
	if len(before) != 2 {
		t.Fatalf("pa's rows before the move: %v", before)
	}
	others := map[string][]string{}
	for _, o := range []string{"pb", "sa", "sb"} {
		others[o] = e.names(t, e.mint(t, o, nil), o)
	}
	// A context issued before the move: it carries the pool placement.
	stale := e.mint(t, "pa", func(c *ctxtoken.Claims) { c.IssuedAt = time.Now().Unix() - 10 })
	silo := e.tenants["pa"].ID.SchemaName()

	rep, err := e.db.MoveTenant(ctx, e.tenants["pa"].ID, tenant.Silo, fastMove)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Moved || rep.Resumed || rep.From != tenant.Pool || rep.Placement != silo ||
		rep.Copied["projects"] != 1 || rep.Copied["tasks"] != 1 || rep.Removed["projects"] != 1 || rep.Removed["tasks"] != 1 {
		t.Fatalf("report: %+v", rep)
	}
	tn := e.reload(t, "pa")
	if tn.Tier != tenant.Silo || tn.Placement != silo || tn.Status != tenant.Active {
		t.Fatalf("catalog after the move: %+v", tn)
	}
	if got := e.moveRows(t, silo, "pa"); !slices.Equal(got, before) {
		t.Fatalf("pa's rows in its silo:\n%v\nwant\n%v", got, before)
	}
	if got := e.moveRows(t, "app", "pa"); len(got) != 0 {
		t.Fatalf("pa's rows left in the pool: %v", got)
	}
	if got := e.names(t, e.mint(t, "pa", nil), "pa"); !slices.Equal(got, []string{"canary-pa"}) {
		t.Fatalf("pa reads %v in its silo, want its canary", got)
	}
	checkStale := func(where string) {
		t.Helper()
		var n int
		err := postgres.ScopedTx(ctx, e.db.App(), stale, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM app.projects) + (SELECT count(*) FROM `+quote(silo)+`.projects)`).Scan(&n)
		})
		if err != nil && !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("%s: a context from before the move: %v", where, err)
		}
		if err == nil && n != 0 {
			t.Fatalf("%s: a context issued before the move reads %d rows", where, n)
		}
		err = postgres.ScopedTx(ctx, e.db.App(), stale, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ('stranded')`)
			return err
		})
		if err == nil {
			t.Fatalf("%s: a context issued before the move wrote a row into the pool", where)
		}
	}
	checkStale("in the silo")
	for o, want := range others {
		if got := e.names(t, e.mint(t, o, nil), o); !slices.Equal(got, want) {
			t.Fatalf("%s sees %v after pa moved, want %v", o, got, want)
		}
	}

	rep, err = e.db.MoveTenant(ctx, e.tenants["pa"].ID, tenant.Pool, fastMove)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Moved || rep.From != tenant.Silo || rep.Placement != "pool" || rep.DroppedSchema != silo || rep.Copied["projects"] != 1 || rep.Copied["tasks"] != 1 {
		t.Fatalf("report of the way back: %+v", rep)
	}
	if tn := e.reload(t, "pa"); tn.Tier != tenant.Pool || tn.Placement != "pool" || tn.Status != tenant.Active {
		t.Fatalf("catalog after the way back: %+v", tn)
	}
	if e.schemaExists(t, silo) {
		t.Fatalf("the silo %s is still there", silo)
	}
	if got := e.moveRows(t, "app", "pa"); !slices.Equal(got, before) {
		t.Fatalf("pa's rows back in the pool:\n%v\nwant\n%v", got, before)
	}
	if got := e.names(t, e.mint(t, "pa", nil), "pa"); !slices.Equal(got, []string{"canary-pa"}) {
		t.Fatalf("pa reads %v back in the pool", got)
	}
	for o, want := range others {
		if got := e.names(t, e.mint(t, o, nil), o); !slices.Equal(got, want) {
			t.Fatalf("%s sees %v after pa moved back, want %v", o, got, want)
		}
	}
	var events int
	if err := e.adminConn(t).QueryRow(ctx, `SELECT count(*) FROM bulkhead_audit.inbox WHERE event->>'action' = 'tenants:Move' AND event->>'tenant_id' = $1`,
		string(e.tenants["pa"].ID)).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 6 {
		t.Fatalf("%d tenants:Move events, want 6 (stopped, copied and done, each way)", events)
	}
	// Already there: nothing to do, nothing changed.
	rep, err = e.db.MoveTenant(ctx, e.tenants["pa"].ID, tenant.Pool, fastMove)
	if err != nil || rep.Moved {
		t.Fatalf("moving a pool tenant to the pool: %+v, %v", rep, err)
	}
}

// TestMoveRefusals: a move that cannot be done whole is refused before it
// changes anything; the tenant stays active where it was, with its rows.
func TestMoveRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	admin := e.adminConn(t)
	// sa's own code writes a row into the pool tables: moving sa into the
	// pool would mix it with the silo's.
	e.exec(t, e.mint(t, "sa", nil), `INSERT INTO app.projects (name) VALUES ('sa-in-the-pool')`)
	// A table bulkhead does not manage holds pb's rows.
	if _, err := admin.Exec(ctx, `CREATE TABLE app.extra (tenant_id uuid, x int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `INSERT INTO app.extra VALUES ($1, 1)`, string(e.tenants["pb"].ID)); err != nil {
		t.Fatal(err)
	}
	// sb's silo is behind this release.
	if _, err := admin.Exec(ctx, `UPDATE bulkhead_control.tenants SET schema_version = 3 WHERE id = $1`, string(e.tenants["sb"].ID)); err != nil {
		t.Fatal(err)
	}
	// A schema already has pa's silo's name.
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+quote(e.tenants["pa"].ID.SchemaName())); err != nil {
		t.Fatal(err)
	}
	if err := e.db.SetTenantStatus(ctx, e.tenants["pb"].ID, tenant.Suspended); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		slug string
		to   tenant.Tier
		code string
	}{
		{"sa", tenant.Pool, "rows_at_destination"},
		{"pb", tenant.Silo, "tenant_not_active"},
		{"sb", tenant.Pool, "silo_behind"},
		{"pa", tenant.Silo, "schema_exists"},
		{"pa", "cluster", "invalid_tier"},
	} {
		before := e.reload(t, tc.slug)
		_, err := e.db.MoveTenant(ctx, before.ID, tc.to, fastMove)
		if fault.CodeOf(err) != tc.code {
			t.Errorf("moving %s to %s: %v, want %s", tc.slug, tc.to, err, tc.code)
		}
		if after := e.reload(t, tc.slug); *after != *before {
			t.Errorf("the refused move of %s changed it: %+v, was %+v", tc.slug, after, before)
		}
	}
	if err := e.db.SetTenantStatus(ctx, e.tenants["pb"].ID, tenant.Active); err != nil {
		t.Fatal(err)
	}
	// First unreadable to bulkhead_maint, then readable: refused both ways.
	for _, grant := range []bool{false, true} {
		if grant {
			if _, err := admin.Exec(ctx, `GRANT USAGE ON SCHEMA app TO bulkhead_maint; GRANT SELECT ON app.extra TO bulkhead_maint`); err != nil {
				t.Fatal(err)
			}
		}
		_, err := e.db.MoveTenant(ctx, e.tenants["pb"].ID, tenant.Silo, fastMove)
		if fault.CodeOf(err) != "unmovable_rows" || !strings.Contains(fault.MessageOf(err), "app.extra") {
			t.Errorf("moving pb with rows in app.extra (readable: %t): %v, want unmovable_rows naming it", grant, err)
		}
	}
	if _, err := e.db.MoveTenant(ctx, tenant.ID("6f1d3c1e-9a55-4a8e-b7a4-1f2f3e4d5c6b"), tenant.Silo, fastMove); !tenant.IsNotFound(err) {
		t.Errorf("moving a tenant that does not exist: %v, want not found", err)
	}
	for _, slug := range []string{"pa", "pb", "sa", "sb"} {
		if tn := e.reload(t, slug); tn.Status != tenant.Active {
			t.Errorf("%s is %s after the refusals", slug, tn.Status)
		}
		if got := e.names(t, e.mint(t, slug, nil), slug); len(got) != 1 || got[0] != "canary-"+slug {
			t.Errorf("%s reads %v after the refusals", slug, got)
		}
	}
}

// TestMoveStopsAndResumes: a move cancelled during its copy leaves the
// tenant active where it was (the copy rolled back); one cancelled after
// its copy committed leaves it "moving", with the catalog pointing at the
// new place and the old copy still there, and the same call finishes it.
// A move to the other tier meanwhile is refused, and offboarding a tenant
// left half-way removes both copies.
func TestMoveStopsAndResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.adminConn(t)
	before := e.moveRows(t, "app", "pa")
	stopAt := func(prefix string) (context.Context, postgres.MoveOptions) {
		ctx, cancel := context.WithCancel(t.Context())
		t.Cleanup(cancel)
		o := fastMove
		o.Progress = func(step string) {
			if strings.HasPrefix(step, prefix) {
				cancel()
			}
		}
		return ctx, o
	}

	ctx, o := stopAt("copying")
	if _, err := e.db.MoveTenant(ctx, e.tenants["pa"].ID, tenant.Silo, o); err == nil {
		t.Fatal("a move cancelled at its copy succeeded")
	}
	if tn := e.reload(t, "pa"); tn.Status != tenant.Active || tn.Tier != tenant.Pool {
		t.Fatalf("after a move cancelled during its copy: %+v, want active in the pool", tn)
	}
	if e.schemaExists(t, e.tenants["pa"].ID.SchemaName()) || !slices.Equal(e.moveRows(t, "app", "pa"), before) {
		t.Fatal("a move cancelled during its copy left a silo or changed the pool rows")
	}

	ctx, o = stopAt("letting")
	if _, err := e.db.MoveTenant(ctx, e.tenants["pa"].ID, tenant.Silo, o); err == nil {
		t.Fatal("a move cancelled while settling succeeded")
	}
	tn := e.reload(t, "pa")
	if tn.Status != tenant.Moving || tn.Placement != tn.ID.SchemaName() {
		t.Fatalf("after a move cancelled while settling: %+v, want moving, placed in its silo", tn)
	}
	if !slices.Equal(e.moveRows(t, "app", "pa"), before) || !slices.Equal(e.moveRows(t, tn.Placement, "pa"), before) {
		t.Fatal("half-way, both copies must be whole")
	}
	if got := e.names(t, e.mint(t, "pa", nil), "pa"); len(got) != 0 {
		t.Fatalf("a moving tenant's context reads %v", got)
	}
	if _, err := e.db.MoveTenant(t.Context(), tn.ID, tenant.Pool, fastMove); fault.CodeOf(err) != "move_in_progress" {
		t.Fatalf("moving it the other way half-way: %v, want move_in_progress", err)
	}
	rep, err := e.db.MoveTenant(t.Context(), tn.ID, tenant.Silo, fastMove)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Resumed || len(rep.Copied) != 0 || rep.Removed["projects"] != 1 {
		t.Fatalf("the resumed move's report: %+v", rep)
	}
	if tn := e.reload(t, "pa"); tn.Status != tenant.Active || len(e.moveRows(t, "app", "pa")) != 0 {
		t.Fatalf("after the resumed move: %+v", tn)
	}

	// Half-way back into the pool, then offboarded: neither copy remains.
	ctx, o = stopAt("letting")
	if _, err := e.db.MoveTenant(ctx, tn.ID, tenant.Pool, o); err == nil {
		t.Fatal("a move cancelled while settling succeeded")
	}
	if !e.schemaExists(t, tn.ID.SchemaName()) || len(e.moveRows(t, "app", "pa")) != 1 {
		t.Fatal("half-way into the pool, both copies must be there")
	}
	if _, err := e.db.OffboardTenant(t.Context(), tn.ID); err != nil {
		t.Fatal(err)
	}
	if e.schemaExists(t, tn.ID.SchemaName()) || len(e.moveRows(t, "app", "pa")) != 0 {
		t.Fatal("offboarding a tenant half-way through a move left a copy of its rows")
	}
	var status string
	var moveTo *string
	if err := admin.QueryRow(t.Context(), `SELECT status, move_to FROM bulkhead_control.tenants WHERE id = $1`, string(tn.ID)).Scan(&status, &moveTo); err != nil || status != "offboarded" || moveTo != nil {
		t.Fatalf("after offboarding: %s %v %v", status, moveTo, err)
	}
}

// TestMoveDoesNotWaitOnLocks: any app role may lock the pool tables (or
// another tenant's silo) for as long as its transaction lasts. A move
// waits for such a lock at most its LockTimeout: blocked at its copy
// (into the pool), it is undone and the tenant is active where it was;
// blocked at the removal of the old copy (out of the pool), the tenant is
// left moving, its rows whole in the new place, and the same move
// finishes once the lock is gone.
func TestMoveDoesNotWaitOnLocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	o := postgres.MoveOptions{Settle: 100 * time.Millisecond, LockTimeout: 200 * time.Millisecond, Drain: 100 * time.Millisecond}
	// pb's code holds a SHARE lock on the pool's projects.
	hold := func() func() {
		t.Helper()
		conn, err := e.db.App().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, postgres.SetContextSQL, e.mint(t, "pb", nil)); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE app.projects IN SHARE MODE`); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		release := func() {
			once.Do(func() {
				tx.Rollback(context.WithoutCancel(ctx))
				conn.Release()
			})
		}
		t.Cleanup(release) // also when the test fails before it lets go
		return release
	}
	// The lock is taken once the move has stopped its tenant: a
	// transaction older than the stop undoes the move before its copy
	// (TestMoveOutlivedByAnOlderTransaction).
	var release func()
	holdAt := func(prefix string) postgres.MoveOptions {
		o := o
		o.Progress = func(step string) {
			if strings.HasPrefix(step, prefix) && release == nil {
				release = hold()
			}
		}
		return o
	}
	mctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := e.db.MoveTenant(mctx, e.tenants["sa"].ID, tenant.Pool, holdAt("copying"))
	if fault.CodeOf(err) != "lock_timeout" || !strings.Contains(fault.MessageOf(err), "undone") {
		t.Fatalf("moving sa into a locked pool: %v, want lock_timeout, undone", err)
	}
	if tn := e.reload(t, "sa"); tn.Status != tenant.Active || tn.Tier != tenant.Silo {
		t.Fatalf("sa after the blocked copy: %+v, want active in its silo", tn)
	}
	release()
	release = nil
	_, err = e.db.MoveTenant(mctx, e.tenants["pa"].ID, tenant.Silo, holdAt("letting"))
	if fault.CodeOf(err) != "lock_timeout" || !strings.Contains(fault.MessageOf(err), "left moving") {
		t.Fatalf("moving pa out of a locked pool: %v, want lock_timeout, left moving", err)
	}
	if tn := e.reload(t, "pa"); tn.Status != tenant.Moving || tn.Placement != tn.ID.SchemaName() {
		t.Fatalf("pa after the blocked removal: %+v, want moving, placed in its silo", tn)
	}
	release()
	rep, err := e.db.MoveTenant(mctx, e.tenants["pa"].ID, tenant.Silo, o)
	if err != nil || !rep.Resumed {
		t.Fatalf("finishing pa's move: %+v %v", rep, err)
	}
	e.reload(t, "pa")
	if got := e.names(t, e.mint(t, "pa", nil), "pa"); !slices.Equal(got, []string{"canary-pa"}) {
		t.Fatalf("pa reads %v after its move", got)
	}
}

// TestMovingTenantsCatalog: while a tenant moves, a user cannot be added
// to it (503 tenant_moving, not "not found", which would tell a platform
// administrator it is gone), and its policy documents, which a move does
// not touch, can still be changed, as a suspended tenant's can.
func TestMovingTenantsCatalog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	id := e.tenants["pa"].ID
	if _, err := e.adminConn(t).Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'moving', move_to = 'silo' WHERE id = $1`, string(id)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CreateUser(ctx, id, "new@pa.test", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", tenant.Member); fault.CodeOf(err) != "tenant_moving" {
		t.Errorf("adding a user to a moving tenant: %v, want tenant_moving", err)
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"data:Delete","Resource":"*"}]}`
	if _, err := e.db.PutPolicy(ctx, id, "no-deletes", doc); err != nil {
		t.Errorf("putting a policy for a moving tenant: %v", err)
	}
}

// TestMoveNotHeldUpByOperators: a transaction older than the stop holds a
// move up (and undoes it, past the wait) only when it is an app role's,
// which could write the tenant's rows; an operator's, such as a backup's
// long snapshot, cannot, and the move goes on.
func TestMoveNotHeldUpByOperators(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	tx, err := e.adminConn(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	o := fastMove
	o.Drain = 100 * time.Millisecond
	rep, err := e.db.MoveTenant(ctx, e.tenants["pa"].ID, tenant.Silo, o)
	if err != nil || !rep.Moved {
		t.Fatalf("a move while an operator's snapshot is open: %+v %v", rep, err)
	}
}
