package gameday

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// secret is an argument that must not appear in evidence: a signed context.
// The evidence shows its label.
type secret struct{ label, value string }

// setter puts a tenant context into the current transaction: either SQL
// with a signed context as its one argument (bulkhead), or SQL run as it is
// (a user's database).
type setter struct {
	label string // "A", "B", "forged: raw tenant uuid", …
	sql   string // empty: no context
	token func() (string, error)
}

func (s setter) none() bool { return s.sql == "" }

// outcome is what one statement did.
type outcome struct {
	rows [][]string // the first rows, as text
	n    int64      // rows returned, or affected
	tag  string
	err  error
}

func (o outcome) ok() bool { return o.err == nil }

// code is the SQLSTATE of a database error, "" on success, "?" for any
// other failure.
func (o outcome) code() string {
	if o.err == nil {
		return ""
	}
	var pe *pgconn.PgError
	if errors.As(o.err, &pe) {
		return pe.Code
	}
	return "?"
}

// constraint is the constraint a database error names.
func (o outcome) constraint() string {
	var pe *pgconn.PgError
	if errors.As(o.err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

// class says how a statement ended, in a form two outcomes can be compared
// by: success, or SQLSTATE and constraint. Messages are left out: they may
// quote the values tried.
func (o outcome) class() string {
	if o.err == nil {
		return "ok"
	}
	return o.code() + "/" + o.constraint()
}

// int returns the first row's column i as an integer (0 when absent).
func (o outcome) int(i int) int64 {
	if len(o.rows) == 0 || len(o.rows[0]) <= i {
		return 0
	}
	var n int64
	fmt.Sscan(o.rows[0][i], &n)
	return n
}

// str returns the first row's column i.
func (o outcome) str(i int) string {
	if len(o.rows) == 0 || len(o.rows[0]) <= i {
		return ""
	}
	return o.rows[0][i]
}

// String describes the outcome for evidence.
func (o outcome) String() string {
	if o.err != nil {
		return errText(o.err)
	}
	if len(o.rows) == 0 {
		if o.tag != "" && !strings.HasPrefix(o.tag, "SELECT") {
			return o.tag
		}
		return "0 rows"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d row", o.n)
	if o.n != 1 {
		b.WriteString("s")
	}
	b.WriteString(": ")
	for i, r := range o.rows {
		if i == 3 {
			b.WriteString(" …")
			break
		}
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString("(" + strings.Join(r, ", ") + ")")
	}
	return truncate(b.String(), 400)
}

func errText(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return truncate("ERROR "+pe.Code+": "+pe.Message, 400)
	}
	return truncate("error: "+err.Error(), 400)
}

// attacker holds the app login's connection settings and the attack
// connection, and collects the NOTICEs the server sends it.
type attacker struct {
	cfg  *pgx.ConnConfig
	conn *pgx.Conn

	mu      sync.Mutex
	notices []string
}

func newAttacker(url string) (*attacker, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("gameday: the app database URL could not be parsed")
	}
	return newAttackerConfig(cfg), nil
}

func newAttackerConfig(cfg *pgx.ConnConfig) *attacker {
	a := &attacker{cfg: cfg}
	// Unnamed statements only: nothing prepared outlives its transaction,
	// and contexts travel as bound parameters.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cfg.StatementCacheCapacity = 0
	cfg.DescriptionCacheCapacity = 0
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "bulkhead-gameday"
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		a.mu.Lock()
		if len(a.notices) < 10000 {
			a.notices = append(a.notices, n.Message)
		}
		a.mu.Unlock()
	}
	return a
}

// get returns the attack connection, dialling it again if it was closed
// (a probe may end its own session).
func (a *attacker) get(ctx context.Context) (*pgx.Conn, error) {
	if a.conn != nil && !a.conn.IsClosed() && a.conn.PgConn().TxStatus() == 'I' {
		return a.conn, nil
	}
	if a.conn != nil {
		a.conn.Close(ctx)
	}
	c, err := a.dial(ctx)
	if err != nil {
		return nil, err
	}
	a.conn = c
	return c, nil
}

// dial opens another session as the same login.
func (a *attacker) dial(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, a.cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("gameday: connect as the app login %s: %w", a.cfg.User, err)
	}
	return c, nil
}

func (a *attacker) takeNotices() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.notices
	a.notices = nil
	return n
}

func (a *attacker) close(ctx context.Context) {
	if a.conn != nil {
		a.conn.Close(ctx)
		a.conn = nil
	}
}

// attempt is one transaction of a probe. It is always rolled back.
type attempt struct {
	ctx   context.Context
	tx    pgx.Tx
	as    string
	steps []Step
	sp    int
}

// txOptions tune a probe's transaction.
type txOptions struct {
	readOnly bool
	timeout  time.Duration // statement_timeout; zero means the runner's
}

// within runs fn in a transaction on conn that is always rolled back, with
// a statement_timeout and a lock_timeout. It returns the evidence, and an
// error only when the transaction could not even begin.
func within(ctx context.Context, conn *pgx.Conn, o txOptions, fn func(*attempt)) ([]Step, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	opts := pgx.TxOptions{}
	if o.readOnly {
		opts.AccessMode = pgx.ReadOnly
	}
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	// Isolation: every probe ends in ROLLBACK, whatever it did.
	defer tx.Rollback(context.WithoutCancel(ctx))
	st := o.timeout
	if st == 0 {
		st = 10 * time.Second
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL statement_timeout = %d; SET LOCAL lock_timeout = 2000; SET LOCAL idle_in_transaction_session_timeout = 120000`, st.Milliseconds())); err != nil {
		return nil, err
	}
	a := &attempt{ctx: ctx, tx: tx}
	fn(a)
	return a.steps, nil
}

// run executes one statement inside a savepoint, so a failure leaves the
// transaction usable, and records it as evidence.
func (a *attempt) run(sql string, args ...any) outcome {
	a.sp++
	sp := fmt.Sprintf("gameday_%d", a.sp)
	if _, err := a.tx.Exec(a.ctx, "SAVEPOINT "+sp); err != nil {
		o := outcome{err: err}
		a.record(sql, args, o)
		return o
	}
	o := query(a.ctx, a.tx, sql, args)
	if o.err != nil {
		a.tx.Exec(a.ctx, "ROLLBACK TO SAVEPOINT "+sp)
	} else {
		a.tx.Exec(a.ctx, "RELEASE SAVEPOINT "+sp)
	}
	a.record(sql, args, o)
	return o
}

// quiet is run without evidence: catalog look-ups that only steer a probe.
func (a *attempt) quiet(sql string, args ...any) outcome {
	a.sp++
	sp := fmt.Sprintf("gameday_%d", a.sp)
	if _, err := a.tx.Exec(a.ctx, "SAVEPOINT "+sp); err != nil {
		return outcome{err: err}
	}
	o := query(a.ctx, a.tx, sql, args)
	if o.err != nil {
		a.tx.Exec(a.ctx, "ROLLBACK TO SAVEPOINT "+sp)
	} else {
		a.tx.Exec(a.ctx, "RELEASE SAVEPOINT "+sp)
	}
	return o
}

// set puts a context into the transaction. A user's context SQL runs as it
// is, with the simple protocol, since it may hold several statements.
func (a *attempt) set(s setter) outcome {
	if s.none() {
		return outcome{}
	}
	prev := a.as
	a.as = s.label
	defer func() { a.as = prev }()
	if s.token == nil {
		a.sp++
		sp := fmt.Sprintf("gameday_%d", a.sp)
		a.tx.Exec(a.ctx, "SAVEPOINT "+sp)
		tag, err := a.tx.Exec(a.ctx, s.sql)
		o := outcome{err: err, tag: tag.String()}
		if err != nil {
			a.tx.Exec(a.ctx, "ROLLBACK TO SAVEPOINT "+sp)
		} else {
			a.tx.Exec(a.ctx, "RELEASE SAVEPOINT "+sp)
		}
		a.recordSet(redact(s.sql), nil, o)
		return o
	}
	arg := secret{label: "<" + s.label + ">"}
	tok, err := s.token()
	if err != nil {
		o := outcome{err: err}
		a.recordSet(s.sql, []any{arg}, o)
		return o
	}
	arg.value = tok
	o := a.quiet(s.sql, arg)
	a.recordSet(s.sql, []any{arg}, o)
	return o
}

// opaque matches long tokens, signatures and keys.
var opaque = regexp.MustCompile(`[A-Za-z0-9_+/=-]{8,}(\.[A-Za-z0-9_+/=-]{8,})+|[A-Za-z0-9_+/=-]{32,}`)

// redact shortens every long opaque token in a context's SQL (a JWT, a
// signature) to its first characters: contexts are secrets. UUIDs stay.
func redact(sql string) string {
	return opaque.ReplaceAllStringFunc(sql, func(m string) string {
		if uuidRE.MatchString(m) || len(m) < 32 {
			return m
		}
		return m[:6] + "…(redacted)"
	})
}

// recordSet records the setting of a context without what the statement
// returned: set_config echoes the context, which may be a secret.
func (a *attempt) recordSet(sql string, args []any, o outcome) {
	got := "context set"
	if o.err != nil {
		got = errText(o.err)
	}
	a.steps = append(a.steps, Step{As: a.as, SQL: oneLine(sql, 2000), Args: showArgs(args), Got: got})
}

func (a *attempt) record(sql string, args []any, o outcome) {
	a.steps = append(a.steps, Step{As: a.as, SQL: oneLine(sql, 2000), Args: showArgs(args), Got: o.String()})
}

// note adds a line of evidence that is not a statement.
func (a *attempt) note(what, got string) {
	a.steps = append(a.steps, Step{As: a.as, SQL: what, Got: got})
}

type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

func query(ctx context.Context, q querier, sql string, args []any) outcome {
	real := make([]any, len(args))
	for i, x := range args {
		if s, ok := x.(secret); ok {
			real[i] = s.value
		} else {
			real[i] = x
		}
	}
	rows, err := q.Query(ctx, sql, real...)
	if err != nil {
		return outcome{err: err}
	}
	var o outcome
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return outcome{err: err}
		}
		if len(o.rows) < 50 {
			r := make([]string, len(vals))
			for i, v := range vals {
				r[i] = show(v)
			}
			o.rows = append(o.rows, r)
		}
		o.n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return outcome{err: err}
	}
	tag := rows.CommandTag()
	o.tag = tag.String()
	if !tag.Select() && len(o.rows) == 0 {
		o.n = tag.RowsAffected()
	}
	return o
}

func showArgs(args []any) []string {
	if len(args) == 0 {
		return nil
	}
	out := make([]string, len(args))
	for i, x := range args {
		if s, ok := x.(secret); ok {
			out[i] = s.label
			continue
		}
		out[i] = truncate(show(x), 120)
	}
	return out
}

func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case []byte:
		return `\x` + hex.EncodeToString(x)
	case [16]byte:
		h := hex.EncodeToString(x[:])
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case map[string]any, []any:
		b, err := json.Marshal(x)
		if err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}

// copyTo runs a COPY … TO STDOUT inside a savepoint, writing the data to w.
func (a *attempt) copyTo(sql string, w io.Writer) outcome {
	return a.copy(sql, func() (pgconn.CommandTag, error) { return a.tx.Conn().PgConn().CopyTo(a.ctx, w, sql) })
}

// copyFrom runs a COPY … FROM STDIN inside a savepoint, sending data.
func (a *attempt) copyFrom(sql, data string) outcome {
	return a.copy(sql, func() (pgconn.CommandTag, error) {
		return a.tx.Conn().PgConn().CopyFrom(a.ctx, strings.NewReader(data), sql)
	})
}

func (a *attempt) copy(sql string, f func() (pgconn.CommandTag, error)) outcome {
	a.sp++
	sp := fmt.Sprintf("gameday_%d", a.sp)
	if _, err := a.tx.Exec(a.ctx, "SAVEPOINT "+sp); err != nil {
		o := outcome{err: err}
		a.record(sql, nil, o)
		return o
	}
	tag, err := f()
	o := outcome{err: err, tag: tag.String(), n: tag.RowsAffected()}
	if err != nil {
		a.tx.Exec(a.ctx, "ROLLBACK TO SAVEPOINT "+sp)
	} else {
		a.tx.Exec(a.ctx, "RELEASE SAVEPOINT "+sp)
	}
	a.record(sql, nil, o)
	return o
}

// runSummary is run with the evidence saying what summary makes of the
// outcome rather than the outcome itself (a plan, say).
func (a *attempt) runSummary(summary func(outcome) string, sql string, args ...any) outcome {
	o := a.quiet(sql, args...)
	got := summary(o)
	if !o.ok() {
		got = o.String()
	}
	a.steps = append(a.steps, Step{As: a.as, SQL: oneLine(sql, 2000), Args: showArgs(args), Got: got})
	return o
}

// undo runs one statement and then undoes it (ROLLBACK TO SAVEPOINT),
// whatever it did, so that the next probe in the transaction starts from
// the same state.
func (a *attempt) undo(sql string, args ...any) outcome {
	a.sp++
	sp := fmt.Sprintf("gameday_%d", a.sp)
	if _, err := a.tx.Exec(a.ctx, "SAVEPOINT "+sp); err != nil {
		o := outcome{err: err}
		a.record(sql, args, o)
		return o
	}
	o := query(a.ctx, a.tx, sql, args)
	a.tx.Exec(a.ctx, "ROLLBACK TO SAVEPOINT "+sp)
	a.record(sql, args, o)
	return o
}
