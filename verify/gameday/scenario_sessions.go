package gameday

// Scenarios about sessions, roles' settings and the server.

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// sA21Context asks whether a context outlives its transaction on a
// pooled connection.
func (r *runner) sA21Context(ctx context.Context, p *pair) {
	const name = "context survives the transaction"
	if r.own != nil {
		r.own.sessionContext(ctx, r, p)
		return
	}
	ta := p.a.tbl
	sql := fmt.Sprintf(`SELECT count(*) FROM %s t WHERE t.%s = %s`, ta.q, ident(ta.tcol.name), tparam(ta, 1))
	var seen int64
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) { seen = a.run(sql, p.a.tenant).int(0) })
	if err != nil {
		r.add(p, "A21", name, Inconclusive, "", err.Error(), steps)
		return
	}
	if seen == 0 {
		r.add(p, "A21", name, NotApplicable, "", "A's context sees none of A's rows, so their persistence cannot be observed", steps)
		return
	}
	conn, err := r.atk.dial(ctx)
	if err != nil {
		r.add(p, "A21", name, Inconclusive, "", err.Error(), steps)
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	before := query(ctx, conn, sql, []any{p.a.tenant})
	steps = append(steps, Step{As: "new session, no context", SQL: oneLine(sql, 500), Args: []string{p.a.tenant}, Got: before.String()})
	if before.int(0) > 0 {
		r.add(p, "A21", name, NotApplicable, "", "A's rows are visible with no context at all (see A32)", steps)
		return
	}
	_, err = conn.Exec(ctx, "BEGIN")
	if err == nil {
		_, err = conn.Exec(ctx, p.a.ctx.sql)
		steps = append(steps, Step{As: "A", SQL: "BEGIN; " + redact(oneLine(p.a.ctx.sql, 500)) + "; COMMIT", Got: errOrOK(err)})
		conn.Exec(ctx, "COMMIT")
	}
	after := query(ctx, conn, sql, []any{p.a.tenant})
	steps = append(steps, Step{As: "same session, next transaction, no context", SQL: oneLine(sql, 500), Args: []string{p.a.tenant}, Got: after.String()})
	switch {
	case err != nil:
		r.add(p, "A21", name, Inconclusive, "", "running --context failed: "+errText(err), steps)
	case after.int(0) > 0:
		r.add(p, "A21", name, Leaked, High, fmt.Sprintf("after A's transaction committed, the next transaction on the same connection still saw %d of A's rows with no context: a pooler hands A's tenant to whoever runs next (set the context transaction-locally: SET LOCAL, set_config(…, true))", after.int(0)), steps)
	default:
		r.add(p, "A21", name, Blocked, "", "the context ended with its transaction", steps)
	}
}

func errOrOK(err error) string {
	if err != nil {
		return errText(err)
	}
	return "ok"
}

// sA21Temp asks whether the role may create temporary tables, which live
// as long as the pooled connection.
func (r *runner) sA21Temp(ctx context.Context, p *pair) {
	var o outcome
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		o = a.run("CREATE TEMP TABLE " + ident(p.b.tbl.name) + " (planted_by_gameday int)")
		if o.ok() {
			a.run("SELECT count(*) FROM " + ident(p.b.tbl.name))
		}
	})
	switch {
	case err != nil:
		r.add(p, "A21", "temporary tables", Inconclusive, "", err.Error(), steps)
	case o.ok():
		r.add(p, "A21", "temporary tables", Info, Medium,
			"the role may create temporary tables: on a pooled connection one outlives the request, and since pg_temp is searched first it shadows an unqualified "+p.b.tbl.name+" for whoever runs next (revoke TEMP on the database)", steps)
	default:
		r.add(p, "A21", "temporary tables", Blocked, "", "refused: "+o.String(), steps)
	}
}

// sA23 looks for the ingredients of a search_path hijack.
func (r *runner) sA23(ctx context.Context, p *pair) {
	var temp bool
	var schemas []string
	var mutable int64
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		o := a.run(`SELECT pg_catalog.current_setting('search_path'), pg_catalog.has_database_privilege(pg_catalog.current_database(), 'TEMP'),
				ARRAY(SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_namespace n
				      WHERE pg_catalog.has_schema_privilege(n.oid, 'CREATE') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 1)::text[]::text`)
		temp = o.str(1) == "true"
		schemas = parseArray(o.str(2))
		mutable = a.run(`SELECT count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
			WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
			  AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c WHERE c LIKE 'search_path=%')`).int(0)
	})
	switch {
	case err != nil:
		r.add(p, "A23", "search_path hijack", Inconclusive, "", err.Error(), steps)
	case len(schemas) > 0 || temp:
		r.add(p, "A23", "search_path hijack", Info, Medium,
			fmt.Sprintf("the role can create objects (CREATE on %v, TEMP=%v); %d SECURITY DEFINER function(s) it can execute have no pinned search_path. Pin search_path on every function and revoke CREATE/TEMP", schemas, temp, mutable), steps)
	default:
		r.add(p, "A23", "search_path hijack", Blocked, "",
			fmt.Sprintf("the role can create nothing (no CREATE on any schema, no TEMP); %d executable SECURITY DEFINER function(s) lack a pinned search_path", mutable), steps)
	}
}

// sA24Files tries the server-file and server-program escapes.
func (r *runner) sA24Files(ctx context.Context, p *pair) {
	var read, imported bool
	var roles []string
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		o := a.run(`SELECT r FROM unnest(ARRAY['pg_read_server_files', 'pg_write_server_files', 'pg_execute_server_program']) r
			WHERE pg_catalog.pg_has_role(session_user, r, 'MEMBER') OR pg_catalog.pg_has_role(current_user, r, 'MEMBER')`)
		for _, rw := range o.rows {
			roles = append(roles, rw[0])
		}
		read = a.run(`SELECT length(pg_catalog.pg_read_file('PG_VERSION'))`).ok()
		imported = a.run(`SELECT pg_catalog.lo_import('PG_VERSION')`).ok()
	})
	switch {
	case err != nil:
		r.add(p, "A24", "server files and programs", Inconclusive, "", err.Error(), steps)
	case read || imported || len(roles) > 0:
		r.add(p, "A24", "server files and programs", Leaked, High,
			fmt.Sprintf("read a server file=%v, lo_import=%v, member of %v (COPY … PROGRAM was not run)", read, imported, roles), steps)
	default:
		r.add(p, "A24", "server files and programs", Blocked, "", "pg_read_file and lo_import refused; no server-file or program role", steps)
	}
}

// sA24Remote looks for dblink, postgres_fdw and user mappings for PUBLIC.
func (r *runner) sA24Remote(ctx context.Context, p *pair) {
	var exts, mappings, foreign, callable []string
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		for _, rw := range a.run(`SELECT extname FROM pg_catalog.pg_extension WHERE extname IN ('dblink', 'postgres_fdw', 'file_fdw') ORDER BY 1`).rows {
			exts = append(exts, rw[0])
		}
		for _, rw := range a.run(`SELECT srvname FROM pg_catalog.pg_user_mappings WHERE umuser = 0 ORDER BY 1`).rows {
			mappings = append(mappings, rw[0])
		}
		for _, rw := range a.run(`SELECT c.oid::pg_catalog.regclass::text FROM pg_catalog.pg_class c WHERE c.relkind = 'f' AND pg_catalog.has_table_privilege(c.oid, 'SELECT') ORDER BY 1 LIMIT 20`).rows {
			foreign = append(foreign, rw[0])
		}
		for _, rw := range a.run(`SELECT p.oid::pg_catalog.regprocedure::text FROM pg_catalog.pg_proc p
			WHERE p.proname IN ('dblink', 'dblink_connect', 'dblink_exec') AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE') ORDER BY 1`).rows {
			callable = append(callable, rw[0])
		}
	})
	switch {
	case err != nil:
		r.add(p, "A24", "dblink / postgres_fdw", Inconclusive, "", err.Error(), steps)
	case len(exts) == 0 && len(mappings) == 0 && len(foreign) == 0:
		r.add(p, "A24", "dblink / postgres_fdw", NotApplicable, "", "no dblink, postgres_fdw or file_fdw installed", steps)
	case len(mappings) > 0 || len(foreign) > 0 || len(callable) > 0:
		r.add(p, "A24", "dblink / postgres_fdw", Info, Medium,
			fmt.Sprintf("installed %v; dblink callable: %v; user mappings FOR PUBLIC on %v; readable foreign tables %v: with any stronger role's password (or a PUBLIC mapping) row security is bypassed", exts, callable, mappings, foreign), steps)
	default:
		r.add(p, "A24", "dblink / postgres_fdw", Blocked, "", fmt.Sprintf("installed %v, but not usable by the role", exts), steps)
	}
}

// sA30 enrols A in B through the membership table.
func (r *runner) sA30(ctx context.Context, p *pair) {
	const name = "membership self-enrolment"
	m := r.members
	if r.own != nil {
		// bulkhead keeps membership (its users) in the control schema.
		var o outcome
		steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
			o = a.run(`INSERT INTO bulkhead_control.users (tenant_id, email, password_hash, role) VALUES ($1::uuid, 'gameday@example.invalid', 'x', 'admin')`, p.b.tenant)
		})
		switch {
		case err != nil:
			r.add(p, "A30", name, Inconclusive, "", err.Error(), steps)
		case o.ok():
			r.add(p, "A30", name, Leaked, High, "the function added a user to B", steps)
		default:
			r.add(p, "A30", name, Blocked, "", "memberships (bulkhead_control.users) are out of the app roles' reach: "+o.String(), steps)
		}
		return
	}
	if m == nil {
		r.add(p, "A30", name, NotApplicable, "", "no membership table given (--membership-table)", nil)
		return
	}
	var own, ins outcome
	var n int64
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		var cols []string
		for _, c := range m.cols {
			cols = append(cols, "t."+ident(c.name)+"::text")
		}
		own = a.run(fmt.Sprintf(`SELECT %s FROM %s t WHERE t.%s = %s LIMIT 1`, strings.Join(cols, ", "), m.q, ident(m.tcol.name), tparam(m, 1)), p.a.tenant)
		rw := m.asRow(own)
		if rw == nil {
			return
		}
		for _, c := range m.cols {
			if c.hasDefault || c.identity != "" || c.generated != "" {
				delete(rw, c.name)
			}
		}
		rw[m.tcol.name] = strp(p.b.tenant)
		sql, args, err := m.insert(rw, "")
		if err != nil {
			a.note("build the membership row", err.Error())
			return
		}
		ins = a.run(sql, args...)
		if ins.ok() {
			n = p.readB(a)
		}
	})
	switch {
	case err != nil:
		r.add(p, "A30", name, Inconclusive, "", err.Error(), steps)
	case len(own.rows) == 0:
		r.add(p, "A30", name, NotApplicable, "", "A has no membership row of its own to copy", steps)
	case ins.ok():
		r.add(p, "A30", name, Leaked, High, fmt.Sprintf("A enrolled itself in B, and then saw %d of B's rows", n), steps)
	default:
		r.add(p, "A30", name, Blocked, "", "refused: "+ins.String(), steps)
	}
}

// sA33 reports the server version: older minors have row-security and
// statistics CVEs.
func (r *runner) sA33(ctx context.Context, p *pair) {
	var num int64
	var ver string
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		o := a.run(`SELECT pg_catalog.current_setting('server_version_num')::int, pg_catalog.current_setting('server_version')`)
		num, ver = o.int(0), o.str(1)
	})
	if err != nil {
		r.add(p, "A33", "server version", Inconclusive, "", err.Error(), steps)
		return
	}
	// Minors fixing CVE-2025-8713 (statistics through views and partitions).
	fixed := map[int64]int64{13: 130022, 14: 140019, 15: 150014, 16: 160010, 17: 170006}
	major := num / 10000
	if f, ok := fixed[major]; ok && num < f {
		r.add(p, "A33", "server version", Info, Medium, "PostgreSQL "+ver+" is below the minor that fixed the last row-security and statistics CVEs; upgrade", steps)
		return
	}
	r.add(p, "A33", "server version", Info, Low, "PostgreSQL "+ver+" has the known row-security and statistics CVE fixes", steps)
}

// victim is a session gameday opens only to attack it.
type victim struct {
	label string
	other bool // another login role than the attacker's
	pid   uint32
	done  chan error
	close func()
}

// sD01 cancels and terminates sessions that gameday opened for the
// purpose, as the attacker.
func (r *runner) sD01(ctx context.Context, p *pair) {
	const name = "cancel or terminate another session"
	var steps []Step
	var worked []string
	otherWorked := false
	for _, fn := range []string{"pg_cancel_backend", "pg_terminate_backend"} {
		for _, v := range r.victims(ctx, "SELECT pg_catalog.pg_sleep(3)") {
			var o outcome
			s, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
				o = a.run(fmt.Sprintf("SELECT pg_catalog.%s($1) /* %s */", fn, v.label), int64(v.pid))
			})
			steps = append(steps, s...)
			if err != nil {
				steps = append(steps, Step{SQL: fn, Got: err.Error()})
			}
			if o.ok() && o.str(0) == "true" {
				worked = append(worked, fn+" on "+v.label)
				otherWorked = otherWorked || v.other
			}
			v.close()
		}
	}
	switch {
	case len(worked) == 0:
		r.add(p, "D01", name, Blocked, "", "refused", steps)
	case otherWorked:
		r.add(p, "D01", name, Leaked, Medium, "worked: "+strings.Join(worked, ", "), steps)
	case r.own != nil:
		r.add(p, "D01", name, Contained, Medium, "worked on the function's own sessions only ("+strings.Join(worked, ", ")+"): revoke the signalling functions from PUBLIC (needs a superuser at migrate)", steps)
	default:
		r.add(p, "D01", name, Leaked, Medium, "worked: "+strings.Join(worked, ", ")+": with one login shared by all tenants, any request can end the others'; revoke EXECUTE on pg_cancel_backend and pg_terminate_backend from PUBLIC", steps)
	}
}

// sD02 plants role settings and a password on the login, and rolls back.
func (r *runner) sD02(ctx context.Context, p *pair) {
	try := func(stmt string) ([]Step, bool, error) {
		var ok bool
		steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
			if a.run(strings.ReplaceAll(stmt, "%ROLE%", "CURRENT_USER")).ok() {
				ok = true
				return
			}
			a.run("RESET ROLE")
			ok = a.run(strings.ReplaceAll(stmt, "%ROLE%", "SESSION_USER")).ok()
		})
		return steps, ok, err
	}
	for _, d := range []struct{ name, stmt, what string }{
		{"ALTER ROLE … SET", "ALTER ROLE %ROLE% SET statement_timeout = '1ms'", "plant settings in every future session of the login"},
		{"ALTER ROLE … PASSWORD", "ALTER ROLE %ROLE% PASSWORD '" + randHex(12) + "'", "change the login's password"},
	} {
		steps, ok, err := try(d.stmt)
		if r.own != nil && d.name == "ALTER ROLE … SET" {
			s2, _, _ := try("ALTER ROLE %ROLE% SET bulkhead.context = 'v1.x.y.z'")
			steps = append(steps, s2...)
		}
		switch {
		case err != nil:
			r.add(p, "D02", d.name, Inconclusive, "", err.Error(), steps)
		case !ok:
			r.add(p, "D02", d.name, Blocked, "", "refused", steps)
		case r.own != nil:
			r.add(p, "D02", d.name, Contained, Medium, "the function could "+d.what+" (rolled back): it reaches only this function's own login role, and `bulkhead serve`'s watchdog resets planted role settings within seconds", steps)
		default:
			r.add(p, "D02", d.name, Info, Medium, "the login could "+d.what+" (rolled back): PostgreSQL lets every role do this to itself, so with one login shared by all tenants one compromised request degrades or locks out every tenant. Give each function its own login role and watch pg_db_role_setting", steps)
		}
	}
}

// sD03 looks for another session's query text in pg_stat_activity, and
// through pg_stat_get_activity(), the function behind the view, which a
// revoke of the view alone leaves callable.
func (r *runner) sD03(ctx context.Context, p *pair) {
	const name = "other sessions' query text"
	tag := "gameday-d03-" + randHex(4)
	var steps []Step
	var seen []string
	otherSeen := false
	for _, v := range r.victims(ctx, "SELECT pg_catalog.pg_sleep(2) /* "+tag+" */") {
		var n int64
		s, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
			for range 10 {
				o := a.quiet(`SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND query LIKE '%' || $2 || '%'`, int64(v.pid), tag)
				if !o.ok() || o.int(0) > 0 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			n = a.run(`SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND query LIKE '%' || $2 || '%'`, int64(v.pid), tag).int(0)
			if n == 0 {
				n = a.run(`SELECT count(*) FROM pg_catalog.pg_stat_get_activity($1) s WHERE s.query LIKE '%' || $2 || '%'`, int64(v.pid), tag).int(0)
			}
		})
		steps = append(steps, s...)
		if err != nil {
			steps = append(steps, Step{SQL: "pg_stat_activity", Got: err.Error()})
		}
		if n > 0 {
			seen = append(seen, v.label)
			otherSeen = otherSeen || v.other
		}
		v.close()
	}
	switch {
	case len(seen) == 0:
		r.add(p, "D03", name, Blocked, "", "no other session's query text is visible", steps)
	case otherSeen || r.own == nil:
		r.add(p, "D03", name, Leaked, Medium, "read the query text of "+strings.Join(seen, ", ")+": contexts, literals and other tenants' requests show there; revoke SELECT on pg_stat_activity and EXECUTE on pg_stat_get_activity from PUBLIC", steps)
	default:
		r.add(p, "D03", name, Contained, Medium, "read the query text of the function's own other sessions ("+strings.Join(seen, ", ")+")", steps)
	}
}

// sD04 uses a context past its exp inside a transaction begun before.
func (r *runner) sD04(ctx context.Context, p *pair) {
	if r.own == nil {
		r.add(p, "D04", "context used past exp inside a transaction", NotApplicable, "", "needs bulkhead's signed context", nil)
		return
	}
	r.own.expiry(ctx, r, p)
}

// sD11 takes the strongest lock on B's table, which stalls every tenant.
func (r *runner) sD11(ctx context.Context, p *pair) {
	var o outcome
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		o = a.run("LOCK TABLE " + p.b.tbl.q + " IN ACCESS EXCLUSIVE MODE NOWAIT")
	})
	switch {
	case err != nil:
		r.add(p, "D11", "LOCK TABLE", Inconclusive, "", err.Error(), steps)
	case !o.ok():
		r.add(p, "D11", "LOCK TABLE", Blocked, "", "refused: "+o.String(), steps)
	case r.own != nil:
		r.add(p, "D11", "LOCK TABLE", Contained, Medium, "the function locked the table (released at once by the rollback): row security does not apply to LOCK, and UPDATE or DELETE is enough; `bulkhead serve`'s watchdog ends app sessions holding such locks within seconds", steps)
	default:
		r.add(p, "D11", "LOCK TABLE", Info, Medium, "the login locked the table for every tenant (released at once by the rollback): PostgreSQL allows it to any role that may UPDATE or DELETE; only a watchdog that ends such sessions bounds it", steps)
	}
}

// sD11Resources looks at what bounds the login's statements: the
// temporary files one may write (temp_file_limit, which only a superuser
// may change), its time (statement_timeout, which is the login's own to
// set), and how many run at once (the role's connection limit).
// Unbounded, one statement fills the disk, and many hold every CPU.
func (r *runner) sD11Resources(ctx context.Context, p *pair) {
	const name = "temporary files and statement time"
	var limit string
	var conns int64
	var lifted, timeout bool
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		limit = a.run(`SELECT pg_catalog.current_setting('temp_file_limit')`).str(0)
		conns = a.run(`SELECT rolconnlimit FROM pg_catalog.pg_roles WHERE rolname = SESSION_USER`).int(0)
		lifted = a.run(`SET LOCAL temp_file_limit = -1`).ok()
		timeout = a.run(`SET LOCAL statement_timeout = 0`).ok()
	})
	sessions := fmt.Sprintf("it may hold %d sessions at once, each running a statement up to a CPU", conns)
	if conns < 0 {
		sessions = "it has no connection limit, so it may hold as many sessions, each running a statement up to a CPU, as the server allows (ALTER ROLE … CONNECTION LIMIT; lint L23)"
	}
	switch {
	case err != nil || limit == "":
		r.add(p, "D11", name, Inconclusive, "", fmt.Sprintf("could not read temp_file_limit (%v)", err), steps)
	case limit == "-1" || lifted || conns < 0:
		r.add(p, "D11", name, Info, Medium, fmt.Sprintf("temp_file_limit is %s for the login (lifted in the session: %t): with -1, one statement that spills a sort or hash can fill the disk every tenant is on (as a superuser, ALTER ROLE … SET temp_file_limit; lint L22); %s", limit, lifted, sessions), steps)
	case !timeout:
		r.add(p, "D11", name, Blocked, "", "temp_file_limit is "+limit+" and the login cannot lift it, nor set its own statement_timeout; "+sessions, steps)
	case r.own != nil:
		r.add(p, "D11", name, Contained, Low, "temp_file_limit is "+limit+" and the login cannot lift it; it can set its own statement_timeout to 0 (rolled back), and `bulkhead serve`'s watchdog cancels app statements past --watchdog-max-statement (5 minutes by default); until then "+sessions, steps)
	default:
		r.add(p, "D11", name, Info, Low, "temp_file_limit is "+limit+" and the login cannot lift it; it can set its own statement_timeout to 0 (rolled back): only a watchdog that cancels long statements bounds their time; "+sessions, steps)
	}
}

// sD13 counts the silo schemas the catalog shows, and looks for other
// sessions' locks, which name the tables (in a silo, the tenant) in use.
func (r *runner) sD13(ctx context.Context, p *pair) {
	r.sD13Locks(ctx, p)
	if r.own == nil {
		r.add(p, "D13", "catalogs show silo schemas", NotApplicable, "", "bulkhead's silo naming only", nil)
		return
	}
	var o outcome
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		o = a.run(`SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname ~ '^t_[0-9a-f]{32}$'`)
	})
	switch {
	case err != nil:
		r.add(p, "D13", "catalogs show silo schemas", Inconclusive, "", err.Error(), steps)
	case o.ok():
		r.add(p, "D13", "catalogs show silo schemas", Info, Low, fmt.Sprintf("%d silo schemas are visible, by opaque names only (t_<uuid hex>): the number of silo tenants shows, not who they are", o.int(0)), steps)
	default:
		r.add(p, "D13", "catalogs show silo schemas", Blocked, "", o.String(), steps)
	}
}

// sD13Locks reads the locks of sessions gameday opened for the purpose
// (each in a transaction, so each holds at least its own), through pg_locks
// and through pg_lock_status(), the function behind it, which a revoke of
// the view alone leaves callable. On bulkhead the locks of another login's
// session name the silo tables it is using.
func (r *runner) sD13Locks(ctx context.Context, p *pair) {
	const name = "other sessions' locks"
	var steps []Step
	var seen []string
	otherSeen := false
	for _, v := range r.victims(ctx, "SELECT pg_catalog.pg_sleep(2)") {
		var n int64
		s, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
			o := a.run(`SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = $1`, int64(v.pid))
			if n = o.int(0); n == 0 {
				n = a.run(`SELECT count(*) FROM pg_catalog.pg_lock_status() l WHERE l.pid = $1`, int64(v.pid)).int(0)
			}
		})
		steps = append(steps, s...)
		if err != nil {
			steps = append(steps, Step{SQL: "pg_locks", Got: err.Error()})
		}
		if n > 0 {
			seen = append(seen, v.label)
			otherSeen = otherSeen || v.other
		}
		v.close()
	}
	switch {
	case len(seen) == 0:
		r.add(p, "D13", name, Blocked, "", "no other session's locks are visible (pg_locks and pg_lock_status() refused or empty)", steps)
	case r.own != nil && otherSeen:
		r.add(p, "D13", name, Leaked, Low, "read the locks of "+strings.Join(seen, ", ")+": they name the tables each session uses, so the silo of a tenant at work shows; revoke SELECT on pg_locks and EXECUTE on pg_lock_status from PUBLIC", steps)
	case r.own != nil:
		r.add(p, "D13", name, Contained, Low, "read the locks of the function's own other sessions ("+strings.Join(seen, ", ")+")", steps)
	default:
		r.add(p, "D13", name, Info, Low, "read the locks of "+strings.Join(seen, ", ")+": they name the tables every session uses (PostgreSQL's default); revoke SELECT on pg_locks and EXECUTE on pg_lock_status from PUBLIC, granting pg_monitor instead", steps)
	}
}
