package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// countingPool is a one-connection pool on the gateway role, with
// AppPoolConfig's rules, that counts what the client sends: one write is
// one round trip's request.
func (e *env) countingPool(t *testing.T) (*pgxpool.Pool, *atomic.Int64) {
	t.Helper()
	cfg, err := postgres.AppPoolConfig(e.pg.URL(e.db.AppRole, gatewayPassword(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	writes := &atomic.Int64{}
	var d net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: writes}, nil
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, writes
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// backendPID is the pid of the backend ScopedTx runs fn on.
func backendPID(t *testing.T, pool *pgxpool.Pool, token string, untrusted bool) int {
	t.Helper()
	var pid int
	err := postgres.ScopedTx(t.Context(), pool, token, postgres.ScopeOptions{Untrusted: untrusted}, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid)
	})
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestScopedTxRoundTrips: a transaction of one statement costs two round
// trips: BEGIN, the context and the statement, then COMMIT with the reset
// of business code's connection (five before: BEGIN, the context, the
// statement, COMMIT, DISCARD ALL). The statement still runs under the
// context, the reset still happens, and the connection is kept.
func TestScopedTxRoundTrips(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	read := func(canary *string, sql string, args ...any) func(pgx.Tx) error {
		return func(tx pgx.Tx) error { return tx.QueryRow(ctx, sql, args...).Scan(canary) }
	}
	for _, tt := range []struct {
		name string
		fn   func(canary *string) func(pgx.Tx) error
		want int64
	}{
		{"QueryRow", func(c *string) func(pgx.Tx) error {
			return read(c, `SELECT name FROM app.projects WHERE name LIKE $1`, "canary-%")
		}, 2},
		{"QueryRow without arguments", func(c *string) func(pgx.Tx) error {
			return read(c, `SELECT name FROM app.projects`)
		}, 2},
		{"QueryRow with named arguments", func(c *string) func(pgx.Tx) error {
			return read(c, `SELECT name FROM app.projects WHERE name LIKE @like`, pgx.NamedArgs{"like": "canary-%"})
		}, 2},
		{"Query", func(c *string) func(pgx.Tx) error {
			return func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, `SELECT name FROM app.projects WHERE name LIKE $1`, "canary-%")
				if err != nil {
					return err
				}
				names, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err == nil && len(names) == 1 {
					*c = names[0]
				}
				return err
			}
		}, 2},
		{"Exec", func(c *string) func(pgx.Tx) error {
			return func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, `UPDATE app.projects SET name = name WHERE name LIKE $1`, "canary-%")
				if err == nil && tag.RowsAffected() == 1 {
					*c = "canary-pa"
				}
				return err
			}
		}, 2},
		// pgx sends an Exec without arguments by the simple protocol, which
		// may carry several statements: BEGIN goes on its own before it.
		{"Exec without arguments", func(c *string) func(pgx.Tx) error {
			return func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, `UPDATE app.projects SET name = name`)
				if err == nil && tag.RowsAffected() == 1 {
					*c = "canary-pa"
				}
				return err
			}
		}, 3},
		{"nothing", func(c *string) func(pgx.Tx) error {
			return func(pgx.Tx) error { *c = "canary-pa"; return nil }
		}, 0},
	} {
		for _, untrusted := range []bool{true, false} {
			pool, writes := e.countingPool(t)
			pid := backendPID(t, pool, e.mint(t, "pa", nil), untrusted) // the connection made
			writes.Store(0)
			var canary string
			err := postgres.ScopedTx(ctx, pool, e.mint(t, "pa", nil), postgres.ScopeOptions{Untrusted: untrusted}, tt.fn(&canary))
			if err != nil || canary != "canary-pa" {
				t.Fatalf("%s, untrusted %t: read %q, %v; want canary-pa", tt.name, untrusted, canary, err)
			}
			if n := writes.Load(); n != tt.want {
				t.Errorf("%s, untrusted %t: %d round trips, want %d", tt.name, untrusted, n, tt.want)
			}
			if again := backendPID(t, pool, e.mint(t, "pa", nil), untrusted); again != pid {
				t.Errorf("%s, untrusted %t: the connection was replaced (backend %d, then %d)", tt.name, untrusted, pid, again)
			}
		}
	}
}

// TestScopedTxEndings: however fn ends, the transaction ends as it says,
// business code's connection is reset (and kept, when it can be), and a
// Tx that fn kept is dead.
func TestScopedTxEndings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	pool, _ := e.countingPool(t)
	pid := backendPID(t, pool, e.mint(t, "pa", nil), true)
	// The checks run as a principal of their own: with a principal, fn's
	// connection is reset before the checks' transaction.
	scoped := func(fn func(pgx.Tx) error) error {
		return postgres.ScopedTx(ctx, pool, e.mint(t, "pa", nil), postgres.ScopeOptions{Untrusted: true, Principal: "checks"}, fn)
	}
	count := func(name string) int {
		t.Helper()
		var n int
		if err := scoped(func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM app.projects WHERE name = $1`, name).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// leaves plants a session setting, which the reset must take away.
	leaves := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT set_config('planted.by', 'fn', false)`)
		return err
	}
	for _, tt := range []struct {
		name    string
		fn      func(pgx.Tx) error
		wantErr bool
		written int
	}{
		{"commits", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "endings-commits")
			return err
		}, false, 1},
		{"returns an error", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "endings-returns-an-error"); err != nil {
				return err
			}
			return errors.New("fn failed")
		}, true, 0},
		{"swallows a failed statement", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "endings-swallows-a-failed-statement"); err != nil {
				return err
			}
			tx.Exec(ctx, `SELECT 1/0 WHERE $1`, true) // its error ignored
			return nil
		}, true, 0},
		{"commits itself", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "endings-commits-itself"); err != nil {
				return err
			}
			return tx.Commit(ctx)
		}, true, 1},
		{"ends it with a statement and writes without the context", func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `COMMIT`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "endings-ends-it-with-a-statement-and-writes-without-the-context")
			if err == nil {
				t.Error("a write after fn's COMMIT, without the context, passed")
			}
			return nil
		}, true, 0},
		{"has its caller's context canceled", func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "endings-has-its-caller's-context-canceled")
			return err // the caller gives up before ScopedTx commits
		}, true, 0},
	} {
		for _, principal := range []string{"", "fn"} {
			name := tt.name
			if principal != "" {
				name += " with a principal"
			}
			t.Run(name, func(t *testing.T) {
				var kept pgx.Tx
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				err := postgres.ScopedTx(cctx, pool, e.mint(t, "pa", nil), postgres.ScopeOptions{Untrusted: true, Principal: principal}, func(tx pgx.Tx) error {
					kept = tx
					if err := leaves(tx); err != nil {
						return err
					}
					err := tt.fn(tx)
					if strings.Contains(tt.name, "canceled") {
						cancel()
					}
					return err
				})
				want := tt.written
				if principal != "" {
					want *= 2 // the same rows again, after the run without one
				}
				if n := count("endings-" + strings.ReplaceAll(tt.name, " ", "-")); n != want {
					t.Errorf("%d rows written, want %d", n, want)
				}
				if (err != nil) != tt.wantErr {
					t.Errorf("ScopedTx = %v, want an error: %t", err, tt.wantErr)
				}
				if _, err := kept.Exec(ctx, `SELECT 1 WHERE $1`, true); !errors.Is(err, pgx.ErrTxClosed) {
					t.Errorf("a Tx fn kept runs statements after ScopedTx returned: %v", err)
				}
				if err := kept.QueryRow(ctx, `SELECT 1`).Scan(new(int)); !errors.Is(err, pgx.ErrTxClosed) {
					t.Errorf("a Tx fn kept runs queries after ScopedTx returned: %v", err)
				}
				var planted string
				var again int
				if err := scoped(func(tx pgx.Tx) error {
					return tx.QueryRow(ctx, `SELECT coalesce(current_setting('planted.by', true), ''), pg_backend_pid()`).Scan(&planted, &again)
				}); err != nil {
					t.Fatal(err)
				}
				if planted != "" {
					t.Errorf("the next transaction reads the setting fn left: %q", planted)
				}
				if again != pid {
					t.Errorf("the connection was replaced (backend %d, then %d)", pid, again)
				}
			})
		}
	}
}

// TestScopedTxFirstStatements: whatever fn does first, it runs in the
// transaction, under the context and the limits: a statement sent with
// BEGIN, one through the connection, a savepoint, the large-object API.
// A Tx that fn kept and never used sends nothing once ScopedTx returned.
func TestScopedTxFirstStatements(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	pool, writes := e.countingPool(t)
	scoped := func(o postgres.ScopeOptions, fn func(pgx.Tx) error) error {
		o.Untrusted = true
		return postgres.ScopedTx(ctx, pool, e.mint(t, "pb", nil), o, fn)
	}
	names := func(q interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}) ([]string, error) {
		rows, err := q.Query(ctx, `SELECT name FROM app.projects ORDER BY name`)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	want := "[canary-pb]" // pb's row alone: pa's is another tenant's
	t.Run("through the connection", func(t *testing.T) {
		if err := scoped(postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			got, err := names(tx.Conn())
			if fmt.Sprint(got) != want {
				t.Errorf("tx.Conn() first reads %v, %v; want %s", got, err, want)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("in a savepoint", func(t *testing.T) {
		if err := scoped(postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			got, err := names(sp)
			if fmt.Sprint(got) != want {
				t.Errorf("a savepoint first reads %v, %v; want %s", got, err, want)
			}
			return sp.Rollback(ctx)
		}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("large objects", func(t *testing.T) {
		err := scoped(postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			lo := tx.LargeObjects()
			_, err := lo.Create(ctx, 0)
			return err
		})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("a large object from business code: %v, want PostgreSQL's permission denied", err)
		}
	})
	t.Run("a failed first statement", func(t *testing.T) {
		var second error
		err := scoped(postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "first-failed")
			tx.Exec(ctx, `SELECT 1/0 WHERE $1`, true) // its error ignored
			_, second = tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "first-failed-after")
			return nil
		})
		if err == nil || second == nil {
			t.Errorf("after a failed statement: the next %v, ScopedTx %v; want both to fail", second, err)
		}
		if err := scoped(postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			got, err := names(tx)
			if fmt.Sprint(got) != want {
				t.Errorf("a transaction that failed wrote: %v, %v", got, err)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("under the statement timeout", func(t *testing.T) {
		err := scoped(postgres.ScopeOptions{StatementTimeout: 100 * time.Millisecond}, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `SELECT pg_sleep($1)`, 3)
			return err
		})
		if fault.CodeOf(err) != "statement_timeout" {
			t.Errorf("a first statement of 3 s under a 100ms timeout: %v", err)
		}
	})
	t.Run("kept and never used", func(t *testing.T) {
		var kept pgx.Tx
		if err := scoped(postgres.ScopeOptions{}, func(tx pgx.Tx) error { kept = tx; return nil }); err != nil {
			t.Fatal(err)
		}
		writes.Store(0)
		if _, err := kept.Exec(ctx, `SELECT 1 WHERE $1`, true); !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("Exec: %v", err)
		}
		if err := kept.QueryRow(ctx, `SELECT 1`).Scan(new(int)); !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("QueryRow: %v", err)
		}
		if _, err := names(kept); !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("Query: %v", err)
		}
		if _, err := kept.Begin(ctx); !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("Begin: %v", err)
		}
		if err := kept.SendBatch(ctx, &pgx.Batch{}).Close(); !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("SendBatch: %v", err)
		}
		lo := kept.LargeObjects()
		if _, err := lo.Create(ctx, 0); !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("LargeObjects: %v", err)
		}
		if err := kept.Commit(ctx); !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("Commit: %v", err)
		}
		if n := writes.Load(); n != 0 {
			t.Errorf("a kept Tx sent %d requests on a connection it no longer has", n)
		}
	})
}

// TestScopedTxPrepareEachTime: business code that prepares a named
// statement in every transaction can, on the same connection: the reset
// deallocates the statement in PostgreSQL, and pgx must forget it too,
// or its Prepare would take the name for prepared and the statement would
// fail. The statement runs under each transaction's own context.
func TestScopedTxPrepareEachTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	pool, _ := e.countingPool(t)
	for i, slug := range []string{"pa", "pb", "pa"} {
		var name string
		err := postgres.ScopedTx(ctx, pool, e.mint(t, slug, nil), postgres.ScopeOptions{Untrusted: true}, func(tx pgx.Tx) error {
			if _, err := tx.Prepare(ctx, "canary", `SELECT name FROM app.projects WHERE name LIKE $1`); err != nil {
				return err
			}
			return tx.QueryRow(ctx, "canary", "canary-%").Scan(&name)
		})
		if err != nil || name != "canary-"+slug {
			t.Fatalf("transaction %d, as %s: %q, %v; want canary-%s", i+1, slug, name, err, slug)
		}
	}
}

// TestScopedTxRowsLeftOpen: fn that returns with its first statement's
// rows unread leaves the connection busy. ScopedTx does not commit what
// it cannot see the end of: it reports an error, destroys the connection
// rather than hand it on mid-result, and the next transaction gets a
// fresh one, under its own context.
func TestScopedTxRowsLeftOpen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	pool, _ := e.countingPool(t)
	pid := backendPID(t, pool, e.mint(t, "pa", nil), true)
	err := postgres.ScopedTx(ctx, pool, e.mint(t, "pa", nil), postgres.ScopeOptions{Untrusted: true}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "rows-left-open"); err != nil {
			return err
		}
		_, err := tx.Query(ctx, `SELECT name FROM app.projects WHERE name LIKE $1`, "%")
		return err // the rows are never read nor closed
	})
	if err == nil {
		t.Error("ScopedTx committed a transaction whose rows were left open")
	}
	var names []string
	var again int
	if err := postgres.ScopedTx(ctx, pool, e.mint(t, "pb", nil), postgres.ScopeOptions{Untrusted: true}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&again); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name FROM app.projects WHERE name LIKE $1 ORDER BY name`, "%")
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if again == pid || fmt.Sprint(names) != "[canary-pb]" {
		t.Errorf("the next transaction: backend %d (was %d), reads %v", again, pid, names)
	}
}

// TestScopedTxResetBetweenPrincipals: with ScopeOptions.Principal, business
// code's connection is reset before it serves another principal (or one
// that names none), not between one principal's transactions, and the
// reset costs no round trip of its own: DISCARD ALL leads the next
// principal's first pipeline.
func TestScopedTxResetBetweenPrincipals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	pool, writes := e.countingPool(t)
	pid := backendPID(t, pool, e.mint(t, "pa", nil), true)
	type seen struct {
		canary   string // the session setting the last transaction left
		prepared int64  // the session's prepared statements
		rows     []string
		writes   int64
	}
	// run runs one transaction as slug's tenant for principal: it reads
	// what the session holds, then leaves a session setting and a named
	// prepared statement on it (executed, so that one pgx took for
	// prepared but PostgreSQL dropped fails with 26000).
	run := func(slug, principal string, leave bool) seen {
		t.Helper()
		var s seen
		writes.Store(0)
		err := postgres.ScopedTx(ctx, pool, e.mint(t, slug, nil), postgres.ScopeOptions{Untrusted: true, Principal: principal}, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `SELECT coalesce(current_setting('bulkhead_t.canary', true), ''),
				(SELECT count(*) FROM pg_catalog.pg_prepared_statements),
				(SELECT array_agg(name ORDER BY name) FROM app.projects)`).Scan(&s.canary, &s.prepared, &s.rows)
			if err != nil || !leave {
				return err
			}
			if _, err := tx.Exec(ctx, `SELECT set_config('bulkhead_t.canary', $1, false)`, slug+"/"+principal); err != nil {
				return err
			}
			if _, err := tx.Prepare(ctx, "mine", `SELECT 1`); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "mine")
			return err
		})
		if err != nil {
			t.Fatalf("%s as %q: %v", slug, principal, err)
		}
		s.writes = writes.Load()
		return s
	}
	check := func(step string, got seen, canary string, prepared int64, rows string, writes int64) {
		t.Helper()
		if got.canary != canary || got.prepared != prepared || strings.Join(got.rows, ",") != rows || (writes > 0 && got.writes != writes) {
			t.Errorf("%s: read setting %q, %d prepared, rows %v in %d round trips; want %q, %d, [%s], %d",
				step, got.canary, got.prepared, got.rows, got.writes, canary, prepared, rows, writes)
		}
	}
	check("first", run("pa", "A", true), "", 0, "canary-pa", 0)
	check("the same principal again", run("pa", "A", false), "pa/A", 1, "canary-pa", 2)
	check("the same principal, leaving state again", run("pa", "A", true), "pa/A", 1, "canary-pa", 0)
	check("another principal", run("pb", "B", true), "", 0, "canary-pb", 0)
	check("back to the first", run("pa", "A", false), "", 0, "canary-pa", 2)
	check("another principal of the same tenant", run("pa", "A2", true), "", 0, "canary-pa", 0)
	check("no principal", run("pa", "", true), "", 0, "canary-pa", 0)
	// A transaction without a principal resets after itself.
	check("after no principal", run("pa", "A2", false), "", 0, "canary-pa", 2)
	if again := backendPID(t, pool, e.mint(t, "pa", nil), true); again != pid {
		t.Errorf("the connection was replaced (backend %d, then %d)", pid, again)
	}
	// A pool that did not ask, when it connected, whether its login may
	// take advisory locks (not made by AppPoolConfig) resets after every
	// transaction, the same principal's too.
	cfg, err := postgres.AppPoolConfig(e.pg.URL(e.db.AppRole, gatewayPassword(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns, cfg.AfterConnect = 1, nil
	unasked, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer unasked.Close()
	pool = unasked
	run("pa", "A", true)
	check("the same principal on a pool that did not ask", run("pa", "A", false), "", 0, "canary-pa", 0)
}

// TestScopedTxLostCommit: with a principal, a COMMIT that never reaches
// the server is an error, writes nothing, and leaves no connection behind
// that another principal's transaction could get unreset.
func TestScopedTxLostCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	cfg, err := postgres.AppPoolConfig(e.pg.URL(e.db.AppRole, gatewayPassword(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	var armed atomic.Bool
	var d net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		return losingConn{Conn: c, armed: &armed}, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var kept pgx.Tx
	var pid int
	err = postgres.ScopedTx(ctx, pool, e.mint(t, "pa", nil), postgres.ScopeOptions{Untrusted: true, Principal: "A"}, func(tx pgx.Tx) error {
		kept = tx
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT set_config('planted.by', 'A', false)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO app.projects (name) VALUES ($1)`, "lost-commit")
		armed.Store(true)
		return err
	})
	if err == nil {
		t.Fatal("ScopedTx = nil for a COMMIT that was never sent")
	}
	if _, err := kept.Exec(ctx, `SELECT 1 WHERE $1`, true); !errors.Is(err, pgx.ErrTxClosed) {
		t.Errorf("a Tx fn kept runs statements after a lost COMMIT: %v", err)
	}
	var planted string
	var again, written int
	err = postgres.ScopedTx(ctx, pool, e.mint(t, "pa", nil), postgres.ScopeOptions{Untrusted: true, Principal: "B"}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT coalesce(current_setting('planted.by', true), ''), pg_backend_pid(),
			(SELECT count(*) FROM app.projects WHERE name = 'lost-commit')`).Scan(&planted, &again, &written)
	})
	if err != nil || planted != "" || written != 0 || again == pid {
		t.Errorf("after the lost COMMIT: %v; read setting %q, %d rows written, backend %d (was %d); want no setting, no row, another backend", err, planted, written, again, pid)
	}
}

// losingConn fails the first write that carries a COMMIT once armed, as a
// network that drops the connection would.
type losingConn struct {
	net.Conn
	armed *atomic.Bool
}

func (c losingConn) Write(b []byte) (int, error) {
	if c.armed.Load() && strings.Contains(strings.ToLower(string(b)), "commit") {
		c.armed.Store(false)
		c.Conn.Close()
		return 0, errors.New("connection lost")
	}
	return c.Conn.Write(b)
}
