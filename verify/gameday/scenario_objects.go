package gameday

// Scenarios about objects over the table: views, materialized views,
// SECURITY DEFINER functions and functions the attacker creates.

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// viewInfo is a view or materialized view over the attacked table.
type viewInfo struct {
	q       string
	kind    string // "v" or "m"
	options string
}

// views lists the views and materialized views that depend on t,
// directly or through other views, that the current role may read. It
// runs in a, so the role is the one A's context sets.
func views(a *attempt, t *table) []viewInfo {
	o := a.quiet(`WITH RECURSIVE deps(oid) AS (
			SELECT $1::oid
			UNION
			SELECT rw.ev_class FROM pg_catalog.pg_rewrite rw
			  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
			  JOIN deps ON d.refobjid = deps.oid
			 WHERE rw.ev_class <> deps.oid)
		SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relkind::text,
		       coalesce(pg_catalog.array_to_string(c.reloptions, ','), '')
		  FROM deps JOIN pg_catalog.pg_class c ON c.oid = deps.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		 WHERE c.relkind IN ('v', 'm') AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
		   AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
		 ORDER BY 1 LIMIT 100`, t.oid)
	var out []viewInfo
	for _, rw := range o.rows {
		out = append(out, viewInfo{q: rw[0], kind: rw[1], options: rw[2]})
	}
	return out
}

// sA03A04 reads B's rows through every view and materialized view over
// the table that A may read.
func (r *runner) sA03A04(ctx context.Context, p *pair) {
	type found struct {
		v    viewInfo
		rows int64
		hits int64
	}
	var fs []found
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		for _, v := range views(a, p.b.tbl) {
			o := a.run(fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE %s) FROM (SELECT to_jsonb(v) AS j FROM %s v LIMIT 100000) x`, hit("x.j"), v.q),
				p.b.tenant, p.marker)
			fs = append(fs, found{v: v, rows: o.int(0), hits: o.int(1)})
		}
	})
	if err != nil {
		r.add(p, "A03", "views over the table", Inconclusive, "", err.Error(), steps)
		r.add(p, "A04", "materialized views over the table", Inconclusive, "", err.Error(), steps)
		return
	}
	for _, kind := range []string{"v", "m"} {
		id, name := "A03", "views over the table"
		if kind == "m" {
			id, name = "A04", "materialized views over the table"
		}
		var leaked, clean []string
		var stale []string
		for _, f := range fs {
			if f.v.kind != kind {
				continue
			}
			desc := f.v.q
			if f.v.options != "" {
				desc += " (" + f.v.options + ")"
			}
			switch {
			case f.hits > 0:
				leaked = append(leaked, fmt.Sprintf("%s shows %d of B's rows", desc, f.hits))
			case kind == "m" && f.rows > 0:
				stale = append(stale, fmt.Sprintf("%s (%d rows)", desc, f.rows))
			default:
				clean = append(clean, desc)
			}
		}
		switch {
		case len(leaked) > 0:
			r.add(p, id, name, Leaked, High, strings.Join(leaked, "; "), steps)
		case len(stale) > 0:
			r.add(p, id, name, Info, Medium, "readable by the app role, and row security cannot apply to a materialized view; none of B's rows in it now (it may predate the canaries): "+strings.Join(stale, "; "), steps)
		case len(clean) > 0:
			r.add(p, id, name, Blocked, "", "none of B's rows through "+strings.Join(clean, ", "), steps)
		default:
			r.add(p, id, name, NotApplicable, "", "no readable view of this kind depends on "+p.b.tbl.q, nil)
		}
	}
}

// definerDeny keeps SECURITY DEFINER functions with side effects outside
// the transaction from ever being called.
var definerDeny = regexp.MustCompile(`(?i)pg_terminate_backend|pg_cancel_backend|pg_signal|pg_sleep|dblink|lo_import|lo_export|lo_unlink|pg_file_write|\bcopy\b|pg_notify|pg_reload_conf|pg_rotate_logfile|pg_switch_wal|pg_promote|http_|\bnet\.|pg_advisory|pg_logical_emit|set_config\s*\(\s*'bulkhead`)

// sA05 calls every SECURITY DEFINER function A may execute, with simple
// arguments, in a read-only transaction, and looks for B's rows in what
// comes back.
func (r *runner) sA05(ctx context.Context, p *pair) {
	const name = "SECURITY DEFINER functions the role can execute"
	var called, skipped, leaked []string
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true, timeout: 5 * time.Second}, func(a *attempt) {
		o := a.quiet(`SELECT p.oid::pg_catalog.regprocedure::text,
				pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname),
				p.pronargs - p.pronargdefaults,
				coalesce(pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.format_type(x, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(x, i) ORDER BY i), '|'), ''),
				coalesce(pg_catalog.array_to_string(ARRAY(SELECT ty.typcategory::text FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(x, i) JOIN pg_catalog.pg_type ty ON ty.oid = u.x ORDER BY i), '|'), ''),
				p.prorettype::pg_catalog.regtype::text, l.lanname, p.prosrc, (p.proallargtypes IS NOT NULL)
			FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace JOIN pg_catalog.pg_language l ON l.oid = p.prolang
			WHERE p.prosecdef AND p.prokind = 'f' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
			  AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE') AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
			ORDER BY 1 LIMIT 100`)
		for _, f := range o.rows {
			sig, fn, ret, lang, src := f[0], f[1], f[5], f[6], f[7]
			var nreq int
			fmt.Sscan(f[2], &nreq)
			types, cats := splitBar(f[3]), splitBar(f[4])
			switch {
			case lang != "sql" && lang != "plpgsql":
				skipped = append(skipped, sig+" (language "+lang+")")
				continue
			case definerDeny.MatchString(src):
				skipped = append(skipped, sig+" (its body has effects outside the transaction)")
				continue
			case ret == "void" || ret == "trigger" || ret == "event_trigger" || ret == "internal" || strings.HasSuffix(ret, "_handler") ||
				(ret == "record" && f[8] != "true"):
				skipped = append(skipped, sig+" (returns "+ret+")")
				continue
			}
			for _, cand := range definerArgs(p, types[:nreq], cats[:nreq]) {
				var ph []string
				args := []any{p.b.tenant, p.marker}
				for i, v := range cand {
					args = append(args, v)
					ph = append(ph, fmt.Sprintf("$%d::text::%s", i+3, types[i]))
				}
				call := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE %s) FROM (SELECT to_jsonb(r) AS j FROM %s(%s) r LIMIT 10000) x`,
					hit("x.j"), fn, strings.Join(ph, ", "))
				res := a.run(call, args...)
				called = append(called, sig)
				if res.int(1) > 0 {
					leaked = append(leaked, fmt.Sprintf("%s(%s) returned %d of B's rows", fn, strings.Join(cand, ", "), res.int(1)))
				}
			}
		}
	})
	called = uniq(called)
	switch {
	case err != nil:
		r.add(p, "A05", name, Inconclusive, "", err.Error(), steps)
	case len(leaked) > 0:
		r.add(p, "A05", name, Leaked, High, strings.Join(leaked, "; "), steps)
	case len(called) > 0:
		s := fmt.Sprintf("none of B's rows from %d function(s): %s", len(called), strings.Join(called, ", "))
		if len(skipped) > 0 {
			s += "; not called: " + strings.Join(skipped, ", ")
		}
		r.add(p, "A05", name, Blocked, "", s, steps)
	case len(skipped) > 0:
		r.add(p, "A05", name, Info, Medium, "SECURITY DEFINER functions the role can execute were not called (unsafe to call, or no rows to read): "+strings.Join(skipped, ", "), steps)
	default:
		r.add(p, "A05", name, NotApplicable, "", "the role can execute no SECURITY DEFINER function outside pg_catalog", steps)
	}
}

func splitBar(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "|")
}

func uniq(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var intRE = regexp.MustCompile(`^-?[0-9]{1,18}$`)

// definerArgs proposes argument lists for a function: no arguments, or
// each required argument given B's tenant value, a LIKE wildcard, the
// canary marker or B's key, where the type takes it.
func definerArgs(p *pair, types, cats []string) [][]string {
	if len(types) == 0 {
		return [][]string{nil}
	}
	values := []string{p.b.tenant, "%"}
	if p.marker != "" {
		values = append(values, p.marker)
	}
	if key := p.b.tbl.pk(); p.bRow != nil {
		for _, c := range key {
			if v := p.bRow[c]; v != nil && c != p.b.tbl.tcol.name {
				values = append(values, *v)
			}
		}
	}
	var out [][]string
	seen := map[string]bool{}
	for _, v := range values {
		var cand []string
		for i, typ := range types {
			x, ok := fitArg(v, typ, cats[i])
			if !ok {
				cand = nil
				break
			}
			cand = append(cand, x)
		}
		if cand != nil && !seen[strings.Join(cand, "\x00")] {
			seen[strings.Join(cand, "\x00")] = true
			out = append(out, cand)
		}
		if len(out) == 4 {
			break
		}
	}
	return out
}

func fitArg(v, typ, cat string) (string, bool) {
	switch {
	case cat == "S":
		return v, true
	case typ == "uuid":
		return v, uuidRE.MatchString(v)
	case cat == "N":
		return v, intRE.MatchString(v)
	}
	return "", false
}

// sA06 creates a leaky function (where the role may create one) and feeds
// every row of the table, and of each view over it, through it: its
// NOTICEs would show rows the policy removes, were it evaluated first.
func (r *runner) sA06(ctx context.Context, p *pair) {
	const name = "leaky function (NOTICE probe)"
	t := p.b.tbl
	var created string
	var hits []string
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		body := ` (text, text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $f$ BEGIN RAISE NOTICE 'gameday-peek %|%', $1, $2; RETURN true; END $f$`
		// For views: the whole row, made into JSON inside the body, where
		// the planner does not see its cost. Called as fn(t.x::text,
		// to_jsonb(v)::text) the casts cost more than a view's own
		// tenant comparison, which then runs first and hides the leak.
		rowBody := ` (anyelement) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $f$ BEGIN RAISE NOTICE 'gameday-peek |%', pg_catalog.to_jsonb($1)::text; RETURN true; END $f$`
		schemas := []string{"pg_temp"}
		o := a.quiet(`SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_namespace n
			WHERE pg_catalog.has_schema_privilege(n.oid, 'CREATE') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1 LIMIT 5`)
		for _, rw := range o.rows {
			schemas = append(schemas, rw[0])
		}
		if len(schemas) == 1 {
			schemas = append(schemas, ident(t.schema))
		}
		for _, s := range schemas {
			fn := s + ".gameday_peek_" + randHex(4)
			if a.run("CREATE FUNCTION " + fn + body).ok() {
				created = fn
				a.run("CREATE FUNCTION " + fn + "_row" + rowBody)
				break
			}
		}
		if created == "" {
			return
		}
		r.atk.takeNotices()
		a.run(fmt.Sprintf(`SELECT count(*) FROM %s t WHERE %s(t.%s::text, to_jsonb(t)::text)`, t.q, created, ident(t.tcol.name)))
		for _, v := range views(a, t) {
			a.run(fmt.Sprintf(`SELECT count(*) FROM %s v WHERE %s_row(v)`, v.q, created))
		}
		quoted := `"` + p.b.tenant + `"`
		for _, n := range r.atk.takeNotices() {
			msg := strings.TrimPrefix(n, "gameday-peek ")
			first, rest, _ := strings.Cut(msg, "|")
			if first == p.b.tenant || strings.Contains(rest, quoted) || (p.marker != "" && strings.Contains(rest, p.marker)) {
				hits = append(hits, truncate(msg, 120))
			}
		}
		a.note("NOTICEs naming B", fmt.Sprintf("%d", len(hits)))
	})
	switch {
	case err != nil:
		r.add(p, "A06", name, Inconclusive, "", err.Error(), steps)
	case created == "":
		r.add(p, "A06", name, Blocked, "", "the role can create no function (no TEMP on the database, no CREATE on any schema)", steps)
	case len(hits) > 0:
		r.add(p, "A06", name, Leaked, High, fmt.Sprintf("a user function saw %d of B's rows before the policy (or a view's own WHERE) removed them: %s", len(hits), strings.Join(hits[:min(len(hits), 3)], "; ")), steps)
	default:
		r.add(p, "A06", name, Blocked, "", "created "+created+", but it saw none of B's rows (row security quals run first)", steps)
	}
}

// sA28 reads every other relation A may read, looking for B's rows: a
// side table without row security, an audit log, a copy.
func (r *runner) sA28(ctx context.Context, p *pair) {
	const name = "every other table the role can read"
	t := p.b.tbl
	var scanned, leaked []string
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true, timeout: 5 * time.Second}, func(a *attempt) {
		skip := map[string]bool{}
		for _, v := range views(a, t) {
			skip[v.q] = true // A03 and A04
		}
		o := a.quiet(`SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
			FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.oid <> $1
			  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
			  AND pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
			ORDER BY 1 LIMIT 200`, t.oid)
		for _, rw := range o.rows {
			if skip[rw[0]] {
				continue
			}
			res := a.run(fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE %s) FROM (SELECT to_jsonb(v) AS j FROM %s v LIMIT 100000) x`, hit("x.j"), rw[0]),
				p.b.tenant, p.marker)
			if !res.ok() {
				continue
			}
			scanned = append(scanned, rw[0])
			if res.int(1) > 0 {
				leaked = append(leaked, fmt.Sprintf("%s shows %d of B's rows", rw[0], res.int(1)))
			}
		}
	})
	ctl := ""
	if err == nil && len(leaked) == 0 && len(scanned) > 0 && !p.b.ctx.none() {
		var own int
		csteps, _ := r.probe(ctx, p.b.ctx, txOptions{readOnly: true, timeout: 5 * time.Second}, func(a *attempt) {
			a.as += " (control)"
			for _, rel := range scanned {
				if a.run(fmt.Sprintf(`SELECT count(*) FILTER (WHERE %s) FROM (SELECT to_jsonb(v) AS j FROM %s v LIMIT 100000) x`, hit("x.j"), rel),
					p.b.tenant, p.marker).int(0) > 0 {
					own++
				}
			}
		})
		steps = append(steps, csteps...)
		ctl = fmt.Sprintf(" (control: B's own context finds its rows in %d of them)", own)
	}
	switch {
	case err != nil:
		r.add(p, "A28", name, Inconclusive, "", err.Error(), steps)
	case len(leaked) > 0:
		r.add(p, "A28", name, Leaked, High, strings.Join(leaked, "; ")+" (row security off, or no policy that pins the tenant)", steps)
	case len(scanned) > 0:
		r.add(p, "A28", name, Blocked, "", fmt.Sprintf("none of B's rows in %d other readable relation(s): %s%s", len(scanned), strings.Join(scanned, ", "), ctl), steps)
	default:
		r.add(p, "A28", name, NotApplicable, "", "the role can read no other relation", steps)
	}
}
