package gameday

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// side is one tenant of a pair: its tenant value, the table its rows live
// in, and how to set its context.
type side struct {
	name   string // "A" or "B", or the slug
	tenant string // the tenant column's value, as text
	tbl    *table
	ctx    setter
}

// pair is attacker A and victim B.
type pair struct {
	label  string // "pool→silo"; empty for a user's database
	a, b   side
	marker string // text carried by B's canary rows; "" when unknown
	bRow   row    // one of B's canary rows, read with B's context or as the admin
	bCtid  string
}

// runner runs the scenarios and collects their results.
type runner struct {
	mode    string // "bulkhead" or "database"
	atk     *attacker
	admin   querier // nil when there is none
	login   string
	pairs   []*pair
	timeout time.Duration
	log     io.Writer
	own     *ownEnv // bulkhead only
	members *table  // A30: the membership table, user databases only

	results []Result
	notes   []string
}

func (r *runner) progress(format string, args ...any) {
	if r.log != nil {
		fmt.Fprintf(r.log, "gameday: "+format+"\n", args...)
	}
}

func (r *runner) add(p *pair, id, name string, v Verdict, sev Severity, summary string, ev []Step) {
	res := Result{ID: id, Scenario: id + " " + name, Verdict: v, Summary: summary, Evidence: ev}
	if p != nil {
		res.Pair = p.label
	}
	if v == Leaked || v == Contained || v == Info {
		res.Severity = sev
	}
	r.results = append(r.results, res)
}

// probe runs fn in a rolled-back transaction on the attack connection,
// after setting the context s. The error is for a session that failed, or
// a context that could not be set.
func (r *runner) probe(ctx context.Context, s setter, o txOptions, fn func(a *attempt)) ([]Step, error) {
	conn, err := r.atk.get(ctx)
	if err != nil {
		return nil, err
	}
	if o.timeout == 0 {
		o.timeout = r.timeout
	}
	var setErr error
	steps, err := within(ctx, conn, o, func(a *attempt) {
		a.as = s.label
		if s.none() {
			a.as = "no context"
		}
		if so := a.set(s); !so.ok() {
			setErr = fmt.Errorf("setting %s's context failed: %s", s.label, so)
			return
		}
		fn(a)
	})
	if err != nil {
		return steps, fmt.Errorf("the attack session failed: %w", err)
	}
	return steps, setErr
}

// control runs sql under B's own context (or, without one, as the admin)
// and returns column col of its first row. known is false when there is
// no way to run a control.
func (r *runner) control(ctx context.Context, p *pair, sql string, args []any, col int) (n int64, steps []Step, known bool) {
	if !p.b.ctx.none() {
		var o outcome
		steps, err := r.probe(ctx, p.b.ctx, txOptions{}, func(a *attempt) {
			a.as = p.b.ctx.label + " (control)"
			o = a.run(sql, args...)
		})
		if err != nil {
			return 0, append(steps, Step{As: "control", SQL: "-", Got: err.Error()}), true
		}
		return o.int(col), steps, true
	}
	if r.admin != nil {
		o := query(ctx, r.admin, sql, args)
		return o.int(col), []Step{{As: "admin (control)", SQL: oneLine(sql, 2000), Args: showArgs(args), Got: o.String()}}, true
	}
	return 0, nil, false
}

// readVerdict judges a read of B's rows: n of them seen by the attack,
// ctl by the control.
func readVerdict(n, ctl int64, known bool) (Verdict, string) {
	switch {
	case n > 0:
		return Leaked, fmt.Sprintf("saw %d of B's rows", n)
	case known && ctl == 0:
		return Inconclusive, "saw none of B's rows, but the same SQL under B's own context saw none either: the probe proves nothing"
	case known:
		return Blocked, fmt.Sprintf("saw none of B's rows (control: B's own context sees %d with the same SQL)", ctl)
	}
	return Blocked, "saw none of B's rows (no control: give --context-b or --admin-database-url to prove the probe can see them)"
}

// tparam casts parameter n to the tenant column's type.
func tparam(t *table, n int) string { return fmt.Sprintf("$%d::text::%s", n, t.tcol.typ) }

// hit is true for a jsonb value j that carries B's tenant value ($1) or the
// canary marker ($2) anywhere.
func hit(j string) string {
	return fmt.Sprintf(`((%[1]s)::text LIKE '%%' || NULLIF($2::text, '') || '%%' OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_path_query(%[1]s, 'strict $.**') v WHERE v #>> '{}' = $1::text))`, j)
}

// filterSQL counts B's rows in B's table by the tenant column.
func (p *pair) filterSQL() (string, []any) {
	t := p.b.tbl
	return fmt.Sprintf(`SELECT count(*) FROM %s t WHERE t.%s = %s`, t.q, ident(t.tcol.name), tparam(t, 1)), []any{p.b.tenant}
}

// readB runs the filter read in a and returns how many of B's rows it saw.
func (p *pair) readB(a *attempt) int64 {
	sql, args := p.filterSQL()
	return a.run(sql, args...).int(0)
}

// run runs every scenario that applies.
func (r *runner) run(ctx context.Context) {
	first := r.pairs[0]
	r.progress("login and roles")
	r.sA02(ctx, first)
	r.sA22SetRole(ctx, first)
	r.sA22Reset(ctx, first)
	r.sA22SessionAuth(ctx, first)
	for _, p := range r.pairs {
		if p.label != "" {
			r.progress("pair %s", p.label)
		}
		r.sReads(ctx, p)
		r.sA32(ctx, p)
		r.sA07(ctx, p)
		r.sA01(ctx, p)
		r.sA08(ctx, p)
		r.sA03A04(ctx, p)
		r.sA28(ctx, p)
		r.sA05(ctx, p)
		r.sA06(ctx, p)
		r.sA09(ctx, p)
		r.sA10(ctx, p)
		r.sA11(ctx, p)
		r.sA13(ctx, p)
		r.sA14(ctx, p)
		r.sA15(ctx, p)
		r.sA16(ctx, p)
		r.sA17(ctx, p)
		r.sD10(ctx, p)
		r.sD11(ctx, p)
	}
	r.progress("sessions and the server")
	r.sA21Context(ctx, first)
	r.sA21Temp(ctx, first)
	r.sA23(ctx, first)
	r.sA24Files(ctx, first)
	r.sA24Remote(ctx, first)
	r.sA25(ctx, first)
	r.sA30(ctx, first)
	r.sA33(ctx, first)
	r.sD01(ctx, first)
	r.sD02(ctx, first)
	r.sD03(ctx, first)
	r.sD04(ctx, first)
	r.sD11Resources(ctx, first)
	r.sD13(ctx, first)
	r.add(nil, "D18", "data-API oracles", NotApplicable, "",
		"HTTP-level oracles (planned counts, reg* casts, system columns, profile headers) belong to the data API's tests, not to a SQL session", nil)
}

// loadBRow reads one of B's canary rows (with B's context, else as the
// admin), for the probes that need B's keys and values.
func (r *runner) loadBRow(ctx context.Context, p *pair) {
	t := p.b.tbl
	var cols []string
	for _, c := range t.cols {
		cols = append(cols, "t."+ident(c.name)+"::text")
	}
	sql := fmt.Sprintf(`SELECT %s, t.ctid::text FROM %s t WHERE t.%s = %s AND (NULLIF($2::text, '') IS NULL OR to_jsonb(t)::text LIKE '%%' || $2::text || '%%') LIMIT 1`,
		strings.Join(cols, ", "), t.q, ident(t.tcol.name), tparam(t, 1))
	args := []any{p.b.tenant, p.marker}
	var o outcome
	switch {
	case !p.b.ctx.none():
		r.probe(ctx, p.b.ctx, txOptions{readOnly: true}, func(a *attempt) { o = a.quiet(sql, args...) })
	case r.admin != nil:
		o = query(ctx, r.admin, sql, args)
	default:
		return
	}
	if o.ok() && len(o.rows) > 0 {
		p.bRow = t.asRow(o)
		p.bCtid = o.rows[0][len(t.cols)]
	}
}

// catalogQuerier returns what catalog look-ups run on: the admin when
// there is one, else the attack connection outside any transaction.
func (r *runner) catalogQuerier(ctx context.Context) (querier, error) {
	if r.admin != nil {
		return r.admin, nil
	}
	return r.atk.get(ctx)
}

// victims opens the sessions D01 and D03 attack, each running sql: another
// session of the attacker's login, and (for bulkhead) one of another login
// role. Only sessions gameday opened itself are ever signalled.
func (r *runner) victims(ctx context.Context, sql string) []*victim {
	var out []*victim
	start := func(label string, other bool, conn *pgx.Conn, release func()) {
		v := &victim{label: label, other: other, pid: conn.PgConn().PID(), done: make(chan error, 1)}
		go func() {
			_, err := conn.Exec(ctx, sql)
			v.done <- err
		}()
		v.close = func() {
			// The victim's own cancel request (a separate connection, safe
			// from another goroutine) ends its sleep.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			conn.PgConn().CancelRequest(cctx)
			cancel()
			select {
			case <-v.done:
			case <-time.After(15 * time.Second):
			}
			release()
		}
		out = append(out, v)
	}
	if c, err := r.atk.dial(ctx); err == nil {
		start("another session of "+r.login, false, c, func() { c.Close(context.WithoutCancel(ctx)) })
	} else {
		r.notes = append(r.notes, "could not open a victim session: "+err.Error())
	}
	if r.own != nil {
		if c, role, release, err := r.own.otherSession(ctx); err == nil {
			start("a session of "+role, true, c, release)
		} else {
			r.notes = append(r.notes, "could not open a victim session of another role: "+err.Error())
		}
	}
	time.Sleep(300 * time.Millisecond)
	return out
}
