package gameday

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config configures Run, against a user's own database.
type Config struct {
	// AppURL is the app login role's connection: the attacker. It must not
	// be a superuser (a superuser is reported as A02 and nothing else runs).
	AppURL string
	// AdminURL, when set, is a superuser or BYPASSRLS connection used to
	// plant and remove B's canary rows, to run controls, and to read the
	// catalog. Optional.
	AdminURL string
	// Table is the attacked table, schema-qualified.
	Table string
	// TenantColumn is its tenant column; empty means tenant_id.
	TenantColumn string
	// TenantA and TenantB are tenant values as text: A attacks, B is the
	// victim.
	TenantA, TenantB string
	// ContextA is the SQL that sets tenant A's context in a transaction, as
	// the application runs it ("SELECT set_config('app.tenant_id', 'A',
	// true)", "SET LOCAL ROLE authenticated; SELECT set_config(…)").
	ContextA string
	// ContextB, when set, sets B's context: it runs the controls and reads
	// B's canary row.
	ContextB string
	// CanaryColumn is a text column to hold (or find) the canary marker;
	// empty means the first text column when planting.
	CanaryColumn string
	// CanaryValue selects existing canary rows of B (CanaryColumn =
	// CanaryValue) instead of planting any.
	CanaryValue string
	// Canaries is the number of canary rows planted for B; zero means 20.
	Canaries int
	// MembershipTable is a membership table for A30, with the same tenant
	// column; A must have a row in it.
	MembershipTable string
	// Keep leaves the planted canary rows in place.
	Keep bool
	// StatementTimeout bounds each attack statement; zero means 10s.
	StatementTimeout time.Duration
	// Progress, when set, receives a line per phase.
	Progress io.Writer
}

// planted remembers canary rows gameday committed, to remove them.
type planted struct {
	tenant string
	ctids  []string
}

// Run attacks a user's database as Config describes.
func Run(ctx context.Context, c Config) (rep *Report, err error) {
	start := time.Now()
	if c.TenantColumn == "" {
		c.TenantColumn = "tenant_id"
	}
	if c.Canaries <= 0 {
		c.Canaries = 20
	}
	if c.StatementTimeout <= 0 {
		c.StatementTimeout = 10 * time.Second
	}
	switch {
	case c.AppURL == "" || c.Table == "" || c.TenantA == "" || c.TenantB == "" || c.ContextA == "":
		return nil, errors.New("gameday: the app URL, the table, both tenants and A's context are required")
	case c.TenantA == c.TenantB:
		return nil, errors.New("gameday: tenants A and B must differ")
	case c.CanaryValue != "" && c.CanaryColumn == "":
		return nil, errors.New("gameday: a canary value needs its canary column")
	}
	logf := func(format string, args ...any) {
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "gameday: "+format+"\n", args...)
		}
	}
	atk, err := newAttacker(c.AppURL)
	if err != nil {
		return nil, err
	}
	defer atk.close(context.WithoutCancel(ctx))
	conn, err := atk.get(ctx)
	if err != nil {
		return nil, err
	}
	var login string
	var super bool
	if err := conn.QueryRow(ctx, `SELECT session_user, r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user`).Scan(&login, &super); err != nil {
		return nil, fmt.Errorf("gameday: who is the app login: %w", err)
	}
	var dbname string
	conn.QueryRow(ctx, `SELECT pg_catalog.current_database()`).Scan(&dbname)
	rep = &Report{Mode: "database", Login: login, Target: "database " + dbname + ", table " + c.Table, Started: start}
	finish := func() *Report {
		rep.Duration = time.Since(start).Round(time.Millisecond).String()
		rep.count()
		return rep
	}
	if super {
		rep.Results = append(rep.Results, Result{ID: "A02", Scenario: "A02 login role is superuser or BYPASSRLS", Verdict: Leaked, Severity: High,
			Summary: "the app login " + login + " is a superuser: row security never applies to it, and nothing else is worth testing (gameday runs no attack as a superuser)"})
		return finish(), nil
	}

	r := &runner{mode: "database", atk: atk, login: login, timeout: c.StatementTimeout, log: c.Progress}
	var admin *pgx.Conn
	if c.AdminURL != "" {
		acfg, err := pgx.ParseConfig(c.AdminURL)
		if err != nil {
			return nil, errors.New("gameday: the admin database URL could not be parsed")
		}
		if acfg.RuntimeParams == nil {
			acfg.RuntimeParams = map[string]string{}
		}
		acfg.RuntimeParams["application_name"] = "bulkhead-gameday-admin"
		if admin, err = pgx.ConnectConfig(ctx, acfg); err != nil {
			return nil, fmt.Errorf("gameday: connect as the admin: %w", err)
		}
		defer admin.Close(context.WithoutCancel(ctx))
		r.admin = admin
	}
	cq, err := r.catalogQuerier(ctx)
	if err != nil {
		return nil, err
	}
	t, err := loadTable(ctx, cq, c.Table, c.TenantColumn, true)
	if err != nil {
		return nil, err
	}
	if t.tcol == nil {
		return nil, fmt.Errorf("gameday: %s has no column %s", t.q, c.TenantColumn)
	}
	if c.MembershipTable != "" {
		if r.members, err = loadTable(ctx, cq, c.MembershipTable, c.TenantColumn, false); err != nil {
			return nil, err
		}
		if r.members.tcol == nil {
			return nil, fmt.Errorf("gameday: the membership table %s has no column %s", r.members.q, c.TenantColumn)
		}
	}
	ctxA := setter{label: "A", sql: c.ContextA}
	ctxB := setter{label: "B", sql: c.ContextB}
	if c.ContextB == "" {
		ctxB = setter{}
	}
	p := &pair{a: side{name: "A", tenant: c.TenantA, tbl: t, ctx: ctxA}, b: side{name: "B", tenant: c.TenantB, tbl: t, ctx: ctxB}}

	canaryCol := c.CanaryColumn
	if canaryCol != "" && t.col(canaryCol) == nil {
		return nil, fmt.Errorf("gameday: %s has no column %s", t.q, canaryCol)
	}
	var plantedRows []planted
	switch {
	case c.CanaryValue != "":
		p.marker = c.CanaryValue
	case admin != nil || !ctxB.none():
		if canaryCol == "" {
			for _, col := range t.cols {
				if col.category == "S" && col.name != t.tcol.name && col.generated == "" {
					canaryCol = col.name
					break
				}
			}
		}
		marker := "gdc" + randHex(6)
		if canaryCol != "" {
			p.marker = marker
		}
		logf("planting %d canary rows for B in %s", c.Canaries, t.q)
		// Only B's rows carry the marker: it is how a probe recognises B's
		// rows wherever they turn up. A gets a row of its own to move and
		// to watch (A08, A21).
		for _, s := range []struct {
			tenant, marker string
			ctx            setter
			n              int
		}{{c.TenantB, marker, ctxB, c.Canaries}, {c.TenantA, "gda" + randHex(6), ctxA, 1}} {
			pl, err := plant(ctx, r, t, canaryCol, s.marker, s.tenant, s.ctx, s.n)
			if len(pl.ctids) > 0 {
				plantedRows = append(plantedRows, pl)
			}
			if err != nil && s.tenant == c.TenantB {
				rep.Notes = append(rep.Notes, "could not plant canary rows for B: "+err.Error())
				if len(pl.ctids) == 0 {
					p.marker = "" // no row carries it
				}
			}
		}
		if admin != nil {
			admin.Exec(ctx, "ANALYZE "+t.q)
		}
	default:
		rep.Notes = append(rep.Notes, "no --admin-database-url, --context-b or --canary-value: B's existing rows are the canaries, and no control proves the probes can see them")
	}
	if !c.Keep {
		defer func() {
			for _, pl := range plantedRows {
				if err := unplant(context.WithoutCancel(ctx), r, t, pl, ctxFor(pl.tenant, c.TenantA, ctxA, ctxB)); err != nil {
					rep.Notes = append(rep.Notes, "cleanup: "+err.Error())
				}
			}
			if admin != nil && len(plantedRows) > 0 {
				admin.Exec(context.WithoutCancel(ctx), "ANALYZE "+t.q)
			}
		}()
	}
	r.loadBRow(ctx, p)
	if p.bRow == nil {
		rep.Notes = append(rep.Notes, "no row of B was found to read keys and values from: key-based scenarios are not applicable")
	}
	r.pairs = []*pair{p}
	r.run(ctx)
	rep.Results = r.results
	rep.Notes = append(rep.Notes, r.notes...)
	return finish(), nil
}

func ctxFor(tenant, a string, ctxA, ctxB setter) setter {
	if tenant == a {
		return ctxA
	}
	return ctxB
}

// plant commits n canary rows for a tenant: as the admin when there is
// one, else with the tenant's own context through the app login.
func plant(ctx context.Context, r *runner, t *table, canaryCol, marker, tnt string, s setter, n int) (planted, error) {
	pl := planted{tenant: tnt}
	write := func(sql string, args []any) outcome {
		if r.admin != nil {
			return query(ctx, r.admin, sql, args)
		}
		var o outcome
		conn, err := r.atk.get(ctx)
		if err != nil {
			return outcome{err: err}
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, s.sql); err != nil {
				return err
			}
			o = query(ctx, tx, sql, args)
			return o.err
		})
		if err != nil {
			o.err = err
		}
		return o
	}
	if r.admin == nil && s.none() {
		return pl, errors.New("no admin and no context to write with")
	}
	for i := range n {
		set := row{t.tcol.name: strp(tnt)}
		if canaryCol != "" {
			set[canaryCol] = strp(fmt.Sprintf("%s-%d", marker, i))
		}
		// A full row first, as a real one would be (the key oracles need
		// values in the unique columns); the bare minimum if that fails a
		// constraint.
		full := row{}
		for _, c := range t.cols {
			if c.generated != "" || c.identity != "" || c.hasDefault {
				continue
			}
			if g, ok := generate(c); ok {
				full[c.name] = strp(g)
			}
		}
		for k, v := range set {
			full[k] = v
		}
		var o outcome
		var sql string
		for _, try := range []row{full, set} {
			var args []any
			var err error
			if sql, args, err = t.insert(try, " RETURNING ctid::text"); err != nil {
				return pl, err
			}
			if o = write(sql, args); o.ok() {
				break
			}
		}
		if o.err != nil {
			return pl, fmt.Errorf("%s: %s", strings.TrimSpace(oneLine(sql, 200)), errText(o.err))
		}
		pl.ctids = append(pl.ctids, o.str(0))
	}
	return pl, nil
}

// unplant deletes planted rows by their ctid and tenant.
func unplant(ctx context.Context, r *runner, t *table, pl planted, s setter) error {
	sql := fmt.Sprintf(`DELETE FROM %s t WHERE t.ctid = ANY ($1::tid[]) AND t.%s = %s`, t.q, ident(t.tcol.name), tparam(t, 2))
	args := []any{pl.ctids, pl.tenant}
	var o outcome
	if r.admin != nil {
		o = query(ctx, r.admin, sql, args)
	} else {
		conn, err := r.atk.get(ctx)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, s.sql); err != nil {
				return err
			}
			o = query(ctx, tx, sql, args)
			return o.err
		})
		if err != nil {
			o.err = err
		}
	}
	if o.err != nil {
		return fmt.Errorf("remove the canary rows of %s: %s", pl.tenant, errText(o.err))
	}
	if o.n != int64(len(pl.ctids)) {
		return fmt.Errorf("removed %d of the %d canary rows of %s (row security may hide them from the remover)", o.n, len(pl.ctids), pl.tenant)
	}
	return nil
}
