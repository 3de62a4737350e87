package gameday

// Scenarios that write across the tenant boundary.

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// sA08 writes across the tenant boundary: insert a row for B, move A's
// own row to B, update and delete B's rows.
func (r *runner) sA08(ctx context.Context, p *pair) {
	tb, ta := p.b.tbl, p.a.tbl
	tc := tb.tcol.name

	// Insert a row for B.
	ins, iargs, err := tb.insert(row{tc: strp(p.b.tenant)}, "")
	if err != nil {
		r.add(p, "A08", "insert a row for tenant B", NotApplicable, "", err.Error(), nil)
	} else {
		var o outcome
		steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) { o = a.run(ins, iargs...) })
		var ctl outcome
		if err == nil {
			if !p.b.ctx.none() {
				csteps, _ := r.probe(ctx, p.b.ctx, txOptions{}, func(a *attempt) { a.as += " (control)"; ctl = a.run(ins, iargs...) })
				steps = append(steps, csteps...)
			}
		}
		switch {
		case err != nil:
			r.add(p, "A08", "insert a row for tenant B", Inconclusive, "", err.Error(), steps)
		case o.ok():
			r.add(p, "A08", "insert a row for tenant B", Leaked, High, "A's context inserted a row carrying B's tenant", steps)
		case !p.b.ctx.none() && !ctl.ok():
			r.add(p, "A08", "insert a row for tenant B", Inconclusive, "", "refused ("+o.String()+"), but B's own context could not insert that row either ("+ctl.String()+")", steps)
		default:
			r.add(p, "A08", "insert a row for tenant B", Blocked, "", "refused: "+o.String(), steps)
		}
	}

	// Move A's own row to B.
	{
		var own, moved outcome
		var movedWhere outcome
		steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
			sql, args, err := ta.insert(row{ta.tcol.name: strp(p.a.tenant)}, ta.returningAll())
			if err == nil {
				own = a.run(sql, args...)
			} else {
				own = outcome{err: err}
				a.note("insert A's own row", err.Error())
			}
			moved = a.run(fmt.Sprintf(`UPDATE %s SET %s = %s`, ta.q, ident(ta.tcol.name), tparam(ta, 1)), p.b.tenant)
			if rw := ta.asRow(own); rw != nil && ta.pk() != nil && !hasNull(rw, ta.pk()) {
				var conds []string
				args := []any{p.b.tenant}
				for _, c := range ta.pk() {
					args = append(args, *rw[c])
					conds = append(conds, fmt.Sprintf("%s = $%d::text::%s", ident(c), len(args), ta.col(c).typ))
				}
				movedWhere = a.run(fmt.Sprintf(`UPDATE %s SET %s = %s WHERE %s`, ta.q, ident(ta.tcol.name), tparam(ta, 1), strings.Join(conds, " AND ")), args...)
			}
		})
		switch {
		case err != nil:
			r.add(p, "A08", "move own row to tenant B", Inconclusive, "", err.Error(), steps)
		case moved.ok() && moved.n > 0 || movedWhere.ok() && movedWhere.n > 0:
			r.add(p, "A08", "move own row to tenant B", Leaked, High, fmt.Sprintf("A's rows were given B's tenant (%s / %s)", moved, movedWhere), steps)
		case !own.ok() && moved.ok():
			r.add(p, "A08", "move own row to tenant B", NotApplicable, "", "A could not insert a row of its own to move ("+own.String()+") and has none", steps)
		default:
			r.add(p, "A08", "move own row to tenant B", Blocked, "", "refused: "+moved.String(), steps)
		}
	}

	// Update and delete B's rows by filter.
	set := ident(tc) + " = " + ident(tc)
	for _, w := range []struct{ name, sql string }{
		{"update B's rows", fmt.Sprintf(`UPDATE %s t SET %s WHERE t.%s = %s`, tb.q, set, ident(tc), tparam(tb, 1))},
		{"delete B's rows", fmt.Sprintf(`DELETE FROM %s t WHERE t.%s = %s`, tb.q, ident(tc), tparam(tb, 1))},
	} {
		var o, ctl outcome
		steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) { o = a.run(w.sql, p.b.tenant) })
		known := !p.b.ctx.none()
		if err == nil && known {
			csteps, _ := r.probe(ctx, p.b.ctx, txOptions{}, func(a *attempt) { a.as += " (control)"; ctl = a.run(w.sql, p.b.tenant) })
			steps = append(steps, csteps...)
		}
		switch {
		case err != nil:
			r.add(p, "A08", w.name, Inconclusive, "", err.Error(), steps)
		case o.ok() && o.n > 0:
			r.add(p, "A08", w.name, Leaked, High, fmt.Sprintf("A's context changed %d of B's rows", o.n), steps)
		case known && (!ctl.ok() || ctl.n == 0):
			r.add(p, "A08", w.name, Inconclusive, "", "A changed none, but B's own context could not either ("+ctl.String()+")", steps)
		default:
			r.add(p, "A08", w.name, Blocked, "", "changed none of B's rows ("+o.String()+")", steps)
		}
	}
}

// sA09 checks for TRUNCATE, which ignores row security.
func (r *runner) sA09(ctx context.Context, p *pair) {
	t := p.b.tbl
	var priv bool
	var o outcome
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		priv = a.run(`SELECT pg_catalog.has_table_privilege($1::oid, 'TRUNCATE')`, t.oid).str(0) == "true"
		o = a.run("TRUNCATE " + t.q)
	})
	switch {
	case err != nil:
		r.add(p, "A09", "TRUNCATE", Inconclusive, "", err.Error(), steps)
	case o.ok():
		r.add(p, "A09", "TRUNCATE", Leaked, High, "the role emptied the table for every tenant (rolled back)", steps)
	case priv:
		r.add(p, "A09", "TRUNCATE", Leaked, High, "the role holds TRUNCATE on the table ("+o.String()+")", steps)
	default:
		r.add(p, "A09", "TRUNCATE", Blocked, "", "refused: "+o.String(), steps)
	}
}

// sA10 runs COPY TO (which row security filters) and COPY FROM (which it
// refuses outright). A partitioned table is copied as COPY (SELECT * FROM
// t) TO: PostgreSQL refuses COPY t TO for one without row security, and
// with row security rewrites it to read the parent only (ONLY t), which
// holds no rows, so B's control would see none and prove nothing.
func (r *runner) sA10(ctx context.Context, p *pair) {
	t := p.b.tbl
	copyTo := "COPY " + t.q + " TO STDOUT"
	if t.kind == "p" {
		copyTo = "COPY (SELECT * FROM " + t.q + ") TO STDOUT"
	}
	count := func(a *attempt) (int64, outcome) {
		var buf bytes.Buffer
		o := a.copyTo(copyTo, &buf)
		var n int64
		quoted := p.b.tenant
		for _, line := range strings.Split(buf.String(), "\n") {
			if line == "" {
				continue
			}
			if p.marker != "" && strings.Contains(line, p.marker) || contains(strings.Split(line, "\t"), quoted) {
				n++
			}
		}
		return n, o
	}
	var n int64
	var o, co outcome
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) { n, o = count(a) })
	if err != nil {
		r.add(p, "A10", "COPY TO", Inconclusive, "", err.Error(), steps)
	} else {
		var ctl int64
		known := !p.b.ctx.none()
		if known {
			csteps, _ := r.probe(ctx, p.b.ctx, txOptions{readOnly: true}, func(a *attempt) { a.as += " (control)"; ctl, co = count(a) })
			steps = append(steps, csteps...)
		}
		v, why := readVerdict(n, ctl, known)
		switch {
		case !o.ok() && known && !co.ok():
			v, why = NotApplicable, "COPY TO is refused for this table whatever the context ("+o.String()+")"
		case !o.ok() && v != Leaked:
			v, why = Blocked, "refused ("+o.String()+")"
		}
		r.add(p, "A10", "COPY TO", v, High, why, steps)
	}

	// COPY FROM with a row for B.
	var cols, vals []string
	for _, c := range t.cols {
		v := ""
		switch {
		case c.generated != "" || c.identity != "":
			continue
		case c.name == t.tcol.name:
			v = p.b.tenant
		case c.notNull && !c.hasDefault:
			g, ok := generate(c)
			if !ok {
				r.add(p, "A10", "COPY FROM", NotApplicable, "", "no value can be made up for the required column "+c.name, nil)
				return
			}
			v = g
		default:
			continue
		}
		cols = append(cols, ident(c.name))
		vals = append(vals, strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`).Replace(v))
	}
	var fo outcome
	steps, err = r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		fo = a.copyFrom(fmt.Sprintf("COPY %s (%s) FROM STDIN", t.q, strings.Join(cols, ", ")), strings.Join(vals, "\t")+"\n")
	})
	switch {
	case err != nil:
		r.add(p, "A10", "COPY FROM", Inconclusive, "", err.Error(), steps)
	case fo.ok():
		r.add(p, "A10", "COPY FROM", Leaked, High, "COPY FROM wrote a row for B", steps)
	default:
		r.add(p, "A10", "COPY FROM", Blocked, "", "refused: "+fo.String(), steps)
	}
}

// sD10 writes a row of A's own tenant into B's silo.
func (r *runner) sD10(ctx context.Context, p *pair) {
	const name = "write into B's silo"
	if p.a.tbl.q == p.b.tbl.q {
		if r.own != nil {
			r.add(p, "D10", name, NotApplicable, "", "B is not in a silo in this pair", nil)
		}
		return
	}
	t := p.b.tbl
	var o outcome
	sql, args, err := t.insert(row{t.tcol.name: strp(p.a.tenant)}, "")
	if err != nil {
		r.add(p, "D10", name, NotApplicable, "", err.Error(), nil)
		return
	}
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) { o = a.run(sql, args...) })
	switch {
	case err != nil:
		r.add(p, "D10", name, Inconclusive, "", err.Error(), steps)
	case o.ok():
		r.add(p, "D10", name, Leaked, High, "A's context wrote a row into B's silo", steps)
	default:
		r.add(p, "D10", name, Blocked, "", "refused: "+o.String(), steps)
	}
}
