package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// beginScoped sends BEGIN and the statement that sets the context and
// the limits o gives as one pipeline (DESIGN: they travel in one round
// trip; pgx's own Conn.Begin spends one on BEGIN alone).
func beginScoped(ctx context.Context, conn *pgx.Conn, token string, o ScopeOptions) (pgx.Tx, error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	sql, args := setContext(token, o.StatementTimeout, o.ParallelWorkers)
	b.Queue(sql, args...)
	br := conn.SendBatch(ctx, b)
	tx := br.Tx()
	if err := br.Close(); err != nil {
		// A BEGIN that failed left the transaction closed; a context that
		// failed after it left it aborted.
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return tx, nil
}

// endAndReset ends tx with verb (COMMIT or ROLLBACK) and resets its
// connection with DISCARD ALL, in one round trip: each statement with a
// Sync of its own, as DISCARD ALL may run neither in a transaction block
// nor in a pipeline's implicit one. verbErr is verb's error (for a COMMIT
// that rolled back, pgx.ErrTxCommitRollback), resetErr the reset's. tx is
// closed after it, as pgx.Tx's Commit closes it: fn may have kept it, and
// every method of a closed one fails with pgx.ErrTxClosed.
func endAndReset(ctx context.Context, tx pgx.Tx, verb string) (verbErr, resetErr error) {
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
	p.SendQueryParams(`DISCARD ALL`, nil, nil, nil, nil)
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		p.Close()
		closeTx(tx)
		return err, err
	}
	if verb != "" {
		verbErr = readResult(p, verb == "COMMIT")
	}
	resetErr = readResult(p, false)
	if err := p.Close(); err != nil && resetErr == nil {
		resetErr = err
	}
	closeTx(tx)
	return verbErr, resetErr
}

// closeTx marks tx closed without a word to the server, whose transaction
// has already ended: pgx.Tx's Commit with a context that is done sends
// nothing, and closes the Tx.
func closeTx(tx pgx.Tx) {
	if tx.Conn().PgConn().TxStatus() != 'I' {
		return // the connection is destroyed instead
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tx.Commit(done)
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
