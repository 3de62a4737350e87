package gameday

// Scenarios that learn about B's rows without reading them: constraint,
// catalog, plan, estimate and timing oracles.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// sA11 builds a foreign-key oracle: a table of A's own referencing B's
// table, where the role may create one.
func (r *runner) sA11(ctx context.Context, p *pair) {
	const name = "REFERENCES + CREATE foreign-key oracle"
	t := p.b.tbl
	key := t.pk()
	if key == nil && len(t.keys) > 0 {
		key = t.keys[0].cols
	}
	if key == nil {
		r.add(p, "A11", name, NotApplicable, "", t.q+" has no primary or unique key to reference", nil)
		return
	}
	var created bool
	var oB, oR outcome
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		o := a.run(`SELECT pg_catalog.has_table_privilege($1::oid, 'REFERENCES'),
				ARRAY(SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_namespace n
				      WHERE pg_catalog.has_schema_privilege(n.oid, 'CREATE') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1)::text[]::text`, t.oid)
		schemas := parseArray(o.str(1))
		if len(schemas) == 0 {
			schemas = []string{ident(t.schema)}
		}
		var defs, kcols []string
		for i, c := range key {
			defs = append(defs, fmt.Sprintf("k%d %s", i, t.col(c).typ))
			kcols = append(kcols, fmt.Sprintf("k%d", i))
		}
		var quoted []string
		for _, c := range key {
			quoted = append(quoted, ident(c))
		}
		probe := ""
		for _, s := range schemas {
			probe = s + ".gameday_fk_" + randHex(4)
			if a.run(fmt.Sprintf("CREATE TABLE %s (%s, FOREIGN KEY (%s) REFERENCES %s (%s))", probe, strings.Join(defs, ", "),
				strings.Join(kcols, ", "), t.q, strings.Join(quoted, ", "))).ok() {
				created = true
				break
			}
		}
		if !created || p.bRow == nil || hasNull(p.bRow, key) {
			return
		}
		var ph []string
		var bv, rv []any
		for i, c := range key {
			ph = append(ph, fmt.Sprintf("$%d::text::%s", i+1, t.col(c).typ))
			bv = append(bv, *p.bRow[c])
			x, ok := randomLike(t.col(c))
			if !ok {
				x = *p.bRow[c]
			}
			if c == t.tcol.name {
				x = *p.bRow[c]
			}
			rv = append(rv, x)
		}
		ins := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", probe, strings.Join(kcols, ", "), strings.Join(ph, ", "))
		oB = a.run(ins, bv...)
		oR = a.run(ins, rv...)
	})
	switch {
	case err != nil:
		r.add(p, "A11", name, Inconclusive, "", err.Error(), steps)
	case !created:
		r.add(p, "A11", name, Blocked, "", "could not create a table referencing "+t.q+" (no CREATE on a schema, or no REFERENCES)", steps)
	case p.bRow == nil:
		r.add(p, "A11", name, Leaked, Low, "created a table referencing "+t.q+": the foreign key answers whether any key exists in any tenant (B's key unknown, not demonstrated)", steps)
	case oB.class() != oR.class():
		r.add(p, "A11", name, Leaked, Low, fmt.Sprintf("B's key: %s; a random key: %s", oB, oR), steps)
	default:
		r.add(p, "A11", name, Blocked, "", "created the probe table, but B's key and a random key gave the same answer", steps)
	}
}

// sA13 inserts a row of A's own that repeats B's values in each unique
// key, the table's own and those only a partition has (for those, the row
// takes B's partition key values so that it routes to the same partition):
// an error for B's values and none for random ones says B has them.
func (r *runner) sA13(ctx context.Context, p *pair) {
	const name = "unique constraint oracle"
	t := p.b.tbl
	if p.bRow == nil {
		r.add(p, "A13", name, NotApplicable, "", "B's canary row is unknown (no control to read it with)", nil)
		return
	}
	var leaks, same []string
	tried := 0
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		for _, k := range t.keys {
			if hasNull(p.bRow, k.cols) {
				continue
			}
			withB, withR := row{t.tcol.name: strp(p.a.tenant)}, row{t.tcol.name: strp(p.a.tenant)}
			skip := false
			only := true
			for _, c := range k.cols {
				if c == t.tcol.name {
					continue
				}
				only = false
				withB[c] = p.bRow[c]
				x, ok := randomLike(t.col(c))
				if !ok {
					skip = true
				}
				withR[c] = strp(x)
			}
			if skip || only {
				continue
			}
			if k.partition {
				// Route both rows to B's partition, where the key lives.
				for _, c := range t.partCols {
					if _, set := withB[c]; !set && c != t.tcol.name && p.bRow[c] != nil {
						withB[c], withR[c] = p.bRow[c], p.bRow[c]
					}
				}
			}
			sb, ab, err1 := t.insert(withB, "")
			sr, ar, err2 := t.insert(withR, "")
			if err1 != nil || err2 != nil {
				a.note("build a row for "+k.name, fmt.Sprint(err1, err2))
				continue
			}
			tried++
			oB := a.run(sb, ab...)
			oR := a.run(sr, ar...)
			if oB.code() == "23505" && oB.constraint() != k.name && oB.constraint() != "" {
				// Another key answered; it is probed in its own turn.
				continue
			}
			if oB.code() == "23505" && oR.code() != "23505" {
				leaks = append(leaks, fmt.Sprintf("%s (%s): B's values → %s; random values → %s", k.name, strings.Join(k.cols, ", "), oB.class(), oR.class()))
			} else {
				same = append(same, k.name)
			}
		}
	})
	switch {
	case err != nil:
		r.add(p, "A13", name, Inconclusive, "", err.Error(), steps)
	case len(leaks) > 0:
		r.add(p, "A13", name, Leaked, Low, "a key without the tenant column answers whether B holds a value: "+strings.Join(leaks, "; "), steps)
	case tried == 0:
		r.add(p, "A13", name, NotApplicable, "", "no unique key on "+t.q+" has a column besides the tenant column to probe", steps)
	default:
		r.add(p, "A13", name, Blocked, "", "B's values and random ones gave the same answer for "+strings.Join(same, ", "), steps)
	}
}

// sA14 points a foreign key of A's own row at B's row.
func (r *runner) sA14(ctx context.Context, p *pair) {
	const name = "foreign key to B's row"
	t := p.b.tbl
	if len(t.refs) == 0 {
		r.add(p, "A14", name, NotApplicable, "", "no foreign key references "+t.q, nil)
		return
	}
	if p.bRow == nil {
		r.add(p, "A14", name, NotApplicable, "", "B's canary row is unknown (no control to read it with)", nil)
		return
	}
	var leaks, held []string
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		for _, fk := range t.refs {
			from := fk.from
			withB, withR := row{}, row{}
			if from.tcol != nil {
				withB[from.tcol.name], withR[from.tcol.name] = strp(p.a.tenant), strp(p.a.tenant)
			}
			ok := true
			for i, fc := range fk.fromCols {
				if from.tcol != nil && fc == from.tcol.name {
					continue
				}
				v := p.bRow[fk.toCols[i]]
				if v == nil {
					ok = false
					break
				}
				withB[fc] = v
				x, good := randomLike(from.col(fc))
				if !good {
					ok = false
					break
				}
				withR[fc] = strp(x)
			}
			if !ok {
				continue
			}
			sb, ab, err1 := from.insert(withB, "")
			sr, ar, err2 := from.insert(withR, "")
			if err1 != nil || err2 != nil {
				a.note("build a row for "+fk.name, fmt.Sprint(err1, " ", err2))
				continue
			}
			oB := a.run(sb, ab...)
			oR := a.run(sr, ar...)
			switch {
			case oB.ok():
				leaks = append(leaks, fmt.Sprintf("%s: A's row in %s now points at B's row", fk.name, from.q))
			case oR.code() == "23503" && oB.code() != "23503":
				leaks = append(leaks, fmt.Sprintf("%s: B's key → %s; a random key → %s", fk.name, oB.class(), oR.class()))
			default:
				held = append(held, fmt.Sprintf("%s (%s)", fk.name, oB.class()))
			}
		}
	})
	switch {
	case err != nil:
		r.add(p, "A14", name, Inconclusive, "", err.Error(), steps)
	case len(leaks) > 0:
		r.add(p, "A14", name, Leaked, High, strings.Join(leaks, "; "), steps)
	case len(held) > 0:
		r.add(p, "A14", name, Blocked, "", "B's key was refused like a random one: "+strings.Join(held, ", "), steps)
	default:
		r.add(p, "A14", name, NotApplicable, "", "no row could be built for the referencing tables", steps)
	}
}

// sA15 reads the counters that leak volume: sequences, the catalog's
// row estimates and sizes, and the statistics views.
func (r *runner) sA15(ctx context.Context, p *pair) {
	t := p.b.tbl
	var seqs []string
	var seqRead []string
	var seqDenied bool
	var cat, stats, statFns outcome
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		o := a.quiet(`SELECT s.oid::pg_catalog.regclass::text FROM pg_catalog.pg_depend d
			JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
			WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = $1 AND d.deptype IN ('a', 'i') ORDER BY 1`, t.oid)
		for _, rw := range o.rows {
			seqs = append(seqs, rw[0])
			so := a.run("SELECT last_value FROM " + rw[0])
			if so.ok() {
				seqRead = append(seqRead, rw[0]+" = "+so.str(0))
			} else {
				seqDenied = true
			}
		}
		cat = a.run(`SELECT c.reltuples::bigint, pg_catalog.pg_total_relation_size(c.oid) FROM pg_catalog.pg_class c WHERE c.oid = $1`, t.oid)
		stats = a.run(`SELECT n_live_tup, n_tup_ins, n_tup_del, seq_scan FROM pg_catalog.pg_stat_user_tables WHERE relid = $1`, t.oid)
		// The functions behind the view: revoking only the view hides nothing.
		statFns = a.run(`SELECT pg_catalog.pg_stat_get_live_tuples($1), pg_catalog.pg_stat_get_tuples_inserted($1),
			pg_catalog.pg_stat_get_tuples_deleted($1), pg_catalog.pg_stat_get_numscans($1)`, t.oid)
	})
	if err != nil {
		r.add(p, "A15", "sequence last_value", Inconclusive, "", err.Error(), steps)
		return
	}
	switch {
	case len(seqs) == 0:
		r.add(p, "A15", "sequence last_value", NotApplicable, "", "no sequence feeds "+t.q, steps)
	case len(seqRead) > 0:
		r.add(p, "A15", "sequence last_value", Info, Low, "readable, so every tenant's insert volume shows: "+strings.Join(seqRead, ", ")+" (serial keys leak it to any writer anyway; prefer random keys)", steps)
	case seqDenied:
		r.add(p, "A15", "sequence last_value", Blocked, "", "SELECT on the sequences is refused", steps)
	}
	switch {
	case cat.ok() && p.a.tbl.q != t.q:
		r.add(p, "A15", "catalog row estimate and size", Info, Low,
			fmt.Sprintf("pg_class.reltuples = %s, pg_total_relation_size = %s: B's rows live in a table of their own, so this is B's volume, under an opaque schema name", cat.str(0), cat.str(1)), steps)
	case cat.ok():
		r.add(p, "A15", "catalog row estimate and size", Info, Low,
			fmt.Sprintf("pg_class.reltuples = %s, pg_total_relation_size = %s: the volume of all tenants together, a residual risk of any shared table", cat.str(0), cat.str(1)), steps)
	default:
		r.add(p, "A15", "catalog row estimate and size", Blocked, "", cat.String(), steps)
	}
	switch {
	case stats.ok():
		r.add(p, "A15", "statistics views", Info, Low, "pg_stat_user_tables shows live, inserted and deleted row counts of all tenants together ("+stats.String()+"); revoke SELECT on pg_stat_* from PUBLIC", steps)
	case statFns.ok():
		r.add(p, "A15", "statistics views", Info, Low, "pg_stat_user_tables is refused, but the functions behind it answer (pg_stat_get_live_tuples, _tuples_inserted, _tuples_deleted, _numscans: "+statFns.String()+"); revoke EXECUTE on pg_stat_get_* from PUBLIC too", steps)
	default:
		r.add(p, "A15", "statistics views", Blocked, "", "pg_stat_user_tables refused: "+stats.String()+"; pg_stat_get_* refused: "+statFns.String(), steps)
	}
}

// removed sums the rows a plan's nodes removed by filters.
func removed(planJSON string) int64 {
	var doc []map[string]any
	if json.Unmarshal([]byte(planJSON), &doc) != nil || len(doc) == 0 {
		return -1
	}
	var walk func(n map[string]any) int64
	walk = func(n map[string]any) int64 {
		var s int64
		for _, k := range []string{"Rows Removed by Filter", "Rows Removed by Index Recheck", "Rows Removed by Join Filter"} {
			if v, ok := n[k].(float64); ok {
				s += int64(v)
			}
		}
		if kids, ok := n["Plans"].([]any); ok {
			for _, k := range kids {
				if m, ok := k.(map[string]any); ok {
					s += walk(m)
				}
			}
		}
		return s
	}
	if plan, ok := doc[0]["Plan"].(map[string]any); ok {
		return walk(plan)
	}
	return -1
}

// examined is what a plan's scans looked at: the rows its filters removed
// plus the rows it returned. Rows the caller may see change both halves
// alike; only hidden ones change the sum.
func examined(planJSON string) int64 {
	n := removed(planJSON)
	if n < 0 {
		return n
	}
	var doc []map[string]any
	json.Unmarshal([]byte(planJSON), &doc)
	if plan, ok := doc[0]["Plan"].(map[string]any); ok {
		if v, ok := plan["Actual Rows"].(float64); ok {
			n += int64(v)
		}
	}
	return n
}

// planRows is the top node's row estimate.
func planRows(planJSON string) int64 {
	var doc []map[string]any
	if json.Unmarshal([]byte(planJSON), &doc) != nil || len(doc) == 0 {
		return -1
	}
	if plan, ok := doc[0]["Plan"].(map[string]any); ok {
		if v, ok := plan["Plan Rows"].(float64); ok {
			return int64(v)
		}
	}
	return -1
}

// sA16 asks EXPLAIN ANALYZE how many rows the policy removed, for B's
// tenant value and for a random one, with and without sequential scans.
func (r *runner) sA16(ctx context.Context, p *pair) {
	const name = "EXPLAIN ANALYZE rows removed by the policy"
	t := p.b.tbl
	random, ok := randomLike(t.tcol)
	if !ok {
		r.add(p, "A16", name, NotApplicable, "", "no random value of the tenant column's type", nil)
		return
	}
	tc := ident(t.tcol.name)
	var diffs []string
	var total int64 = -1
	var failed string
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		sum := func(o outcome) string {
			return fmt.Sprintf("rows removed by filters: %d; returned and removed: %d", removed(o.str(0)), examined(o.str(0)))
		}
		o := a.runSummary(sum, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) SELECT * FROM `+t.q)
		if !o.ok() {
			failed = o.String()
			return
		}
		total = removed(o.str(0))
		for _, seq := range []string{"on", "off"} {
			a.run("SET LOCAL enable_seqscan = " + seq)
			for _, shape := range []string{"t.%[1]s = %[2]s", "t.%[1]s >= %[2]s AND t.%[1]s <= %[2]s"} {
				where := fmt.Sprintf(shape, tc, tparam(t, 1))
				sql := fmt.Sprintf(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) SELECT * FROM %s t WHERE %s`, t.q, where)
				nb := examined(a.runSummary(sum, sql, p.b.tenant).str(0))
				nr := examined(a.runSummary(sum, sql, random).str(0))
				if nb != nr {
					diffs = append(diffs, fmt.Sprintf("enable_seqscan=%s, %s: %d rows returned or removed for B, %d for a random tenant", seq, where, nb, nr))
				}
			}
		}
	})
	switch {
	case err != nil:
		r.add(p, "A16", name, Inconclusive, "", err.Error(), steps)
	case failed != "":
		r.add(p, "A16", name, Blocked, "", "EXPLAIN ANALYZE refused: "+failed, steps)
	case len(diffs) > 0:
		r.add(p, "A16", name, Leaked, Low, "the plan counts B's hidden rows: "+strings.Join(diffs, "; "), steps)
	default:
		r.add(p, "A16", name, Blocked, "",
			fmt.Sprintf("B's tenant value and a random one make the plan look at the same number of rows (a full scan removes %d: all other tenants together, like reltuples)", total), steps)
	}
}

// sA17 compares the planner's estimate for B's tenant value with a random
// one: statistics on the tenant column make it a per-tenant row count.
func (r *runner) sA17(ctx context.Context, p *pair) {
	const name = "planner estimate oracle"
	t := p.b.tbl
	random, ok := randomLike(t.tcol)
	if !ok {
		r.add(p, "A17", name, NotApplicable, "", "no random value of the tenant column's type", nil)
		return
	}
	var nb, nr int64
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		sql := fmt.Sprintf(`EXPLAIN (FORMAT JSON) SELECT * FROM %s t WHERE t.%s = %s`, t.q, ident(t.tcol.name), tparam(t, 1))
		sum := func(o outcome) string { return fmt.Sprintf("estimated rows: %d", planRows(o.str(0))) }
		nb = planRows(a.runSummary(sum, sql, p.b.tenant).str(0))
		nr = planRows(a.runSummary(sum, sql, random).str(0))
		a.run(`SELECT a.attstattarget FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND a.attname = $2`, t.oid, t.tcol.name)
	})
	switch {
	case err != nil:
		r.add(p, "A17", name, Inconclusive, "", err.Error(), steps)
	case nb < 0 || nr < 0:
		r.add(p, "A17", name, Blocked, "", "EXPLAIN refused", steps)
	case nb >= 2*nr && nb-nr >= 2 && p.a.tbl.q != t.q:
		r.add(p, "A17", name, Info, Low, fmt.Sprintf("the planner estimates %d row(s) for B's tenant and %d for a random one, but B's rows live in a table of their own: the estimate says no more than its catalog row estimate (A15)", nb, nr), steps)
	case nb >= 2*nr && nb-nr >= 2:
		r.add(p, "A17", name, Leaked, Low, fmt.Sprintf("the planner estimates %d row(s) for B's tenant and %d for a random one: the estimate is B's row count (statistics on %s)", nb, nr, t.tcol.name), steps)
	default:
		r.add(p, "A17", name, Blocked, "", fmt.Sprintf("the planner estimates %d row(s) for B's tenant and %d for a random one (if statistics are stale, ANALYZE and run again)", nb, nr), steps)
	}
}

// sA25 times a range read that matches B's rows against one that matches
// nothing. It reports a leak only for a large, clear difference.
func (r *runner) sA25(ctx context.Context, p *pair) {
	const name = "timing side channel"
	t := p.b.tbl
	random, ok := randomLike(t.tcol)
	if !ok {
		r.add(p, "A25", name, NotApplicable, "", "no random value of the tenant column's type", nil)
		return
	}
	tc := ident(t.tcol.name)
	sql := fmt.Sprintf(`SELECT count(*) FROM %s t WHERE t.%s >= %s AND t.%s <= %s`, t.q, tc, tparam(t, 1), tc, tparam(t, 1))
	var db, dr []time.Duration
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		a.run("SET LOCAL enable_seqscan = off")
		a.run(sql, p.b.tenant)
		for range 15 {
			s := time.Now()
			a.quiet(sql, p.b.tenant)
			db = append(db, time.Since(s))
			s = time.Now()
			a.quiet(sql, random)
			dr = append(dr, time.Since(s))
		}
	})
	if err != nil {
		r.add(p, "A25", name, Inconclusive, "", err.Error(), steps)
		return
	}
	mb, mr := median(db), median(dr)
	fastest := slices.Min(db)
	ratio := float64(mb) / float64(max(mr, time.Microsecond))
	s := fmt.Sprintf("median %s for B's tenant, %s for a random one (ratio %.1f, 15 runs each)", mb, mr, ratio)
	// Conservative: even B's fastest run must be clearly slower, so that a
	// busy machine does not make a leak of a hiccup.
	if ratio >= 10 && fastest-mr >= 2*time.Millisecond {
		r.add(p, "A25", name, Leaked, Low, s+": the time grows with B's hidden rows; lead every index with the tenant column", steps)
		return
	}
	r.add(p, "A25", name, Info, Low, s+": no clear signal at this data size (a measurement, not a proof)", steps)
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
