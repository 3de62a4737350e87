package postgres_test

import (
	"context"
	"net/url"
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

// olderTx opens, on the app role, a REPEATABLE READ transaction under
// slug's context and takes its snapshot: from then on its statements see
// the catalog as it was, the tenant active. It is rolled back at the end of
// the test unless the test commits it.
func (e *env) olderTx(t *testing.T, slug string) pgx.Tx {
	t.Helper()
	ctx := t.Context()
	conn, err := e.db.App().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		conn.Release()
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			tx.Rollback(context.Background())
			conn.Release()
		})
	})
	if _, err := tx.Exec(ctx, postgres.SetContextSQL, e.mint(t, slug, nil)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+e.table(slug, "projects")).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the older transaction reads %d rows: %v", n, err)
	}
	return tx
}

// TestMoveOutlivedByAnOlderTransaction: the tenant's own code holds a
// transaction that began before the move stopped the tenant and stays open
// longer than the move waits for it (Drain). Its snapshot still sees the
// tenant active, so it may write a row into the old place and commit it at
// any point of the move. Whatever the move then does, no committed row is
// lost or left in the old place: the tenant ends active in one place with
// every row, or moving with a rerun that finishes.
func TestMoveOutlivedByAnOlderTransaction(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		slug string
		to   tenant.Tier
	}{{"pa", tenant.Silo}, {"sa", tenant.Pool}} {
		t.Run(tc.slug+"-to-"+string(tc.to), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			old := e.tenants[tc.slug].Placement
			oldSchema, _ := postgres.Schema(old)
			older := e.olderTx(t, tc.slug)
			committed := false
			write := func() {
				t.Helper()
				if committed {
					return
				}
				committed = true
				if _, err := older.Exec(ctx, `INSERT INTO `+quote(oldSchema)+`.projects (tenant_id, name) VALUES ($1, 'late')`, string(e.tenants[tc.slug].ID)); err != nil {
					t.Logf("the older transaction's write: %v", err)
					older.Rollback(ctx)
					return
				}
				if err := older.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}
			o := postgres.MoveOptions{Settle: 100 * time.Millisecond, Drain: 100 * time.Millisecond, LockTimeout: 300 * time.Millisecond,
				Progress: func(step string) {
					if strings.HasPrefix(step, "letting") {
						write() // after the copy committed
					}
				}}
			_, err := e.db.MoveTenant(ctx, e.tenants[tc.slug].ID, tc.to, o)
			t.Logf("the move: %v", err)
			write()
			// Whatever became of it, the same move again, now that the
			// older transaction is gone, takes the tenant there whole.
			if _, err := e.db.MoveTenant(ctx, e.tenants[tc.slug].ID, tc.to, o); err != nil {
				t.Fatalf("the move again: %v", err)
			}
			tn := e.reload(t, tc.slug)
			if tn.Status != tenant.Active || tn.Tier != tc.to {
				t.Fatalf("after the move: %+v", tn)
			}
			here, _ := postgres.Schema(tn.Placement)
			names := e.names(t, e.mint(t, tc.slug, nil), tc.slug)
			slices.Sort(names)
			want := []string{"canary-" + tc.slug}
			if committed {
				want = []string{"canary-" + tc.slug, "late"}
			}
			if !slices.Equal(names, want) {
				t.Errorf("%s reads %v in %s, want %v (every committed row)", tc.slug, names, tn.Placement, want)
			}
			if here != oldSchema && e.schemaExists(t, oldSchema) {
				if left := e.moveRows(t, oldSchema, tc.slug); len(left) != 0 {
					t.Errorf("rows left in the old place %s: %v", oldSchema, left)
				}
			}
		})
	}
}

// TestMoveRefusesABlindAdmin: a move must wait for transactions that began
// before it stopped the tenant, and an admin role without
// pg_monitor sees no other role's transactions in pg_stat_activity:
// its move would wait for none and could lose a row one of them commits.
// It is refused before anything changes; granted the role, it moves.
func TestMoveRefusesABlindAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	role := "bulkhead_tx_mover" + strings.ReplaceAll(strings.TrimPrefix(e.pg.Name, "bulkhead_test_"), "-", "")
	adm := e.adminConn(t)
	if _, err := adm.Exec(ctx, `CREATE ROLE `+role+` LOGIN NOSUPERUSER IN ROLE bulkhead_owner, bulkhead_maint PASSWORD 'mover-password-0123456789'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), e.pg.AdminURL)
		if err == nil {
			c.Exec(context.Background(), `DROP ROLE IF EXISTS `+role)
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(e.pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "mover-password-0123456789")
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	before := e.reload(t, "pa")
	if _, err := db.MoveTenant(ctx, before.ID, tenant.Silo, fastMove); fault.CodeOf(err) != "move_blind" {
		t.Fatalf("a move by an admin blind to other roles' transactions: %v, want move_blind", err)
	}
	if after := e.reload(t, "pa"); *after != *before {
		t.Fatalf("the refused move changed pa: %+v, was %+v", after, before)
	}
	if _, err := adm.Exec(ctx, `GRANT pg_monitor TO `+role); err != nil {
		t.Fatal(err)
	}
	if rep, err := db.MoveTenant(ctx, before.ID, tenant.Silo, fastMove); err != nil || !rep.Moved {
		t.Fatalf("the move once the admin sees: %+v, %v", rep, err)
	}
}

// TestMoveRaces: a move racing with another move of the same tenant (same
// tier, or the other), with a suspension, or with offboarding ends in one
// of the states a move may leave: the tenant active in one place with all
// its rows and none elsewhere, or gone whole. A suspension asked for while
// the tenant moves is refused as tenant_moving (try again), not as a
// tenant that does not exist.
func TestMoveRaces(t *testing.T) {
	t.Parallel()
	whole := func(t *testing.T, e *env, slug string) {
		t.Helper()
		tn := e.reload(t, slug)
		if tn.Status != tenant.Active {
			t.Fatalf("%s after the race: %+v", slug, tn)
		}
		if got := e.names(t, e.mint(t, slug, nil), slug); !slices.Equal(got, []string{"canary-" + slug}) {
			t.Fatalf("%s reads %v in %s", slug, got, tn.Placement)
		}
		if tn.Tier == tenant.Silo {
			if left := e.moveRows(t, "app", slug); len(left) != 0 {
				t.Fatalf("%s, in its silo, left rows in the pool: %v", slug, left)
			}
		} else if e.schemaExists(t, tn.ID.SchemaName()) {
			t.Fatalf("%s, in the pool, left its silo", slug)
		}
		for _, o := range []string{"pa", "pb", "sa", "sb"} {
			var status string
			if err := e.adminConn(t).QueryRow(t.Context(), `SELECT status FROM bulkhead_control.tenants WHERE id = $1`, string(e.tenants[o].ID)).Scan(&status); err != nil {
				t.Fatal(err)
			}
			if o != slug && status == "active" {
				if got := e.names(t, e.mint(t, o, nil), o); !slices.Equal(got, []string{"canary-" + o}) {
					t.Fatalf("%s reads %v after %s's race", o, got, slug)
				}
			}
		}
	}
	t.Run("TwoMoves", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		for _, tos := range [][2]tenant.Tier{{tenant.Silo, tenant.Silo}, {tenant.Pool, tenant.Pool}, {tenant.Silo, tenant.Pool}, {tenant.Pool, tenant.Silo}} {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, to := range tos {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = e.db.MoveTenant(t.Context(), e.tenants["pa"].ID, to, fastMove)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil && fault.CodeOf(err) != "move_changed" && fault.CodeOf(err) != "move_in_progress" {
					t.Errorf("move %d of %v: %v", i, tos, err)
				}
			}
			if errs[0] != nil && errs[1] != nil {
				t.Errorf("both moves of %v failed: %v", tos, errs)
			}
			whole(t, e, "pa")
		}
	})
	t.Run("Suspend", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		o := fastMove
		var serr error
		o.Progress = func(step string) {
			if strings.HasPrefix(step, "letting") {
				serr = e.db.SetTenantStatus(t.Context(), e.tenants["pa"].ID, tenant.Suspended)
			}
		}
		if _, err := e.db.MoveTenant(t.Context(), e.tenants["pa"].ID, tenant.Silo, o); err != nil {
			t.Fatal(err)
		}
		if fault.CodeOf(serr) != "tenant_moving" {
			t.Errorf("suspending a moving tenant: %v, want tenant_moving", serr)
		}
		whole(t, e, "pa")
	})
	t.Run("Offboard", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		for _, slug := range []string{"pa", "sa"} {
			o := fastMove
			var oerr error
			o.Progress = func(step string) {
				if strings.HasPrefix(step, "letting") {
					_, oerr = e.db.OffboardTenant(t.Context(), e.tenants[slug].ID)
				}
			}
			_, err := e.db.MoveTenant(t.Context(), e.tenants[slug].ID, map[string]tenant.Tier{"pa": tenant.Silo, "sa": tenant.Pool}[slug], o)
			if oerr != nil || fault.CodeOf(err) != "move_changed" {
				t.Fatalf("offboarding %s while it moves: %v; the move: %v, want move_changed", slug, oerr, err)
			}
			if e.schemaExists(t, e.tenants[slug].ID.SchemaName()) || len(e.moveRows(t, "app", slug)) != 0 {
				t.Fatalf("offboarding %s while it moved left rows", slug)
			}
			var status string
			if err := e.adminConn(t).QueryRow(t.Context(), `SELECT status FROM bulkhead_control.tenants WHERE id = $1`, string(e.tenants[slug].ID)).Scan(&status); err != nil || status != "offboarded" {
				t.Fatalf("%s: %s %v", slug, status, err)
			}
		}
		whole(t, e, "pb")
		whole(t, e, "sb")
	})
}

// TestMoveStoppedAtEveryStep: a move cancelled as any of its steps starts,
// either way, leaves the tenant active where it was, active where it went,
// or moving with the catalog placing it where its rows are whole; never
// half a copy. The same move then finishes it, with every row (a project
// and its task, same ids and values) in the new place and none in the old.
func TestMoveStoppedAtEveryStep(t *testing.T) {
	t.Parallel()
	steps := []string{"stopping", "waiting", "copying", "letting", "removing"}
	for _, tc := range []struct {
		slug string
		to   tenant.Tier
	}{{"pa", tenant.Silo}, {"sa", tenant.Pool}} {
		for _, stopAt := range steps {
			t.Run(tc.slug+"/"+stopAt, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				e.exec(t, e.mint(t, tc.slug, nil), `INSERT INTO `+e.table(tc.slug, "tasks")+` (project_id, title, done) SELECT id, 'task-'||name, true FROM `+e.table(tc.slug, "projects"))
				oldSchema, _ := postgres.Schema(e.tenants[tc.slug].Placement)
				before := e.moveRows(t, oldSchema, tc.slug)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				o := fastMove
				o.Progress = func(step string) {
					if strings.HasPrefix(step, stopAt) {
						cancel()
					}
				}
				if _, err := e.db.MoveTenant(ctx, e.tenants[tc.slug].ID, tc.to, o); err == nil {
					t.Fatalf("a move cancelled as %q began succeeded", stopAt)
				}
				tn := e.reload(t, tc.slug)
				here, _ := postgres.Schema(tn.Placement)
				switch {
				case tn.Status == tenant.Active && here == oldSchema:
				case tn.Status == tenant.Moving:
				default:
					t.Fatalf("cancelled as %q began: %+v", stopAt, tn)
				}
				if got := e.moveRows(t, here, tc.slug); !slices.Equal(got, before) {
					t.Fatalf("cancelled as %q began, %s holds %v, want %v", stopAt, here, got, before)
				}
				if tn.Status == tenant.Active {
					if here == "app" && e.schemaExists(t, tn.ID.SchemaName()) {
						t.Fatalf("cancelled as %q began, active in the pool, a silo was left", stopAt)
					}
					if here != "app" && len(e.moveRows(t, "app", tc.slug)) != 0 {
						t.Fatalf("cancelled as %q began, active in its silo, rows were left in the pool", stopAt)
					}
				}
				rep, err := e.db.MoveTenant(t.Context(), tn.ID, tc.to, fastMove)
				if err != nil || !rep.Moved {
					t.Fatalf("the move again: %+v %v", rep, err)
				}
				tn = e.reload(t, tc.slug)
				newSchema, _ := postgres.Schema(tn.Placement)
				if tn.Status != tenant.Active || tn.Tier != tc.to {
					t.Fatalf("after the move again: %+v", tn)
				}
				if got := e.moveRows(t, newSchema, tc.slug); !slices.Equal(got, before) {
					t.Fatalf("after the move again, %s holds %v, want %v", newSchema, got, before)
				}
				if tc.to == tenant.Silo && len(e.moveRows(t, "app", tc.slug)) != 0 {
					t.Fatal("rows left in the pool")
				}
				if tc.to == tenant.Pool && e.schemaExists(t, tn.ID.SchemaName()) {
					t.Fatal("the silo was left")
				}
			})
		}
	}
}

// TestMoveIgnoresTheMoversClock: the contexts a move refuses afterwards
// (contexts_from) are those issued before its settling ended by the
// database's clock, which the verifier and the minters go by, whatever
// the clock of the host that runs the move (an operator's laptop ten
// minutes off). Behind, it would let a context minted before the move, for
// the old place, write there; ahead, it would refuse every fresh context
// of the tenant for ten minutes.
func TestMoveIgnoresTheMoversClock(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{-10 * time.Minute, 10 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			db, err := postgres.Open(ctx, postgres.Config{AdminURL: e.pg.AdminURL, Now: func() time.Time { return time.Now().Add(skew) }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(db.Close)
			stale := e.mint(t, "pa", func(c *ctxtoken.Claims) { c.IssuedAt = time.Now().Unix() - 10 })
			if _, err := db.MoveTenant(ctx, e.tenants["pa"].ID, tenant.Silo, fastMove); err != nil {
				t.Fatal(err)
			}
			e.reload(t, "pa")
			if got := e.names(t, e.mint(t, "pa", nil), "pa"); !slices.Equal(got, []string{"canary-pa"}) {
				t.Errorf("a fresh context after the move reads %v", got)
			}
			err = postgres.ScopedTx(ctx, e.db.App(), stale, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ('stranded')`)
				return err
			})
			if err == nil {
				t.Errorf("a context issued before the move wrote into the pool")
			}
		})
	}
}
