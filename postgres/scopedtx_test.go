package postgres_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// TestScopedTxRoundTrips: a transaction of one statement costs three
// round trips: BEGIN with the context, the statement, and COMMIT with the
// reset of business code's connection (five before: BEGIN, the context,
// the statement, COMMIT, DISCARD ALL). The statement still runs under
// the context, and the reset still happens.
func TestScopedTxRoundTrips(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	for _, untrusted := range []bool{true, false} {
		pool, writes := e.countingPool(t)
		pid := backendPID(t, pool, e.mint(t, "pa", nil), untrusted) // the connection made
		writes.Store(0)
		var canary string
		err := postgres.ScopedTx(ctx, pool, e.mint(t, "pa", nil), postgres.ScopeOptions{Untrusted: untrusted}, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT name FROM app.projects WHERE name LIKE $1`, "canary-%").Scan(&canary)
		})
		if err != nil || canary != "canary-pa" {
			t.Fatalf("untrusted %t: read %q, %v; want canary-pa", untrusted, canary, err)
		}
		if n := writes.Load(); n != 3 {
			t.Errorf("untrusted %t: %d round trips for a transaction of one statement, want 3", untrusted, n)
		}
		if again := backendPID(t, pool, e.mint(t, "pa", nil), untrusted); again != pid {
			t.Errorf("untrusted %t: the connection was replaced (backend %d, then %d)", untrusted, pid, again)
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
	scoped := func(fn func(pgx.Tx) error) error {
		return postgres.ScopedTx(ctx, pool, e.mint(t, "pa", nil), postgres.ScopeOptions{Untrusted: true}, fn)
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
		t.Run(tt.name, func(t *testing.T) {
			var kept pgx.Tx
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			err := postgres.ScopedTx(cctx, pool, e.mint(t, "pa", nil), postgres.ScopeOptions{Untrusted: true}, func(tx pgx.Tx) error {
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
			if n := count("endings-" + strings.ReplaceAll(tt.name, " ", "-")); n != tt.written {
				t.Errorf("%d rows written, want %d", n, tt.written)
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
