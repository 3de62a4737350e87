package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// SetContextSQL sets the signed tenant context for the current transaction
// only. The token is always a bound parameter: never part of SQL text, so
// it appears neither in pg_stat_activity nor in statement logs.
const SetContextSQL = `SELECT pg_catalog.set_config('bulkhead.context', $1, true)`

// ScopeOptions tune ScopedTx.
type ScopeOptions struct {
	// Untrusted marks fn as business code: the connection is reset with
	// DISCARD ALL (and pgx's statement cache forgotten) before it serves
	// anyone else, and destroyed if that fails, so session state fn may
	// have left (settings, SET ROLE, prepared statements, search_path)
	// cannot reach the next tenant.
	Untrusted bool
	// StatementTimeout, when positive, is set as statement_timeout for the
	// transaction (whole milliseconds, at least one), in the statement
	// that sets the context: each of fn's statements that runs longer
	// fails with the fault code statement_timeout. fn may change it; it
	// is a bound for honest code, and the watchdog's statement limit is
	// the one business code cannot lift.
	StatementTimeout time.Duration
	// Principal names whom fn's transaction serves (the context's
	// audience, tenant, subject and role; bulkhead.DB.Tx sets it). With
	// Untrusted, a transaction that commits cleanly leaves its connection
	// marked as that principal's instead of resetting it, and DISCARD ALL
	// leads the next transaction on it for any other principal (or none):
	// the reset still comes before the connection serves anyone else, in
	// that transaction's first round trip, and a principal's consecutive
	// transactions keep their cached plans. Empty resets after every
	// transaction.
	Principal string
	// ParallelWorkers, when not nil, is set as
	// max_parallel_workers_per_gather for the transaction, with the
	// context: a statement with n workers keeps n+1 CPUs busy.
	ParallelWorkers *int
}

// The statements that set the context, and the limits given, in one
// statement, transaction-local.
const (
	setContextTimeoutSQL         = `SELECT pg_catalog.set_config('bulkhead.context', $1, true), pg_catalog.set_config('statement_timeout', $2, true)`
	setContextParallelSQL        = `SELECT pg_catalog.set_config('bulkhead.context', $1, true), pg_catalog.set_config('max_parallel_workers_per_gather', $2, true)`
	setContextTimeoutParallelSQL = `SELECT pg_catalog.set_config('bulkhead.context', $1, true), pg_catalog.set_config('statement_timeout', $2, true), pg_catalog.set_config('max_parallel_workers_per_gather', $3, true)`
)

// setContext queues (or runs) the statement that sets token and the
// limits given, transaction-local.
func setContext(token string, timeout time.Duration, parallel *int) (string, []any) {
	switch {
	case timeout > 0 && parallel != nil:
		return setContextTimeoutParallelSQL, []any{token, msText(timeout), strconv.Itoa(*parallel)}
	case timeout > 0:
		return setContextTimeoutSQL, []any{token, msText(timeout)}
	case parallel != nil:
		return setContextParallelSQL, []any{token, strconv.Itoa(*parallel)}
	}
	return SetContextSQL, []any{token}
}

// MaxParallelWorkers is the largest max_parallel_workers_per_gather
// PostgreSQL takes; larger requests are clamped to it.
const MaxParallelWorkers = 1024

// msText is d as statement_timeout takes it: whole milliseconds, at least
// one (0 would be "none").
func msText(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
}

// ScopedTx runs fn in one transaction on pool whose first statement sets
// the signed tenant context token. The context is transaction-local: it is
// gone at COMMIT or ROLLBACK, whatever fn did. fn's error rolls back.
//
// BEGIN and the context travel in one round trip with fn's first
// statement (a transaction in which fn runs nothing sends nothing), and,
// with o.Untrusted, COMMIT (or ROLLBACK) and the reset in another; with
// o.Principal too, a clean COMMIT goes alone and the reset leads the first
// round trip of the connection's next transaction for another principal.
// fn ending the transaction itself is an error: what it ran after that
// ran without the context.
func ScopedTx(ctx context.Context, pool *pgxpool.Pool, token string, o ScopeOptions, fn func(pgx.Tx) error) (err error) {
	if token == "" {
		return fault.E(fault.Unauthenticated, "no_tenant", "No tenant context is associated with this request.")
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Translate(err)
	}
	// done is set once the transaction has ended and, for business code,
	// the connection has been reset: then it serves again.
	done := false
	defer func() {
		if !done || conn.Conn().PgConn().IsBusy() || conn.Conn().PgConn().TxStatus() != 'I' {
			destroy(conn)
			return
		}
		conn.Release()
	}()
	tx := &scopedTx{conn: conn.Conn(), ctx: ctx, token: token, o: o}
	if p, dirty := dirtyFor(tx.conn); dirty && (p != o.Principal || p == "") {
		tx.reset = true
	}
	fnErr := fn(tx)
	if tx.tx == nil {
		// fn sent nothing: the connection is as it was.
		tx.end()
		done = true
		return Translate(fnErr)
	}
	if !o.Untrusted {
		if fnErr != nil {
			if rerr := tx.Rollback(context.WithoutCancel(ctx)); rerr == nil || errors.Is(rerr, pgx.ErrTxClosed) {
				done = true
			}
			return Translate(fnErr)
		}
		if err := tx.Commit(ctx); err != nil {
			return Translate(err)
		}
		done = true
		return nil
	}
	// Isolation: end the transaction and reset whatever business code
	// left on the session, in one round trip. A caller's context that is
	// done by now rolls back. Once sent, the round trip outlives the
	// caller's context, but not a hung connection: past resetTimeout the
	// connection is destroyed instead.
	verb := "COMMIT"
	if fnErr == nil {
		fnErr = ctx.Err()
	}
	if fnErr != nil {
		verb = "ROLLBACK"
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resetTimeout)
	defer cancel()
	pc := conn.Conn().PgConn()
	canLock, known := advisoryLocks(tx.conn)
	deferred := fnErr == nil && o.Principal != "" && known && pc.TxStatus() == 'T'
	var commitErr error
	if deferred {
		// A clean end for a known principal: COMMIT, and the connection
		// marked as the principal's, to be reset before it serves anyone
		// else. Session advisory locks, where the login may take them,
		// are released with the COMMIT all the same: they are held
		// against every tenant, and a connection may idle in the pool for
		// a long time. Anything that fails resets now.
		unlock := ""
		if canLock {
			unlock = `SELECT pg_catalog.pg_advisory_unlock_all()`
		}
		var unlockErr error
		commitErr, unlockErr = endAndReset(ectx, tx.tx, "COMMIT", unlock)
		if commitErr == nil && unlockErr == nil && !pc.IsClosed() && !pc.IsBusy() && pc.TxStatus() == 'I' {
			markDirty(tx.conn, o.Principal)
			done = true
			return nil
		}
		if commitErr == nil && pc.TxStatus() != 'I' {
			commitErr = errors.New("postgres: COMMIT left the connection in a transaction")
		}
		verb = "ROLLBACK" // sent only if the transaction is still open
	}
	verbErr, resetErr := endAndReset(ectx, tx.tx, verb, `DISCARD ALL`)
	if deferred {
		verbErr = commitErr
	}
	if resetErr == nil && !pc.IsClosed() {
		// DISCARD ALL dropped every prepared statement, fn's and any under
		// a name pgx caches: pgx forgets them too, or its Prepare would
		// take a name for prepared and the statement would fail.
		forgetPrepared(conn.Conn())
		markClean(tx.conn)
		done = true
	}
	if fnErr != nil {
		return Translate(fnErr)
	}
	if verbErr != nil {
		return Translate(verbErr)
	}
	return nil
}

// dirtyKey marks, in a connection's custom data, the principal whose
// business code last used it without a reset since.
const dirtyKey = "bulkhead.dirty_for"

// dirtyFor returns the principal a connection was last used for without a
// reset since, if any.
func dirtyFor(c *pgx.Conn) (string, bool) {
	p, ok := c.PgConn().CustomData()[dirtyKey].(string)
	return p, ok
}

func markDirty(c *pgx.Conn, principal string) { c.PgConn().CustomData()[dirtyKey] = principal }

func markClean(c *pgx.Conn) { delete(c.PgConn().CustomData(), dirtyKey) }

// lockKey records, in a connection's custom data, whether its login may
// take session advisory locks: where bulkhead's set-up could not revoke
// the functions (a managed service's admin is no superuser).
const lockKey = "bulkhead.advisory_locks"

// advisoryLocks reports whether c's login may take session advisory
// locks, and whether that is known: AppPoolConfig's pools find out when
// they connect. Business code's connections whose answer is unknown are
// reset after every transaction.
func advisoryLocks(c *pgx.Conn) (can, known bool) {
	can, known = c.PgConn().CustomData()[lockKey].(bool)
	return can, known
}

// noteAdvisoryLocks asks PostgreSQL whether c's login may take session
// advisory locks, and records the answer for advisoryLocks.
func noteAdvisoryLocks(ctx context.Context, c *pgx.Conn) error {
	var can bool
	if err := c.QueryRow(ctx, `SELECT pg_catalog.has_function_privilege('pg_catalog.pg_advisory_lock(bigint)', 'EXECUTE')`).Scan(&can); err != nil {
		return fmt.Errorf("postgres: ask whether the login may take advisory locks: %w", err)
	}
	c.PgConn().CustomData()[lockKey] = can
	return nil
}

// resetTimeout bounds the reset of a connection business code used.
const resetTimeout = 10 * time.Second

func destroy(c *pgxpool.Conn) {
	pc := c.Hijack()
	pc.Close(context.Background())
}

// Schema returns the schema of a placement ("pool", or its schema "app",
// or a silo schema name), checking that it is one bulkhead makes.
func Schema(placement string) (string, error) {
	if placement == "pool" || placement == PoolSchema || placement == "" {
		return PoolSchema, nil
	}
	if len(placement) != 34 || placement[:2] != "t_" {
		return "", fmt.Errorf("postgres: invalid placement %q", placement)
	}
	for _, c := range placement[2:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("postgres: invalid placement %q", placement)
		}
	}
	return placement, nil
}

// ScopedStatement runs one statement of trusted code (the data API) in a
// tenant-scoped transaction, in one round trip: the context and the
// statement travel as one pipelined batch. scan reads the statement's
// single row. When check is not nil, the transaction stays open until it
// returns: a check that fails rolls back, one that passes commits (a
// second round trip).
func ScopedStatement(ctx context.Context, pool *pgxpool.Pool, token, sql string, args []any, scan func(pgx.Row) error, check func() error, opts ...StatementOption) (err error) {
	var o statementOptions
	for _, f := range opts {
		f(&o)
	}
	if token == "" {
		return fault.E(fault.Unauthenticated, "no_tenant", "No tenant context is associated with this request.")
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return Translate(err)
	}
	if o.took != nil {
		began := time.Now()
		defer func() { *o.took = time.Since(began) }()
	}
	defer func() {
		// Isolation: a connection is only returned outside any transaction.
		pc := conn.Conn().PgConn()
		if !pc.IsClosed() && pc.TxStatus() != 'I' {
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`); rerr != nil {
				destroy(conn)
				return
			}
		}
		if pc.IsClosed() || pc.TxStatus() != 'I' {
			destroy(conn)
			return
		}
		conn.Release()
	}()
	if o.timeout > 0 {
		// The plan's statement timeout bounds the statement as PostgreSQL
		// runs it (set below). A statement's first use on a connection is
		// also prepared there, before that setting applies, and its
		// preparation can wait on a lock; this deadline bounds that too.
		bctx, cancel := context.WithTimeoutCause(ctx, o.timeout+statementGrace, errStatementTimeout)
		defer cancel()
		parent := ctx
		defer func() {
			if err != nil && parent.Err() == nil && errors.Is(context.Cause(bctx), errStatementTimeout) {
				err = &fault.Error{Kind: fault.Unavailable, Code: "statement_timeout", Message: "The statement took too long.", Err: err}
			}
		}()
		ctx = bctx
	}
	// Without a check, the two statements go as one pipeline with a single
	// Sync: PostgreSQL runs them as one implicit transaction, so the
	// transaction-local context lives exactly as long as the statement
	// needs it, and either both run or neither does. With a check, an
	// explicit BEGIN keeps the transaction open until the check decides.
	b := &pgx.Batch{}
	if check != nil {
		b.Queue(`BEGIN`)
	}
	// One statement sets the context and the limits given,
	// transaction-local.
	setSQL, setArgs := setContext(token, o.timeout, o.parallel)
	b.Queue(setSQL, setArgs...)
	b.Queue(sql, args...)
	br := conn.SendBatch(ctx, b)
	if check != nil {
		_, err = br.Exec()
	}
	if err == nil {
		if _, err = br.Exec(); err == nil {
			err = scan(br.QueryRow())
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Translate(err)
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, `COMMIT`); err != nil {
			return Translate(err)
		}
	}
	return nil
}

// statementGrace is how long past a statement timeout the client waits
// before it gives up on the statement itself.
const statementGrace = 500 * time.Millisecond

var errStatementTimeout = errors.New("postgres: statement timeout")

// StatementOption tunes ScopedStatement.
type StatementOption func(*statementOptions)

type statementOptions struct {
	timeout  time.Duration
	parallel *int
	took     *time.Duration
}

// StatementTimeout bounds the statement (a tenant's plan limit).
func StatementTimeout(d time.Duration) StatementOption {
	return func(o *statementOptions) { o.timeout = d }
}

// ParallelWorkers bounds the parallel workers PostgreSQL may start for
// the statement (max_parallel_workers_per_gather, a tenant's plan
// limit). A statement with n workers keeps n+1 backends busy while the
// time it is charged is its own; 0 (or less) runs it in its one backend.
func ParallelWorkers(n int) StatementOption {
	n = min(max(n, 0), MaxParallelWorkers)
	return func(o *statementOptions) { o.parallel = &n }
}

// Took stores in d how long the statement's transaction took once it had
// a connection: the database's time, without the wait for the pool.
func Took(d *time.Duration) StatementOption {
	return func(o *statementOptions) { o.took = d }
}
