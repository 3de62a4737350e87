package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// endAndReset ends tx with verb (COMMIT or ROLLBACK) and then runs reset
// (DISCARD ALL, or a partial clean-up, or nothing when empty), in one
// round trip: each statement with a Sync of its own, as DISCARD ALL may
// run neither in a transaction block nor in a pipeline's implicit one.
// verbErr is verb's error (for a COMMIT that rolled back,
// pgx.ErrTxCommitRollback), resetErr reset's. tx is closed after it, as
// pgx.Tx's Commit closes it: fn may have kept it, and every method of a
// closed one fails with pgx.ErrTxClosed.
func endAndReset(ctx context.Context, tx pgx.Tx, verb, reset string) (verbErr, resetErr error) {
	pc := tx.Conn().PgConn()
	if pc.TxStatus() == 'I' {
		// fn ended the transaction itself: pgx.Tx's Commit or Rollback,
		// or the statement. Its work is not the transaction ScopedTx
		// promised (what ran after it ran without the context); only the
		// reset is left to do.
		verbErr = pgx.ErrTxClosed
		verb = ""
	}
	p := pc.StartPipeline(ctx)
	if verb != "" {
		p.SendQueryParams(verb, nil, nil, nil, nil)
		p.SendPipelineSync()
	}
	if reset != "" {
		p.SendQueryParams(reset, nil, nil, nil, nil)
		p.SendPipelineSync()
	}
	if err := p.Flush(); err != nil {
		p.Close()
		closeTx(tx)
		return err, err
	}
	if verb != "" {
		verbErr = readResult(p, verb == "COMMIT")
	}
	if reset != "" {
		resetErr = readResult(p, false)
	}
	if err := p.Close(); err != nil && resetErr == nil {
		resetErr = err
	}
	closeTx(tx)
	return verbErr, resetErr
}

// closeTx marks tx closed without a word to the server, whose transaction
// has already ended, or whose connection is lost: pgx.Tx's Commit with a
// context that is done sends nothing, and closes the Tx.
func closeTx(tx pgx.Tx) {
	pc := tx.Conn().PgConn()
	if pc.TxStatus() != 'I' && !pc.IsClosed() {
		return // the connection is destroyed instead
	}
	tx.Commit(doneCtx)
}

// doneCtx is a context that is done: pgx sends nothing under it.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// forgetPrepared clears pgx's record of the statements prepared on conn,
// which the reset has deallocated in PostgreSQL, without a word to the
// server: pgx's DeallocateAll clears it before it sends its own
// DEALLOCATE ALL, which a context that is done stops.
func forgetPrepared(conn *pgx.Conn) {
	conn.DeallocateAll(doneCtx)
}

// readResult reads one statement's result from p, and the Sync's after
// it. With commit, a COMMIT that rolled back is pgx.ErrTxCommitRollback.
func readResult(p *pgconn.Pipeline, commit bool) error {
	res, err := p.GetResults()
	if rr, ok := res.(*pgconn.ResultReader); ok && err == nil {
		var tag pgconn.CommandTag
		tag, err = rr.Close()
		if err == nil && commit && tag.String() == "ROLLBACK" {
			err = pgx.ErrTxCommitRollback
		}
	} else if err == nil {
		err = fmt.Errorf("postgres: unexpected pipeline result %T", res)
	}
	sync, serr := p.GetResults()
	if _, ok := sync.(*pgconn.PipelineSync); !ok && err == nil {
		err = serr
		if err == nil {
			err = fmt.Errorf("postgres: unexpected pipeline result %T", sync)
		}
	}
	return err
}

// scopedTx is the Tx ScopedTx hands to fn: pgx's own, begun with fn's
// first statement. BEGIN, the context and that statement travel as one
// pipeline (DESIGN: BEGIN, set_config and the work in one round trip); a
// transaction fn runs nothing in sends nothing. Statements that cannot
// travel with them (see pipelined) and every other method begin the
// transaction first, in a round trip of its own.
type scopedTx struct {
	// tx is pgx's transaction, nil until begun. It is a field, not an
	// embedded pgx.Tx: scopedTx implements every method itself, so a method
	// pgx adds to its Tx interface fails the build here instead of reaching
	// a nil transaction at run time.
	tx   pgx.Tx
	conn *pgx.Conn
	// ctx is ScopedTx's, for the two methods pgx.Tx gives none: Conn and
	// LargeObjects begin the transaction before they return.
	ctx   context.Context
	token string
	o     ScopeOptions
	// ended is set when the transaction ended before it began.
	ended bool
	// reset is set when the connection last served business code for
	// another principal and was not reset since: DISCARD ALL then leads
	// the pipeline that begins the transaction.
	reset bool
}

var _ pgx.Tx = (*scopedTx)(nil)

// batch is a batch that begins the transaction and sets the context.
func (t *scopedTx) batch() *pgx.Batch {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	sql, args := setContext(t.token, t.o.StatementTimeout, t.o.ParallelWorkers)
	b.Queue(sql, args...)
	if t.reset {
		// DISCARD ALL runs first in the pipeline, before BEGIN: as the
		// first statement after a Sync it is in no transaction block and
		// in no pipeline's implicit one yet, and PostgreSQL commits it at
		// once. pgx forgets the statements it drops before they are sent.
		b.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: `DISCARD ALL`}}, b.QueuedQueries...)
		forgetPrepared(t.conn)
	}
	return b
}

// leading is how many results the batch has before fn's statement's.
func (t *scopedTx) leading() int {
	if t.reset {
		return 3 // DISCARD ALL, BEGIN, the context
	}
	return 2
}

// resetDone records that the reset the batch led with ran.
func (t *scopedTx) resetDone() {
	if t.reset {
		t.reset = false
		markClean(t.conn)
	}
}

// begin sends BEGIN and the context on their own.
func (t *scopedTx) begin(ctx context.Context) error {
	if t.ended {
		return pgx.ErrTxClosed
	}
	if t.tx != nil {
		return nil
	}
	br := t.conn.SendBatch(ctx, t.batch())
	t.tx = br.Tx()
	if err := br.Close(); err != nil {
		return err
	}
	t.resetDone()
	return nil
}

// sendWith sends BEGIN, the context and sql as one pipeline, and reads
// the results of the first two. The caller reads sql's and closes the
// batch.
func (t *scopedTx) sendWith(ctx context.Context, sql string, args []any) pgx.BatchResults {
	b := t.batch()
	b.Queue(sql, args...)
	br := t.conn.SendBatch(ctx, b)
	t.tx = br.Tx()
	for i := range t.leading() {
		if _, err := br.Exec(); err != nil {
			break // an error is the batch's from here on
		}
		if i == 0 {
			t.resetDone()
		}
	}
	return br
}

// pipelined reports whether a statement with args can travel with BEGIN
// and the context: the transaction is not begun, and the statement goes
// as pgx sends a batch's (args that start with one of pgx's options other
// than a QueryRewriter do not). exec is for Exec, which pgx sends with
// the simple protocol when there are no args: that may carry several
// statements, which a pipeline does not.
func (t *scopedTx) pipelined(args []any, exec bool) bool {
	if t.tx != nil || t.ended || exec && len(args) == 0 {
		return false
	}
	if len(args) > 0 {
		switch args[0].(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
			return false
		}
	}
	return true
}

// Exec runs sql.
func (t *scopedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if !t.pipelined(args, true) {
		if err := t.begin(ctx); err != nil {
			return pgconn.CommandTag{}, err
		}
		return t.tx.Exec(ctx, sql, args...)
	}
	br := t.sendWith(ctx, sql, args)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// Query runs sql and returns its rows.
func (t *scopedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !t.pipelined(args, false) {
		if err := t.begin(ctx); err != nil {
			return errRows{err}, err
		}
		return t.tx.Query(ctx, sql, args...)
	}
	br := t.sendWith(ctx, sql, args)
	rows, err := br.Query()
	r := &batchRows{Rows: rows, br: br}
	if err != nil {
		r.Close()
		return r, err
	}
	return r, nil
}

// QueryRow runs sql and returns its first row.
func (t *scopedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if !t.pipelined(args, false) {
		if err := t.begin(ctx); err != nil {
			return errRow{err}
		}
		return t.tx.QueryRow(ctx, sql, args...)
	}
	rows, err := t.Query(ctx, sql, args...)
	return &row{rows: rows, err: err}
}

// SendBatch sends b in the transaction.
func (t *scopedTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := t.begin(ctx); err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return t.tx.SendBatch(ctx, b)
}

// CopyFrom copies rows into table.
func (t *scopedTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.begin(ctx); err != nil {
		return 0, err
	}
	return t.tx.CopyFrom(ctx, table, columns, src)
}

// Prepare prepares sql on the connection (which the reset of business
// code's connections deallocates).
func (t *scopedTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.tx.Prepare(ctx, name, sql)
}

// Begin starts a nested transaction (a savepoint).
func (t *scopedTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.tx.Begin(ctx)
}

// LargeObjects returns the large-object API of the transaction, begun.
// PostgreSQL refuses large objects to bulkhead's app roles (they are
// outside row security).
func (t *scopedTx) LargeObjects() pgx.LargeObjects {
	if t.tx == nil && !t.ended {
		t.begin(t.ctx) // a failure leaves pgx's Tx closed, or the transaction aborted
	}
	if t.tx == nil {
		return closedTx().LargeObjects()
	}
	return t.tx.LargeObjects()
}

// Conn returns the connection, with the transaction begun on it.
func (t *scopedTx) Conn() *pgx.Conn {
	if t.tx == nil && !t.ended {
		t.begin(t.ctx) // a failure leaves the transaction closed or aborted
	}
	return t.conn
}

// Commit commits the transaction; one that has not begun ends without a
// word to the server. ScopedTx commits when fn returns nil: fn
// committing itself makes that an error.
func (t *scopedTx) Commit(ctx context.Context) error {
	if t.tx == nil {
		return t.end()
	}
	return t.tx.Commit(ctx)
}

// Rollback rolls the transaction back (see Commit).
func (t *scopedTx) Rollback(ctx context.Context) error {
	if t.tx == nil {
		return t.end()
	}
	return t.tx.Rollback(ctx)
}

func (t *scopedTx) end() error {
	if t.ended {
		return pgx.ErrTxClosed
	}
	t.ended = true
	return nil
}

// closedTx is a pgx Tx that is closed, for the methods of a scopedTx that
// ended before it began: every method fails with pgx.ErrTxClosed.
func closedTx() pgx.Tx {
	return pgx.FailedBatchResults(txBatch(), pgx.ErrTxClosed).Tx()
}

func txBatch() *pgx.Batch {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	return b
}

// batchRows are the rows of a statement that travelled with BEGIN and the
// context: the batch is closed with them, which frees the connection.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	err    error
	closed bool
}

// Next advances to the next row, closing the batch after the last.
func (r *batchRows) Next() bool {
	if r.closed {
		return false
	}
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

// Close closes the rows and the batch.
func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.br.Close()
}

// Err is the rows' error, else the batch's.
func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// row is the first row of batchRows, read as pgx reads its own.
type row struct {
	rows pgx.Rows
	err  error
}

// Scan reads the first row into dest: pgx.ErrNoRows when there is none.
func (r *row) Scan(dest ...any) error {
	defer r.rows.Close()
	if r.err != nil {
		return r.err
	}
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// errRow is a row whose statement was not sent.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// errRows are the rows of a statement that was not sent.
type errRows struct{ err error }

func (r errRows) Close()                                       {}
func (r errRows) Err() error                                   { return r.err }
func (r errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (r errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (r errRows) Next() bool                                   { return false }
func (r errRows) Scan(...any) error                            { return r.err }
func (r errRows) Values() ([]any, error)                       { return nil, r.err }
func (r errRows) RawValues() [][]byte                          { return nil }
func (r errRows) Conn() *pgx.Conn                              { return nil }
func (r errRows) TypeMap() *pgtype.Map                         { return nil }
