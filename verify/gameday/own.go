package gameday

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// OwnConfig configures RunOwn.
type OwnConfig struct {
	// DatabaseURL is the control plane's connection: a superuser, or a role
	// that may take bulkhead_owner and bulkhead_maint and create roles.
	DatabaseURL string
	// Keep leaves the canary tenants, their rows and the function in place
	// (a later run reuses them).
	Keep bool
	// Canaries is the number of canary rows planted for each victim tenant;
	// zero means 20. The attacker tenants get one each.
	Canaries int
	// StatementTimeout bounds each attack statement; zero means 10s.
	StatementTimeout time.Duration
	// Progress, when set, receives a line per phase.
	Progress io.Writer
}

// The canary tenants, by role in the attacks.
var ownTenants = []struct {
	key  string
	tier tenant.Tier
}{{"pa", tenant.Pool}, {"pb", tenant.Pool}, {"sa", tenant.Silo}, {"sb", tenant.Silo}}

var gamedaySlug = regexp.MustCompile(`^gameday-(pa|pb|sa|sb)-([0-9a-f]{8})$`)

// ownEnv is what a bulkhead run set up.
type ownEnv struct {
	bdb     *bulkhead.DB
	pg      *postgres.DB
	key     ctxtoken.Key
	runID   string
	fn      string // function name
	role    string // its login role
	fnOwned bool   // the function is this run's (created or reused), so cleanup may drop it
	tenants map[string]*tenant.Tenant
	byID    map[string]*tenant.Tenant
}

// RunOwn attacks a bulkhead database. It needs the control plane's URL,
// because it sets up what it attacks: canary tenants (two in the pool,
// two in silos) with canary rows, and a function whose login role the
// attacks run as. It offboards the tenants and drops the function
// afterwards unless c.Keep is set.
func RunOwn(ctx context.Context, c OwnConfig) (rep *Report, err error) {
	start := time.Now()
	if c.Canaries <= 0 {
		c.Canaries = 20
	}
	if c.StatementTimeout <= 0 {
		c.StatementTimeout = 10 * time.Second
	}
	logf := func(format string, args ...any) {
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "gameday: "+format+"\n", args...)
		}
	}
	bdb, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: c.DatabaseURL, ContextTTL: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	defer bdb.Close()
	e := &ownEnv{bdb: bdb, pg: bdb.Postgres(), tenants: map[string]*tenant.Tenant{}, byID: map[string]*tenant.Tenant{}}
	k, err := e.pg.SigningKey(ctx, postgres.KeyContext)
	if err != nil {
		return nil, err
	}
	e.key = ctxtoken.Key{ID: k.ID, Secret: k.Secret}

	var notes []string
	// Cleanup is armed before set-up, so a set-up that fails half-way
	// leaves nothing behind either.
	defer func() {
		if c.Keep {
			return
		}
		logf("cleaning up: offboarding the canary tenants, dropping the function")
		if cerr := e.cleanup(context.WithoutCancel(ctx)); cerr != nil {
			// A finished run still reports; the failure is a note on it.
			if rep != nil {
				rep.Notes = append(rep.Notes, "cleanup failed: "+cerr.Error())
			} else {
				err = errors.Join(err, cerr)
			}
		}
	}()
	logf("setting up canary tenants and the attacking function")
	pw, err := e.setup(ctx)
	if err != nil {
		return nil, err
	}

	acfg, err := pgx.ParseConfig(c.DatabaseURL)
	if err != nil {
		return nil, err
	}
	acfg.User, acfg.Password = e.role, pw
	atk := newAttackerConfig(acfg)
	defer atk.close(context.WithoutCancel(ctx))

	marker := "gdc" + e.runID + randHex(4)
	logf("planting canary rows (marker %s)", marker)
	if err := e.plant(ctx, atk, marker, c.Canaries); err != nil {
		return nil, err
	}

	r := &runner{mode: "bulkhead", atk: atk, admin: e.pg.Admin(), login: e.role, timeout: c.StatementTimeout, log: c.Progress, own: e}
	load := func(key string) (*table, error) {
		s, err := postgres.Schema(e.tenants[key].Placement)
		if err != nil {
			return nil, err
		}
		return loadTable(ctx, e.pg.Admin(), s+".projects", "tenant_id", true)
	}
	tables := map[string]*table{}
	for _, t := range ownTenants {
		if tables[t.key], err = load(t.key); err != nil {
			return nil, err
		}
	}
	sideOf := func(key, name string) side {
		tn := e.tenants[key]
		return side{name: name, tenant: string(tn.ID), tbl: tables[key], ctx: e.contextFor(ctx, name, tn)}
	}
	for _, pr := range []struct{ label, a, b string }{{"pool→pool", "pa", "pb"}, {"pool→silo", "pa", "sb"}, {"silo→silo", "sa", "sb"}} {
		p := &pair{label: pr.label, a: sideOf(pr.a, "A"), b: sideOf(pr.b, "B"), marker: marker}
		r.loadBRow(ctx, p)
		r.pairs = append(r.pairs, p)
	}
	for _, t := range ownTenants {
		tn := e.tenants[t.key]
		notes = append(notes, fmt.Sprintf("%s: %s (%s, %s)", strings.ToUpper(t.key[:1])+t.key[1:], tn.Slug, tn.Tier, tn.ID))
	}
	notes = append(notes, "pairs: pool→pool = pa→pb, pool→silo = pa→sb, silo→silo = sa→sb")
	r.run(ctx)
	rep = &Report{Mode: "bulkhead", Login: e.role, Target: "database " + acfg.Database, Started: start,
		Notes: append(notes, r.notes...), Results: r.results}
	rep.Duration = time.Since(start).Round(time.Millisecond).String()
	rep.count()
	return rep, nil
}

// setup finds the canary tenants and function of an earlier run kept
// with --keep, or makes new ones, and returns the login role's password.
func (e *ownEnv) setup(ctx context.Context) (string, error) {
	// The canaries' slugs sort after "gameday-": start there, so that they
	// are found however many tenants sort before them.
	ts, err := e.pg.FindTenants(ctx, postgres.TenantFilter{After: "gameday-", Limit: 10000})
	if err != nil {
		return "", err
	}
	runs := map[string]int{}
	for _, t := range ts {
		if m := gamedaySlug.FindStringSubmatch(string(t.Slug)); m != nil && t.Status == tenant.Active {
			runs[m[2]]++
		}
	}
	for id, n := range runs {
		if n == len(ownTenants) {
			e.runID = id
		}
	}
	if e.runID == "" {
		e.runID = randHex(4)
	}
	for _, t := range ownTenants {
		slug := tenant.Slug("gameday-" + t.key + "-" + e.runID)
		// Premium: its policies allow every command, so each control can
		// show that the command works for the tenant the data belongs to.
		tn, _, err := e.pg.CreateTenant(ctx, postgres.TenantCreate{Slug: slug, Tier: t.tier, Name: string(slug), Plan: "premium"})
		if err != nil {
			return "", fmt.Errorf("gameday: onboard canary tenant %s: %w", slug, err)
		}
		e.tenants[t.key] = tn
		e.byID[string(tn.ID)] = tn
	}
	e.fn = "gameday_" + e.runID
	e.role = postgres.FunctionRolePrefix + e.fn
	fc, err := e.pg.CreateFunction(ctx, e.fn)
	if errors.Is(err, postgres.ErrFunctionExists) {
		pw, err := e.pg.ResetFunctionPassword(ctx, e.fn)
		e.fnOwned = err == nil
		return pw, err
	}
	if err != nil {
		return "", fmt.Errorf("gameday: register the attacking function: %w", err)
	}
	e.fnOwned = true
	return fc.Password, nil
}

// plant replaces each canary tenant's rows: n projects for each victim,
// one for each attacker, and a task under the first. Each tenant writes
// its own rows through the function's login, with its own context.
func (e *ownEnv) plant(ctx context.Context, atk *attacker, marker string, n int) error {
	conn, err := atk.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, t := range ownTenants {
		tn := e.tenants[t.key]
		s, err := postgres.Schema(tn.Placement)
		if err != nil {
			return err
		}
		q := ident(s)
		// Only the victims' rows carry the marker: it is how a probe
		// recognises B's rows wherever they turn up.
		count, desc := 1, "gameday canary of an attacker"
		if t.key == "pb" || t.key == "sb" {
			count, desc = n, marker
		}
		tok, err := e.mint(ctx, tn, e.role)
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, postgres.SetContextSQL, tok); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM `+q+`.tasks WHERE tenant_id = $1`, string(tn.ID)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM `+q+`.projects WHERE tenant_id = $1`, string(tn.ID)); err != nil {
				return err
			}
			var first string
			for i := range count {
				var id string
				if err := tx.QueryRow(ctx, `INSERT INTO `+q+`.projects (name, description) VALUES ($1, $2) RETURNING id::text`,
					fmt.Sprintf("gameday canary %s %d", tn.Slug, i), desc).Scan(&id); err != nil {
					return err
				}
				if i == 0 {
					first = id
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+q+`.tasks (project_id, title) VALUES ($1::uuid, $2)`, first, "gameday canary task "+desc)
			return err
		})
		if err != nil {
			return fmt.Errorf("gameday: plant canary rows for %s: %w", tn.Slug, err)
		}
	}
	// Fresh statistics, as autovacuum would leave them on a busy table:
	// A17 asks the planner what they say about B.
	for _, t := range ownTenants {
		s, _ := postgres.Schema(e.tenants[t.key].Placement)
		for _, tb := range postgres.TenantTableNames {
			if _, err := e.pg.Admin().Exec(ctx, `ANALYZE `+ident(s)+`.`+ident(tb)); err != nil {
				return err
			}
		}
	}
	return nil
}

// cleanup offboards the canary tenants and drops the function's role.
func (e *ownEnv) cleanup(ctx context.Context) error {
	var errs []error
	for _, t := range ownTenants {
		if tn := e.tenants[t.key]; tn != nil {
			if _, err := e.pg.OffboardTenant(ctx, tn.ID); err != nil {
				errs = append(errs, fmt.Errorf("offboard %s: %w", tn.Slug, err))
			}
		}
	}
	if !e.fnOwned {
		// Never drop a role this run did not register (a name clash with
		// another database's function, say).
		return errors.Join(errs...)
	}
	// Sessions of the role (victims, the attacker) are closed by now; end
	// any straggler so the role can go.
	admin := e.pg.Admin()
	admin.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> pg_catalog.pg_backend_pid()`, e.role)
	if _, err := admin.Exec(ctx, `DELETE FROM bulkhead_control.functions WHERE name = $1`, e.fn); err != nil {
		errs = append(errs, fmt.Errorf("delete function %s: %w", e.fn, err))
	}
	if _, err := admin.Exec(ctx, `DROP ROLE IF EXISTS `+ident(e.role)); err != nil {
		errs = append(errs, fmt.Errorf("drop role %s: %w", e.role, err))
	}
	return errors.Join(errs...)
}

// claims are the claims a minter would sign for tn, for the function.
func (e *ownEnv) claims(tn *tenant.Tenant) ctxtoken.Claims {
	now := time.Now().Unix()
	return ctxtoken.Claims{Tenant: string(tn.Slug), TenantID: string(tn.ID), Subject: "gameday", Role: string(tenant.Admin),
		Scope: bulkhead.ScopeFor(tenant.Admin), IssuedAt: now, ExpiresAt: now + 60, Audience: e.role, RequestID: "gameday-" + e.runID}
}

// mint signs a valid context for tn, for the login role aud, as the
// gateway or an authorizer would.
func (e *ownEnv) mint(ctx context.Context, tn *tenant.Tenant, aud string) (string, error) {
	s, err := e.bdb.Mint(ctx, tenant.Principal{Subject: "gameday", Tenant: tn.Slug, TenantID: tn.ID, Role: tenant.Admin},
		bulkhead.MintOptions{Audience: aud, RequestID: "gameday-" + e.runID})
	return s.Token, err
}

func (e *ownEnv) contextFor(ctx context.Context, label string, tn *tenant.Tenant) setter {
	return setter{label: label, sql: postgres.SetContextSQL, token: func() (string, error) { return e.mint(ctx, tn, e.role) }}
}

// rawContext sets bulkhead.context to a fixed value.
func (e *ownEnv) rawContext(label, value string) setter {
	return setter{label: label, sql: postgres.SetContextSQL, token: func() (string, error) { return value, nil }}
}

// forgeries are the contexts a compromised function could make up or
// capture for B, each set on top of A's valid one.
func (e *ownEnv) forgeries(ctx context.Context, p *pair) []setter {
	b := e.byID[p.b.tenant]
	a := e.byID[p.a.tenant]
	signed := func(edit func(*ctxtoken.Claims), k ctxtoken.Key) func() (string, error) {
		return func() (string, error) {
			c := e.claims(b)
			if edit != nil {
				edit(&c)
			}
			return ctxtoken.Mint(k, c)
		}
	}
	otherKey := ctxtoken.Key{ID: e.key.ID, Secret: make([]byte, 32)}
	rand.Read(otherKey.Secret)
	unknownKid := ctxtoken.Key{ID: "gameday" + e.runID, Secret: e.key.Secret}
	tok := func(label string, f func() (string, error)) setter {
		return setter{label: label, sql: postgres.SetContextSQL, token: f}
	}
	return []setter{
		tok("raw tenant uuid", func() (string, error) { return string(b.ID), nil }),
		tok("raw JSON claims", func() (string, error) {
			return `{"tenant_id":"` + string(b.ID) + `","aud":"` + e.role + `","scope":["select","insert"]}`, nil
		}),
		tok("B's claims under A's MAC", func() (string, error) {
			ta, err := e.mint(ctx, a, e.role)
			if err != nil {
				return "", err
			}
			tb, err := e.mint(ctx, b, e.role)
			if err != nil {
				return "", err
			}
			pa, pb := strings.Split(ta, "."), strings.Split(tb, ".")
			return pa[0] + "." + pa[1] + "." + pb[2] + "." + pa[3], nil
		}),
		tok("unsigned (MAC stripped)", func() (string, error) {
			tb, err := e.mint(ctx, b, e.role)
			if err != nil {
				return "", err
			}
			return tb[:strings.LastIndex(tb, ".")+1], nil
		}),
		tok("signed with another key", signed(nil, otherKey)),
		tok("unknown key id", signed(nil, unknownKid)),
		tok("expired (a captured context of B)", signed(func(c *ctxtoken.Claims) {
			c.IssuedAt -= 120
			c.ExpiresAt = time.Now().Unix() - 1
		}, e.key)),
		tok("lifetime over the maximum", signed(func(c *ctxtoken.Claims) { c.ExpiresAt = c.IssuedAt + 3600 }, e.key)),
		tok("issued in the future", signed(func(c *ctxtoken.Claims) { c.IssuedAt += 120; c.ExpiresAt += 120 }, e.key)),
		tok("B's context for another login role (aud)", func() (string, error) { return e.mint(ctx, b, e.pg.AppRole) }),
	}
}

// sessionContext (A21) sets A's context for the whole session rather than
// the transaction, and reads on with none.
func (e *ownEnv) sessionContext(ctx context.Context, r *runner, p *pair) {
	const name = "context survives the transaction"
	conn, err := r.atk.dial(ctx)
	if err != nil {
		r.add(p, "A21", name, Inconclusive, "", err.Error(), nil)
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ta := p.a.tbl
	tok, err := e.mint(ctx, e.byID[p.a.tenant], e.role)
	if err != nil {
		r.add(p, "A21", name, Inconclusive, "", err.Error(), nil)
		return
	}
	read := fmt.Sprintf(`SELECT count(*) FROM %s t WHERE t.tenant_id = $1::uuid`, ta.q)
	var steps []Step
	step := func(as, sql string, args []any) outcome {
		o := query(ctx, conn, sql, args)
		steps = append(steps, Step{As: as, SQL: oneLine(sql, 500), Args: showArgs(args), Got: o.String()})
		return o
	}
	set := `SELECT pg_catalog.set_config('bulkhead.context', $1, false)`
	so := query(ctx, conn, set, []any{tok})
	got := "context set for the session"
	if !so.ok() {
		got = so.String()
	}
	steps = append(steps, Step{As: "A", SQL: set, Args: []string{"<A>"}, Got: got})
	after := step("next transaction, no context", read, []any{p.a.tenant})
	step("same session", "DISCARD ALL", nil)
	discarded := step("after DISCARD ALL", read, []any{p.a.tenant})
	switch {
	case after.int(0) > 0 && discarded.int(0) == 0:
		r.add(p, "A21", name, Contained, Medium, fmt.Sprintf("a context set for the session (set_config(…, false)) still verified in the next transaction (%d of A's rows): it lasts until its exp (at most 5 minutes) and only for this function's login role; bulkhead.DB.Tx sets contexts per transaction and resets business code's connections with DISCARD ALL", after.int(0)), steps)
	case after.int(0) > 0:
		r.add(p, "A21", name, Leaked, High, "the context survived even DISCARD ALL", steps)
	default:
		r.add(p, "A21", name, Blocked, "", "a context set for the session did not carry into the next transaction", steps)
	}
}

// expiry (D04) keeps a transaction open across its context's exp.
func (e *ownEnv) expiry(ctx context.Context, r *runner, p *pair) {
	const name = "context used past exp inside a transaction"
	a := e.byID[p.a.tenant]
	exp := time.Now().Unix() + 2
	c := e.claims(a)
	c.ExpiresAt = exp
	tok, err := ctxtoken.Mint(e.key, c)
	if err != nil {
		r.add(p, "D04", name, Inconclusive, "", err.Error(), nil)
		return
	}
	s := setter{label: "A (exp in 2s)", sql: postgres.SetContextSQL, token: func() (string, error) { return tok, nil }}
	read := fmt.Sprintf(`SELECT count(*) FROM %s t WHERE t.tenant_id = $1::uuid`, p.a.tbl.q)
	var before, after int64
	steps, err := r.probe(ctx, s, txOptions{}, func(at *attempt) {
		before = at.run(read, p.a.tenant).int(0)
		at.run(`SELECT pg_catalog.pg_sleep(greatest(0, $1::float8 - extract(epoch FROM pg_catalog.clock_timestamp())::float8) + 0.3)`, float64(exp))
		after = at.run(read, p.a.tenant).int(0)
	})
	switch {
	case err != nil:
		r.add(p, "D04", name, Inconclusive, "", err.Error(), steps)
	case before == 0:
		r.add(p, "D04", name, Inconclusive, "", "the context saw none of A's rows even before exp", steps)
	case after > 0:
		r.add(p, "D04", name, Leaked, High, fmt.Sprintf("the context still worked after its exp, in the transaction begun before (%d rows)", after), steps)
	default:
		r.add(p, "D04", name, Blocked, "", fmt.Sprintf("%d rows before exp, none after, in one transaction (exp is checked against statement_timestamp())", before), steps)
	}
}

// otherSession opens a session of another login role, the gateway's, for
// D01 and D03 to attack.
func (e *ownEnv) otherSession(ctx context.Context) (*pgx.Conn, string, func(), error) {
	c, err := e.pg.App().Acquire(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	return c.Conn(), e.pg.AppRole, c.Release, nil
}
