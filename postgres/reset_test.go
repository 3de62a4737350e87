package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestResetKeepsNothingOfBusinessCode: the reset after business code
// (DISCARD ALL, as DESIGN's hardening rules name it, after the
// transaction or, between principals, leading the next one) leaves nothing of what that code did to its session for the next transaction
// on the same connection: not the role it took, a setting, a prepared
// statement, a cursor held past its transaction, a LISTEN, nor a session
// advisory lock. Locks are checked where bulkhead's set-up could not
// revoke them (a managed service's admin); with a superuser's set-up the
// login cannot take one at all.
func TestResetKeepsNothingOfBusinessCode(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		managed bool
		// first and next are the two transactions' principals: with
		// them, the reset leads the next one's first round trip instead
		// of following the first.
		first, next string
	}{{false, "", ""}, {true, "", ""}, {false, "u", "v"}, {true, "u", "v"}} {
		managed := c.managed
		name := map[bool]string{false: "superuser", true: "managed"}[managed]
		if c.first != "" {
			name += " between principals"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var pg *pgtest.DB
			if managed {
				pg = pgtest.NewManagedDB(t, pgtest.ManagedRDS, false)
				if _, err := postgres.Setup(ctx, pg.AdminURL, nil); err != nil {
					t.Fatal(err)
				}
			} else {
				pg = pgtest.NewDB(t)
			}
			db, err := postgres.Open(ctx, postgres.Config{AdminURL: pg.AdminURL})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			k, err := db.SigningKey(ctx, postgres.KeyContext)
			if err != nil {
				t.Fatal(err)
			}
			bp, err := db.Business(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The business pool's config, with one connection: the next
			// transaction gets the very connection the first one used.
			cfg := bp.Config().Copy()
			cfg.MaxConns = 1
			one, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer one.Close()
			tn, _, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: "reset", Tier: tenant.Pool})
			if err != nil {
				t.Fatal(err)
			}
			token := func() string {
				tok, err := ctxtoken.Mint(ctxtoken.Key{ID: k.ID, Secret: k.Secret}, ctxtoken.Claims{Tenant: "reset", TenantID: string(tn.ID), Subject: "u", Role: "member",
					Scope: []string{"select"}, IssuedAt: time.Now().Unix(), ExpiresAt: time.Now().Unix() + 60, Audience: cfg.ConnConfig.User, RequestID: "r"})
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			var canLock bool
			err = postgres.ScopedTx(ctx, one, token(), postgres.ScopeOptions{Untrusted: true, Principal: c.first}, func(tx pgx.Tx) error {
				for _, q := range []string{
					`SET ROLE bulkhead_app`,
					`SELECT set_config('work_mem', '77MB', false), set_config('planted.by', 'a', false)`,
					`PREPARE planted AS SELECT 1`,
					`DECLARE held CURSOR WITH HOLD FOR SELECT 1`,
					`LISTEN planted`,
				} {
					if _, err := tx.Exec(ctx, q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				_, err := tx.Exec(ctx, `SAVEPOINT l`)
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err == nil {
					canLock = true
				} else if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT l`); err != nil {
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if canLock != managed {
				t.Fatalf("the login took a session advisory lock: %t, want %t (revoked only by a superuser's set-up)", canLock, managed)
			}
			if managed && c.first != "" {
				// The connection waits for its next principal unreset, but
				// without the lock: it is held against every tenant.
				var free bool
				if err := db.Admin().QueryRow(ctx, `SELECT pg_try_advisory_lock(4242) AND pg_advisory_unlock(4242)`).Scan(&free); err != nil || !free {
					t.Errorf("the session advisory lock business code took is held after its transaction (%v)", err)
				}
			}
			err = postgres.ScopedTx(ctx, one, token(), postgres.ScopeOptions{Untrusted: true, Principal: c.next}, func(tx pgx.Tx) error {
				var role, session, workMem, planted string
				var prepared, cursors, channels int
				err := tx.QueryRow(ctx, `SELECT current_user, session_user, current_setting('work_mem'), coalesce(current_setting('planted.by', true), ''),
					(SELECT count(*) FROM pg_prepared_statements), (SELECT count(*) FROM pg_cursors WHERE name = 'held'), (SELECT count(*) FROM pg_listening_channels())`).
					Scan(&role, &session, &workMem, &planted, &prepared, &cursors, &channels)
				if err != nil {
					return err
				}
				if role != session || workMem == "77MB" || planted != "" || prepared != 0 || cursors != 0 || channels != 0 {
					t.Errorf("the next transaction on the connection: role %s (session %s), work_mem %s, planted %q, %d prepared, %d cursors, %d channels",
						role, session, workMem, planted, prepared, cursors, channels)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if managed {
				var got bool
				if err := db.Admin().QueryRow(ctx, `SELECT pg_try_advisory_lock(4242)`).Scan(&got); err != nil || !got {
					t.Errorf("the advisory lock business code took is still held after the reset (%v)", err)
				}
			}
		})
	}
}
