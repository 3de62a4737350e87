package gameday

// The scenarios. Each one attacks from A's side and judges by B's rows;
// every write happens inside a transaction that is rolled back. This file
// holds the baseline reads and the forged contexts.

import (
	"context"
	"fmt"
	"strings"
)

// sReads is the baseline: A reads B's rows by filter, by key and all at
// once, as row security is meant to stop.
func (r *runner) sReads(ctx context.Context, p *pair) {
	r.sR0(ctx, p)
	t := p.b.tbl
	sql, args := p.filterSQL()
	r.readScenario(ctx, p, "R1", "read B's rows by filter", p.a.ctx, sql, args, 0)

	switch key := t.pk(); {
	case key != nil && p.bRow != nil && !hasNull(p.bRow, key):
		var conds []string
		var kargs []any
		for i, c := range key {
			conds = append(conds, fmt.Sprintf("t.%s = $%d::text::%s", ident(c), i+1, t.col(c).typ))
			kargs = append(kargs, *p.bRow[c])
		}
		r.readScenario(ctx, p, "R2", "read B's row by key", p.a.ctx,
			fmt.Sprintf(`SELECT count(*) FROM %s t WHERE %s`, t.q, strings.Join(conds, " AND ")), kargs, 0)
	case p.bCtid != "":
		r.readScenario(ctx, p, "R2", "read B's row by key", p.a.ctx,
			fmt.Sprintf(`SELECT count(*) FROM %s t WHERE t.ctid = $1::tid`, t.q), []any{p.bCtid}, 0)
	default:
		r.add(p, "R2", "read B's row by key", NotApplicable, "", "B's canary row is unknown (no control to read it with)", nil)
	}

	sql3 := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE %s) FROM (SELECT to_jsonb(t) AS j FROM %s t) x`, hit("x.j"), t.q)
	r.readScenario(ctx, p, "R3", "read every row", p.a.ctx, sql3, []any{p.b.tenant, p.marker}, 1)
}

// sR0 checks the attacker's own context: A must see A's rows, or every
// "blocked" below may only mean that A's context is broken.
func (r *runner) sR0(ctx context.Context, p *pair) {
	const name = "A's context reads A's own rows"
	ta := p.a.tbl
	sql := fmt.Sprintf(`SELECT count(*) FROM %s t WHERE t.%s = %s`, ta.q, ident(ta.tcol.name), tparam(ta, 1))
	var o outcome
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) { o = a.run(sql, p.a.tenant) })
	if err != nil {
		r.add(p, "R0", name, Inconclusive, "", err.Error(), steps)
		return
	}
	exist := int64(-1)
	if r.admin != nil {
		e := query(ctx, r.admin, sql, []any{p.a.tenant})
		steps = append(steps, Step{As: "admin", SQL: oneLine(sql, 500), Args: []string{p.a.tenant}, Got: e.String()})
		exist = e.int(0)
	}
	switch n := o.int(0); {
	case n > 0:
		r.add(p, "R0", name, Info, Low, fmt.Sprintf("A's context sees %d of A's rows: the attacker's context works", n), steps)
	case exist > 0:
		r.add(p, "R0", name, Inconclusive, "", fmt.Sprintf("A's context sees none of A's %d rows: check the context (%s)", exist, o), steps)
	default:
		r.add(p, "R0", name, Info, Low, "A's context sees none of A's rows, and A may have none: nothing shows that the context works", steps)
	}
}

func hasNull(rw row, cols []string) bool {
	for _, c := range cols {
		if rw[c] == nil {
			return true
		}
	}
	return false
}

// readScenario runs one read under s, counts column col of its result as
// B's rows, and judges it against the control.
func (r *runner) readScenario(ctx context.Context, p *pair, id, name string, s setter, sql string, args []any, col int) {
	var o outcome
	steps, err := r.probe(ctx, s, txOptions{readOnly: true}, func(a *attempt) { o = a.run(sql, args...) })
	if err != nil {
		r.add(p, id, name, Inconclusive, "", err.Error(), steps)
		return
	}
	ctl, csteps, known := r.control(ctx, p, sql, args, col)
	steps = append(steps, csteps...)
	n := o.int(col)
	v, why := readVerdict(n, ctl, known)
	if !o.ok() && v != Inconclusive {
		why = "the read was refused (" + o.String() + "); " + why
	}
	r.add(p, id, name, v, High, why, steps)
}

// sA32 reads with no context, and with an empty one: a missing context
// must mean no rows, never all of them.
func (r *runner) sA32(ctx context.Context, p *pair) {
	sql, args := p.filterSQL()
	r.readScenario(ctx, p, "A32", "no context", setter{}, sql, args, 0)
	var empty setter
	switch {
	case r.own != nil:
		empty = r.own.rawContext("empty context", "")
	case strings.Contains(p.a.ctx.sql, p.a.tenant):
		empty = setter{label: "empty tenant", sql: strings.ReplaceAll(p.a.ctx.sql, p.a.tenant, "")}
	default:
		r.add(p, "A32", "empty context", NotApplicable, "", "tenant A's value does not appear in --context, so it cannot be emptied", nil)
		return
	}
	r.readScenario(ctx, p, "A32", "empty context", empty, sql, args, 0)
}

// sA07 forges B's context on top of A's.
func (r *runner) sA07(ctx context.Context, p *pair) {
	if r.own != nil {
		for _, f := range r.own.forgeries(ctx, p) {
			r.forged(ctx, p, "forged context: "+f.label, f)
		}
		return
	}
	if !strings.Contains(p.a.ctx.sql, p.a.tenant) {
		r.add(p, "A07", "forge the context", NotApplicable, "",
			"tenant A's value does not appear in --context, so B's cannot be substituted (a signed or opaque context)", nil)
		return
	}
	f := setter{label: "forged B", sql: strings.ReplaceAll(p.a.ctx.sql, p.a.tenant, p.b.tenant)}
	r.forged(ctx, p, "forge the context", f)
}

// forged sets A's context, then the forged one, and tries to read and to
// write B's rows. Only what the forgery adds counts: when A's own context
// already reads or writes B's rows, that is R1's or A08's finding.
func (r *runner) forged(ctx context.Context, p *pair, name string, f setter) {
	sql, args := p.filterSQL()
	var n0, n int64
	var wrote0, wrote, forgedOK bool
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		ins, iargs, err := p.b.tbl.insert(row{p.b.tbl.tcol.name: strp(p.b.tenant)}, "")
		n0 = a.run(sql, args...).int(0)
		if err == nil {
			wrote0 = a.undo(ins, iargs...).ok()
		}
		if o := a.set(f); !o.ok() {
			return
		}
		forgedOK = true
		a.as = f.label
		n = a.run(sql, args...).int(0)
		if err == nil {
			wrote = a.undo(ins, iargs...).ok()
		}
	})
	if err != nil {
		r.add(p, "A07", name, Inconclusive, "", err.Error(), steps)
		return
	}
	ctl, csteps, known := r.control(ctx, p, sql, args, 0)
	steps = append(steps, csteps...)
	var gained []string
	if n > n0 {
		gained = append(gained, fmt.Sprintf("read %d of B's rows", n))
	}
	if wrote && !wrote0 {
		gained = append(gained, "inserted a row for B")
	}
	switch {
	case len(gained) > 0:
		r.add(p, "A07", name, Leaked, High, "with the forged context A "+strings.Join(gained, " and "), steps)
	case n0 > 0 || wrote0:
		r.add(p, "A07", name, NotApplicable, "", "A's own context already reads or writes B's rows (see R1 and A08): a forgery has nothing to add", steps)
	case !forgedOK:
		r.add(p, "A07", name, Blocked, "", "the forged context could not even be set", steps)
	default:
		v, why := readVerdict(n, ctl, known)
		r.add(p, "A07", name, v, High, why+"; the insert for B was refused", steps)
	}
}
