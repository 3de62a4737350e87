package gameday

// Scenarios about roles: ownership, role attributes, SET ROLE.

import (
	"context"
	"fmt"
	"strings"
)

// sA01 asks whether the connected role owns the table (owners bypass row
// security unless it is forced, and can always unforce or disable it).
func (r *runner) sA01(ctx context.Context, p *pair) {
	t := p.b.tbl
	var owner, sessionOwner, rewrote bool
	var n int64
	steps, err := r.probe(ctx, p.a.ctx, txOptions{}, func(a *attempt) {
		o := a.run(`SELECT current_user, session_user, pg_catalog.pg_get_userbyid(c.relowner),
				pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE'), pg_catalog.pg_has_role(session_user, c.relowner, 'MEMBER'),
				c.relrowsecurity, c.relforcerowsecurity
			FROM pg_catalog.pg_class c WHERE c.oid = $1`, t.oid)
		owner, sessionOwner = o.str(3) == "true", o.str(4) == "true"
		n = p.readB(a)
		for _, stmt := range []string{
			"ALTER TABLE " + t.q + " NO FORCE ROW LEVEL SECURITY",
			"ALTER TABLE " + t.q + " DISABLE ROW LEVEL SECURITY",
			"CREATE POLICY gameday_all ON " + t.q + " FOR SELECT USING (true)",
		} {
			if a.run(stmt).ok() {
				rewrote = true
				if m := p.readB(a); m > n {
					n = m
				}
			}
		}
	})
	if err != nil {
		r.add(p, "A01", "connected role owns the table", Inconclusive, "", err.Error(), steps)
		return
	}
	switch {
	case (owner || sessionOwner) && (n > 0 || rewrote):
		r.add(p, "A01", "connected role owns the table", Leaked, High,
			fmt.Sprintf("the app role has the privileges of the owner %s: it saw %d of B's rows and could rewrite row security=%v", t.owner, n, rewrote), steps)
	case rewrote:
		r.add(p, "A01", "connected role owns the table", Leaked, High, "the app role could unforce, disable or add row security policies", steps)
	case owner || sessionOwner:
		r.add(p, "A01", "connected role owns the table", Leaked, High, "the app role has the owner's privileges (it could rewrite row security)", steps)
	default:
		r.add(p, "A01", "connected role owns the table", Blocked, "",
			fmt.Sprintf("the app role does not own %s (owner %s) and could not unforce, disable or add policies", t.q, t.owner), steps)
	}
}

// sA02 looks at the login role itself.
func (r *runner) sA02(ctx context.Context, p *pair) {
	var bad []string
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		o := a.run(`SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolreplication FROM pg_catalog.pg_roles r
			WHERE r.rolname IN (session_user, current_user) ORDER BY r.rolname`)
		for _, rw := range o.rows {
			if rw[1] == "true" || rw[2] == "true" || rw[3] == "true" {
				bad = append(bad, rw[0])
			}
		}
	})
	switch {
	case err != nil:
		r.add(nil, "A02", "login role is superuser or BYPASSRLS", Inconclusive, "", err.Error(), steps)
	case len(bad) > 0:
		r.add(nil, "A02", "login role is superuser or BYPASSRLS", Leaked, High,
			"superuser, BYPASSRLS or REPLICATION: "+strings.Join(bad, ", ")+" (row security never applies to it)", steps)
	default:
		r.add(nil, "A02", "login role is superuser or BYPASSRLS", Blocked, "",
			"neither the login nor the role the context sets is superuser, BYPASSRLS or REPLICATION", steps)
	}
}

// sA22SetRole tries SET ROLE into every role the login is a member of,
// and into the owners it is not.
func (r *runner) sA22SetRole(ctx context.Context, p *pair) {
	const name = "SET ROLE into roles the login belongs to"
	var roles []string
	cq, err := r.catalogQuerier(ctx)
	if err == nil {
		o := query(ctx, cq, `SELECT r.rolname FROM pg_catalog.pg_roles r
			WHERE r.rolname <> $1 AND pg_catalog.pg_has_role($1, r.oid, 'MEMBER')
			ORDER BY r.rolbypassrls DESC, r.rolsuper DESC, r.rolname LIMIT 40`, []any{r.login})
		for _, rw := range o.rows {
			roles = append(roles, rw[0])
		}
	}
	tried := append([]string{}, roles...)
	extra := []string{p.b.tbl.owner}
	if r.own != nil {
		extra = append(extra, "bulkhead_owner", "bulkhead_maint", r.own.pg.AppRole)
	}
	for _, x := range extra {
		if x != r.login && !contains(tried, x) {
			tried = append(tried, x)
		}
	}
	var all []Step
	var leakedAs []string
	for _, role := range tried {
		var n int64
		var switched bool
		var n0 int64
		steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
			n0 = p.readB(a)
			if a.run("SET LOCAL ROLE " + ident(role)).ok() {
				switched = true
				n = p.readB(a)
			}
		})
		if n <= n0 {
			n = 0
		}
		all = append(all, steps...)
		if err != nil {
			all = append(all, Step{SQL: "SET LOCAL ROLE " + ident(role), Got: err.Error()})
		}
		if switched && n > 0 {
			leakedAs = append(leakedAs, fmt.Sprintf("%s (%d rows)", role, n))
		}
	}
	switch {
	case len(leakedAs) > 0:
		r.add(p, "A22", name, Leaked, High, "read more of B's rows after SET ROLE "+strings.Join(leakedAs, ", "), all)
	default:
		r.add(p, "A22", name, Blocked, "", fmt.Sprintf("member of %d role(s) %v; none of %v reads B's rows", len(roles), roles, tried), all)
	}
}

// sA22Reset drops whatever role the context set and reads as the login.
func (r *runner) sA22Reset(ctx context.Context, p *pair) {
	var n0, n int64
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		n0 = p.readB(a)
		a.run("RESET ROLE")
		a.run("SELECT current_user, session_user")
		n = p.readB(a)
	})
	if err != nil {
		r.add(p, "A22", "RESET ROLE", Inconclusive, "", err.Error(), steps)
		return
	}
	if n0 > 0 {
		r.add(p, "A22", "RESET ROLE", NotApplicable, "", "A's context already reads B's rows (see R1): RESET ROLE has nothing to add", steps)
		return
	}
	sql, args := p.filterSQL()
	ctl, csteps, known := r.control(ctx, p, sql, args, 0)
	v, why := readVerdict(n, ctl, known)
	r.add(p, "A22", "RESET ROLE", v, High, why, append(steps, csteps...))
}

// sA22SessionAuth tries SET SESSION AUTHORIZATION to the table's owner.
func (r *runner) sA22SessionAuth(ctx context.Context, p *pair) {
	owner := p.b.tbl.owner
	if owner == r.login {
		r.add(p, "A22", "SET SESSION AUTHORIZATION", NotApplicable, "", "the login itself owns the table (see A01)", nil)
		return
	}
	var n0, n int64
	var ok bool
	steps, err := r.probe(ctx, p.a.ctx, txOptions{readOnly: true}, func(a *attempt) {
		n0 = p.readB(a)
		if a.run("SET LOCAL SESSION AUTHORIZATION " + ident(owner)).ok() {
			ok = true
			n = p.readB(a)
		}
	})
	switch {
	case err != nil:
		r.add(p, "A22", "SET SESSION AUTHORIZATION", Inconclusive, "", err.Error(), steps)
	case ok && n > n0:
		r.add(p, "A22", "SET SESSION AUTHORIZATION", Leaked, High, fmt.Sprintf("became %s and saw %d of B's rows", owner, n), steps)
	case ok:
		r.add(p, "A22", "SET SESSION AUTHORIZATION", Leaked, High, fmt.Sprintf("became the owner %s", owner), steps)
	default:
		r.add(p, "A22", "SET SESSION AUTHORIZATION", Blocked, "", "refused (superusers only)", steps)
	}
}
