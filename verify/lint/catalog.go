package lint

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// The catalog snapshot the checks run on. Everything is read in load, in
// one transaction; the checks are plain Go over these structs.

type role struct {
	oid                 uint32
	name, q             string
	super, bypass, repl bool
	login               bool
}

// rel is a table, view, materialized view, foreign table or sequence.
type rel struct {
	oid          uint32
	schema, name string
	q            string // quoted, qualified
	kind         string // pg_class.relkind
	rls, force   bool
	partition    bool
	owner        uint32
	ownerQ       string
	tcol         int16 // attnum of the tenant column, 0 when absent
	exposed, ext bool
	options      []string
	parents      []uint32
	cols         []string
	app          map[string]bool     // privilege → some app role holds it (with USAGE on the schema)
	grantees     map[string][]string // privilege → quoted grantees an app role inherits it from
	viewdef      string
	policies     []*policy
}

func (r *rel) tenant() bool { return r.tcol > 0 && (r.kind == "r" || r.kind == "p") }

// reachable reports whether app roles hold any privilege on r.
func (r *rel) reachable() bool {
	for _, v := range r.app {
		if v {
			return true
		}
	}
	return false
}

func (r *rel) writable() bool {
	return r.app["INSERT"] || r.app["UPDATE"] || r.app["DELETE"] || r.app["TRUNCATE"]
}

func (r *rel) option(name string) bool {
	for _, o := range r.options {
		k, v, _ := strings.Cut(o, "=")
		if k == name {
			switch strings.ToLower(v) {
			case "true", "on", "1", "yes":
				return true
			}
		}
	}
	return false
}

func (r *rel) kindName() string {
	switch r.kind {
	case "r":
		return "table"
	case "p":
		return "partitioned table"
	case "v":
		return "view"
	case "m":
		return "materialized view"
	case "f":
		return "foreign table"
	case "S":
		return "sequence"
	}
	return "relation"
}

func (r *rel) object() Object { return Object{Kind: r.kindName(), Name: r.q} }

type policy struct {
	rel           *rel
	name, q       string
	cmd           string // r a w d *
	permissive    bool
	qual, check   string // deparsed; "" when absent
	roles         []string
	appRoles      []string // reach roles the policy applies to
	qualX, checkX *expr
}

func (p *policy) object() Object { return Object{Kind: "policy", Name: p.q + " ON " + p.rel.q} }

// appliesTo reports whether the policy governs command cmd (r, a, w, d).
func (p *policy) appliesTo(cmd string) bool { return p.cmd == "*" || p.cmd == cmd }

func cmdName(cmd string) string {
	switch cmd {
	case "r":
		return "SELECT"
	case "a":
		return "INSERT"
	case "w":
		return "UPDATE"
	case "d":
		return "DELETE"
	}
	return "ALL"
}

type function struct {
	oid                     uint32
	schema, name, sig       string
	kind                    string // f or p
	secdef, leakproof       bool
	volatility              string
	lang, src               string // src: prosrc, or the deparsed SQL-standard body
	config                  []string
	ownerQ                  string
	owner                   uint32
	ownerSuper, ownerBypass bool
	exposed, ext, appExec   bool
	grantees                []string
}

func (f *function) object() Object { return Object{Kind: "function", Name: f.sig} }

func (f *function) keyword() string {
	if f.kind == "p" {
		return "PROCEDURE"
	}
	return "FUNCTION"
}

// searchPath returns the pinned search_path and whether there is one.
func (f *function) searchPath() (string, bool) {
	for _, c := range f.config {
		if v, ok := strings.CutPrefix(c, "search_path="); ok {
			return v, true
		}
	}
	return "", false
}

type constraint struct {
	rel         uint32
	q           string
	typ         string // p u f
	cols        []int16
	frel        uint32
	fcols       []int16
	colQ, fcolQ []string
	def         string
}

type index struct {
	rel                             uint32
	q                               string
	unique, primary, valid, backing bool
	inherited                       bool // a partition's share of its parent's index
	keys                            []int16
	def                             string
}

type extension struct {
	name, q, schema, schemaQ string
	version, defaultVersion  string
	relocatable              bool
}

type schema struct {
	name, q   string
	appCreate bool
	grantees  []string
}

type catalog struct {
	opt           Options
	db, dbq       string
	version       int
	versionText   string
	bulkhead      bool
	statsExtFixed bool
	tenantExpr    string
	tcolQ         string // the tenant column, quoted
	exposedNames  []string

	apps       []role // app roles
	reach      []uint32
	escalation []escalation
	otherLogin []role

	rels      []*rel
	relByOID  map[uint32]*rel
	policies  []*policy
	funcs     []*function
	funcByKey map[string][]*function // schema.name, as deparsed (lower case unless quoted)
	cons      []constraint
	idx       []index
	deps      map[uint32][]uint32 // view or matview → relations it reads
	exts      []extension
	publicUM  []string
	schemas   []schema
	dbTemp    bool
	dbCreate  bool
	dbGrants  map[string][]string
	sessions  []sessionPriv // L20
	tempFree  []role        // app login roles with no temp_file_limit (L22)
	connFree  []role        // app login roles with no connection limit (L23)

	integrity integrity // bulkhead's own functions (bulkhead databases only)

	unreadableReads map[uint32]bool // function → reads a relation no app role can read
}

// sessionPriv is a pg_catalog view or function that shows or signals
// other sessions, and whether app roles may use it (L20).
type sessionPriv struct {
	kind     string // "view" or "function"
	name     string // pg_catalog.pg_locks, pg_catalog.pg_lock_status()
	priv     string // SELECT or EXECUTE
	held     bool
	grantees []string // whom app roles hold it through (PUBLIC included)
}

// escalation is an app role that can become a role above row security.
type escalation struct {
	app    role
	target role
	via    []string // the app role's direct memberships that lead there
	owns   bool
}

func (c *catalog) appNames() []string {
	out := []string{}
	for _, r := range c.apps {
		out = append(out, r.name)
	}
	return out
}

// nonSystem is the filter on n (pg_namespace) for user schemas.
const nonSystem = `n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'`

// inReach is true when some app-reachable role r (in $1) satisfies cond.
func inReach(cond string) string {
	return `EXISTS (SELECT 1 FROM unnest($1::oid[]) AS r(oid) WHERE ` + cond + `)`
}

// granteesSQL lists "PRIV grantee" for the ACL entries app roles inherit
// (PUBLIC included, the owner excluded).
func granteesSQL(acl, defKind, owner string) string {
	return `ARRAY(SELECT DISTINCT a.privilege_type || ' ' || CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
		FROM aclexplode(coalesce(` + acl + `, acldefault('` + defKind + `', ` + owner + `))) AS a
		WHERE a.grantee <> ` + owner + ` AND (a.grantee = 0 OR ` + inReach(`pg_has_role(r.oid, a.grantee, 'USAGE')`) + `))`
}

func splitGrantees(list []string) map[string][]string {
	m := map[string][]string{}
	for _, s := range list {
		p, g, ok := strings.Cut(s, " ")
		if ok {
			m[p] = append(m[p], g)
		}
	}
	for _, v := range m {
		sort.Strings(v)
	}
	return m
}

func load(ctx context.Context, tx pgx.Tx, opt Options) (*catalog, error) {
	c := &catalog{opt: opt, relByOID: map[uint32]*rel{}, funcByKey: map[string][]*function{}, deps: map[uint32][]uint32{}}
	var statsExt, statsExprs string
	err := tx.QueryRow(ctx, `SELECT current_database(), quote_ident(current_database()),
		current_setting('server_version_num')::int, current_setting('server_version'),
		to_regnamespace('bulkhead_control') IS NOT NULL AND to_regrole('bulkhead_app') IS NOT NULL
			AND to_regprocedure('bulkhead.tenant_id()') IS NOT NULL,
		coalesce(pg_get_viewdef(to_regclass('pg_catalog.pg_stats_ext')), ''),
		coalesce(pg_get_viewdef(to_regclass('pg_catalog.pg_stats_ext_exprs')), ''),
		quote_ident($1)`, opt.TenantColumn).
		Scan(&c.db, &c.dbq, &c.version, &c.versionText, &c.bulkhead, &statsExt, &statsExprs, &c.tcolQ)
	if err != nil {
		return nil, err
	}
	c.statsExtFixed = statsExtFixed(statsExt, statsExprs)
	c.tenantExpr = opt.TenantExpr
	if c.tenantExpr == "" {
		if c.bulkhead {
			c.tenantExpr = "(SELECT bulkhead.tenant_id())"
		} else {
			c.tenantExpr = "NULL /* replace NULL with your verified tenant expression */"
		}
	}
	if err := c.loadSchemasNames(ctx, tx); err != nil {
		return nil, err
	}
	if err := c.loadRoles(ctx, tx); err != nil {
		return nil, err
	}
	for _, step := range []func(context.Context, pgx.Tx) error{
		c.loadRels, c.loadPolicies, c.loadFuncs, c.loadConstraints, c.loadIndexes,
		c.loadDeps, c.loadExtensions, c.loadSchemas, c.loadDatabase, c.loadSessionPrivs, c.loadTempLimits, c.loadEscalations, c.loadIntegrity,
	} {
		if err := step(ctx, tx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *catalog) loadSchemasNames(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT n.nspname FROM pg_namespace n WHERE `+nonSystem+` ORDER BY 1`)
	if err != nil {
		return err
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(c.opt.Schemas) == 0 {
		c.exposedNames = all
		return nil
	}
	have := map[string]bool{}
	for _, s := range all {
		have[s] = true
	}
	for _, s := range c.opt.Schemas {
		if !have[s] {
			return fault.Errorf(fault.Invalid, "invalid_parameter", "Schema %q does not exist in database %s.", s, c.db)
		}
	}
	c.exposedNames = append([]string(nil), c.opt.Schemas...)
	sort.Strings(c.exposedNames)
	return nil
}

// loadRoles resolves the app roles and the roles they can act as.
func (c *catalog) loadRoles(ctx context.Context, tx pgx.Tx) error {
	names := c.opt.AppRoles
	if len(names) == 0 {
		var q string
		if c.bulkhead {
			// Login roles that are members of bulkhead_app, directly or not
			// (pg_has_role would count superusers as members of everything).
			q = `WITH RECURSIVE m(oid) AS (
				SELECT member FROM pg_auth_members WHERE roleid = 'bulkhead_app'::regrole
				UNION SELECT am.member FROM pg_auth_members am JOIN m ON am.roleid = m.oid)
				SELECT r.rolname FROM pg_roles r JOIN m ON m.oid = r.oid WHERE r.rolcanlogin ORDER BY 1`
		} else {
			q = `SELECT r.rolname FROM pg_roles r
				WHERE r.rolcanlogin AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\_%'
				  AND has_database_privilege(r.oid, current_database(), 'CONNECT')
				  AND NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
					JOIN pg_attribute t ON t.attrelid = c.oid AND t.attname = $1 AND t.attnum > 0 AND NOT t.attisdropped
					WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p') AND ` + nonSystem + `)
				ORDER BY 1`
		}
		var args []any
		if !c.bulkhead {
			args = append(args, c.opt.TenantColumn)
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		if names, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, `SELECT oid, rolname, quote_ident(rolname), rolsuper, rolbypassrls, rolreplication, rolcanlogin
		FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`, names)
	if err != nil {
		return err
	}
	c.apps, err = pgx.CollectRows(rows, scanRole)
	if err != nil {
		return err
	}
	if len(c.apps) != len(dedupe(names)) {
		found := map[string]bool{}
		for _, r := range c.apps {
			found[r.name] = true
		}
		for _, n := range names {
			if !found[n] {
				return fault.Errorf(fault.Invalid, "invalid_role", "App role %q does not exist.", n)
			}
		}
	}
	rows, err = tx.Query(ctx, `SELECT r.oid FROM pg_roles r
		WHERE NOT r.rolsuper AND EXISTS (SELECT 1 FROM pg_roles a
			WHERE a.rolname = ANY($1) AND NOT a.rolsuper AND `+c.actsAs("a.oid", "r.oid")+`)
		ORDER BY r.rolname`, names)
	if err != nil {
		return err
	}
	for rows.Next() {
		var oid uint32
		if err := rows.Scan(&oid); err != nil {
			return err
		}
		c.reach = append(c.reach, oid)
	}
	if c.reach == nil {
		c.reach = []uint32{}
	}
	return rows.Err()
}

// actsAs is SQL that is true when role a can use role r's rights: on
// PostgreSQL 16 and later by inheriting them or by SET ROLE (a membership
// granted WITH INHERIT FALSE, SET FALSE gives neither); before 16 any
// membership allows SET ROLE.
func (c *catalog) actsAs(a, r string) string {
	if c.version >= 160000 {
		return "(pg_has_role(" + a + ", " + r + ", 'USAGE') OR pg_has_role(" + a + ", " + r + ", 'SET'))"
	}
	return "pg_has_role(" + a + ", " + r + ", 'MEMBER')"
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func scanRole(row pgx.CollectableRow) (role, error) {
	var r role
	err := row.Scan(&r.oid, &r.name, &r.q, &r.super, &r.bypass, &r.repl, &r.login)
	return r, err
}

var tablePrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}

func (c *catalog) loadRels(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT c.oid, n.nspname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
		c.relkind::text, c.relrowsecurity, c.relforcerowsecurity, c.relispartition,
		c.relowner, quote_ident(pg_get_userbyid(c.relowner)), coalesce(ta.attnum, 0)::int2,
		n.nspname = ANY($3::text[]),
		EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'),
		coalesce(c.reloptions, '{}'::text[]),
		ARRAY(SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid ORDER BY i.inhseqno),
		ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
		ARRAY(SELECT p.priv FROM unnest($4::text[]) AS p(priv) WHERE `+inReach(`has_schema_privilege(r.oid, n.oid, 'USAGE') AND
			CASE WHEN c.relkind = 'S' THEN CASE WHEN p.priv IN ('SELECT', 'UPDATE') THEN has_sequence_privilege(r.oid, c.oid, p.priv) ELSE false END
			     WHEN p.priv IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') THEN has_any_column_privilege(r.oid, c.oid, p.priv)
			     ELSE has_table_privilege(r.oid, c.oid, p.priv) END`)+`),
		`+granteesSQL("c.relacl", "r", "c.relowner")+`,
		CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) ELSE '' END
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attribute ta ON ta.attrelid = c.oid AND ta.attname = $2 AND ta.attnum > 0 AND NOT ta.attisdropped
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND `+nonSystem+`
		ORDER BY 4`, c.reach, c.opt.TenantColumn, c.exposedNames, tablePrivileges)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r := &rel{app: map[string]bool{}}
		var privs, grants []string
		if err := rows.Scan(&r.oid, &r.schema, &r.name, &r.q, &r.kind, &r.rls, &r.force, &r.partition,
			&r.owner, &r.ownerQ, &r.tcol, &r.exposed, &r.ext, &r.options, &r.parents, &r.cols,
			&privs, &grants, &r.viewdef); err != nil {
			return err
		}
		if r.kind == "S" {
			r.tcol = 0
		}
		for _, p := range privs {
			r.app[p] = true
		}
		r.grantees = splitGrantees(grants)
		c.rels = append(c.rels, r)
		c.relByOID[r.oid] = r
	}
	return rows.Err()
}

func (c *catalog) loadPolicies(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT p.polrelid, p.polname, quote_ident(p.polname), p.polcmd::text, p.polpermissive,
		coalesce(pg_get_expr(p.polqual, p.polrelid), ''), coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''),
		ARRAY(SELECT CASE WHEN x.r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.r)) END
		      FROM unnest(p.polroles) WITH ORDINALITY AS x(r, i) ORDER BY x.i),
		ARRAY(SELECT quote_ident(ro.rolname) FROM pg_roles ro WHERE ro.oid = ANY($1::oid[])
		      AND (0 = ANY(p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) AS pr(oid) WHERE pg_has_role(ro.oid, pr.oid, 'USAGE')))
		      ORDER BY 1)
		FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE `+nonSystem+`
		ORDER BY p.polrelid, p.polname`, c.reach)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		p := &policy{}
		var relid uint32
		if err := rows.Scan(&relid, &p.name, &p.q, &p.cmd, &p.permissive, &p.qual, &p.check, &p.roles, &p.appRoles); err != nil {
			return err
		}
		r := c.relByOID[relid]
		if r == nil {
			continue
		}
		p.rel = r
		if p.qual != "" {
			p.qualX = parseExpr(p.qual)
		}
		if p.check != "" {
			p.checkX = parseExpr(p.check)
		}
		r.policies = append(r.policies, p)
		c.policies = append(c.policies, p)
	}
	return rows.Err()
}

func (c *catalog) loadFuncs(ctx context.Context, tx pgx.Tx) error {
	// A SQL-standard body (RETURN … or BEGIN ATOMIC … END, PostgreSQL 14
	// and later) is stored parsed, in prosqlbody, and leaves prosrc empty:
	// read it deparsed, with every name outside pg_catalog qualified.
	src := `coalesce(p.prosrc, '')`
	if c.version >= 140000 {
		src = `CASE WHEN p.prosqlbody IS NOT NULL THEN coalesce(pg_get_function_sqlbody(p.oid), '') ELSE coalesce(p.prosrc, '') END`
	}
	rows, err := tx.Query(ctx, `SELECT p.oid, n.nspname, p.proname, p.oid::regprocedure::text, p.prokind::text,
		p.prosecdef, p.proleakproof, p.provolatile::text, l.lanname, `+src+`, coalesce(p.proconfig, '{}'::text[]),
		quote_ident(o.rolname), p.proowner, o.rolsuper, o.rolbypassrls, n.nspname = ANY($2::text[]),
		EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'),
		`+inReach(`has_schema_privilege(r.oid, n.oid, 'USAGE') AND has_function_privilege(r.oid, p.oid, 'EXECUTE')`)+`,
		`+granteesSQL("p.proacl", "f", "p.proowner")+`
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
		JOIN pg_roles o ON o.oid = p.proowner
		WHERE p.prokind IN ('f', 'p') AND `+nonSystem+`
		ORDER BY 4`, c.reach, c.exposedNames)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		f := &function{}
		var grants []string
		if err := rows.Scan(&f.oid, &f.schema, &f.name, &f.sig, &f.kind, &f.secdef, &f.leakproof, &f.volatility, &f.lang, &f.src,
			&f.config, &f.ownerQ, &f.owner, &f.ownerSuper, &f.ownerBypass, &f.exposed, &f.ext, &f.appExec, &grants); err != nil {
			return err
		}
		f.grantees = splitGrantees(grants)["EXECUTE"]
		c.funcs = append(c.funcs, f)
		// The scanner sees an unquoted name in lower case and a quoted
		// one as written: either way, the catalog spelling.
		k := f.schema + "." + f.name
		c.funcByKey[k] = append(c.funcByKey[k], f)
	}
	return rows.Err()
}

func (c *catalog) tenantOIDs() []uint32 {
	out := []uint32{}
	for _, r := range c.rels {
		if r.tenant() {
			out = append(out, r.oid)
		}
	}
	return out
}

func (c *catalog) loadConstraints(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT con.conrelid, quote_ident(con.conname), con.contype::text, con.conkey,
		con.confrelid, coalesce(con.confkey, '{}'::int2[]), pg_get_constraintdef(con.oid),
		ARRAY(SELECT quote_ident(a.attname) FROM unnest(con.conkey) WITH ORDINALITY AS k(n, i)
		      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
		ARRAY(SELECT quote_ident(a.attname) FROM unnest(coalesce(con.confkey, '{}'::int2[])) WITH ORDINALITY AS k(n, i)
		      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)
		FROM pg_constraint con
		WHERE con.contype IN ('p', 'u', 'f') AND con.conrelid = ANY($1::oid[]) AND con.conparentid = 0
		ORDER BY con.conrelid, con.conname`, c.tenantOIDs())
	if err != nil {
		return err
	}
	c.cons, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (constraint, error) {
		var k constraint
		err := row.Scan(&k.rel, &k.q, &k.typ, &k.cols, &k.frel, &k.fcols, &k.def, &k.colQ, &k.fcolQ)
		return k, err
	})
	return err
}

func (c *catalog) loadIndexes(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT i.indrelid, quote_ident(n.nspname) || '.' || quote_ident(ic.relname),
		i.indisunique, i.indisprimary, i.indisvalid,
		EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')),
		ARRAY(SELECT k.n FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(n, o) WHERE k.o <= i.indnkeyatts ORDER BY k.o),
		pg_get_indexdef(i.indexrelid), ic.relispartition
		FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
		WHERE i.indrelid = ANY($1::oid[])
		ORDER BY 2`, c.tenantOIDs())
	if err != nil {
		return err
	}
	c.idx, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (index, error) {
		var x index
		err := row.Scan(&x.rel, &x.q, &x.unique, &x.primary, &x.valid, &x.backing, &x.keys, &x.def, &x.inherited)
		return x, err
	})
	return err
}

func (c *catalog) loadDeps(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT DISTINCT r.ev_class, d.refobjid
		FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
		WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v, t uint32
		if err := rows.Scan(&v, &t); err != nil {
			return err
		}
		c.deps[v] = append(c.deps[v], t)
	}
	return rows.Err()
}

func (c *catalog) loadExtensions(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT e.extname, quote_ident(e.extname), n.nspname, quote_ident(n.nspname),
		e.extversion, coalesce(a.default_version, ''), e.extrelocatable
		FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		LEFT JOIN pg_available_extensions a ON a.name = e.extname
		ORDER BY 1`)
	if err != nil {
		return err
	}
	c.exts, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (extension, error) {
		var e extension
		err := row.Scan(&e.name, &e.q, &e.schema, &e.schemaQ, &e.version, &e.defaultVersion, &e.relocatable)
		return e, err
	})
	if err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `SELECT quote_ident(srvname) FROM pg_user_mappings WHERE umuser = 0 ORDER BY 1`)
	if err != nil {
		return err
	}
	c.publicUM, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return err
}

func (c *catalog) loadSchemas(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT n.nspname, quote_ident(n.nspname),
		`+inReach(`has_schema_privilege(r.oid, n.oid, 'CREATE')`)+`,
		`+granteesSQL("n.nspacl", "n", "n.nspowner")+`
		FROM pg_namespace n WHERE `+nonSystem+` ORDER BY 1`, c.reach)
	if err != nil {
		return err
	}
	c.schemas, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (schema, error) {
		var s schema
		var grants []string
		err := row.Scan(&s.name, &s.q, &s.appCreate, &grants)
		s.grantees = splitGrantees(grants)["CREATE"]
		return s, err
	})
	return err
}

func (c *catalog) loadDatabase(ctx context.Context, tx pgx.Tx) error {
	var grants []string
	err := tx.QueryRow(ctx, `SELECT `+inReach(`has_database_privilege(r.oid, d.oid, 'TEMPORARY')`)+`,
		`+inReach(`has_database_privilege(r.oid, d.oid, 'CREATE')`)+`,
		`+granteesSQL("d.datacl", "d", "d.datdba")+`
		FROM pg_database d WHERE d.datname = current_database()`, c.reach).Scan(&c.dbTemp, &c.dbCreate, &grants)
	c.dbGrants = splitGrantees(grants)
	return err
}

// loadSessionPrivs reads who may use the catalog views and functions that
// show other sessions' queries and locks, or end them, and the advisory
// locks through which sessions can signal each other (L20). The functions
// are the ones behind the views: revoking a view alone hides nothing.
func (c *catalog) loadSessionPrivs(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT 'view', 'pg_catalog.' || quote_ident(k.relname), 'SELECT',
		`+inReach(`has_table_privilege(r.oid, k.oid, 'SELECT')`)+`,
		`+granteesSQL("k.relacl", "r", "k.relowner")+`
		FROM pg_class k WHERE k.relnamespace = 'pg_catalog'::regnamespace AND k.relname IN ('pg_stat_activity', 'pg_locks')
		UNION ALL
		SELECT 'function', p.oid::regprocedure::text, 'EXECUTE',
		`+inReach(`has_function_privilege(r.oid, p.oid, 'EXECUTE')`)+`,
		`+granteesSQL("p.proacl", "f", "p.proowner")+`
		FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace
		  AND p.proname IN ('pg_stat_get_activity', 'pg_lock_status', 'pg_cancel_backend', 'pg_terminate_backend',
		                    'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
		                    'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared')
		ORDER BY 1 DESC, 2`, c.reach)
	if err != nil {
		return err
	}
	c.sessions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessionPriv, error) {
		var s sessionPriv
		var grants []string
		err := row.Scan(&s.kind, &s.name, &s.priv, &s.held, &grants)
		s.grantees = splitGrantees(grants)[s.priv]
		if !strings.HasPrefix(s.name, "pg_catalog.") {
			s.name = "pg_catalog." + s.name // regprocedure leaves pg_catalog out
		}
		return s, err
	})
	return err
}

// loadTempLimits finds the app login roles whose sessions in this
// database start with temp_file_limit = -1 (L22): the most specific of
// the role's setting for this database, for every database, the
// database's setting, and the server's; and those without a connection
// limit (L23).
func (c *catalog) loadTempLimits(ctx context.Context, tx pgx.Tx) error {
	var apps []uint32
	for _, r := range c.apps {
		if r.login {
			apps = append(apps, r.oid)
		}
	}
	rows, err := tx.Query(ctx, `WITH d AS (SELECT oid FROM pg_database WHERE datname = current_database()),
		set AS (SELECT s.setrole, s.setdatabase, substr(v, length('temp_file_limit=') + 1) AS val
		          FROM pg_db_role_setting s, unnest(s.setconfig) v WHERE v LIKE 'temp\_file\_limit=%')
		SELECT r.oid FROM pg_roles r
		 WHERE r.oid = ANY($1::oid[])
		   AND coalesce((SELECT val FROM set WHERE setrole = r.oid AND setdatabase = (SELECT oid FROM d)),
		                (SELECT val FROM set WHERE setrole = r.oid AND setdatabase = 0),
		                (SELECT val FROM set WHERE setrole = 0 AND setdatabase = (SELECT oid FROM d)),
		                current_setting('temp_file_limit')) = '-1'
		 ORDER BY r.rolname`, apps)
	if err != nil {
		return err
	}
	free, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `SELECT oid FROM pg_roles WHERE oid = ANY($1::oid[]) AND rolconnlimit < 0`, apps)
	if err != nil {
		return err
	}
	unlimited, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return err
	}
	for _, r := range c.apps {
		if slices.Contains(free, r.oid) {
			c.tempFree = append(c.tempFree, r)
		}
		if slices.Contains(unlimited, r.oid) {
			c.connFree = append(c.connFree, r)
		}
	}
	return nil
}

// loadEscalations finds app roles that are, or can SET ROLE to, a role
// above row security, and other login roles that are.
func (c *catalog) loadEscalations(ctx context.Context, tx pgx.Tx) error {
	owners := []uint32{}
	seen := map[uint32]bool{}
	for _, r := range c.rels {
		if r.tenant() && !seen[r.owner] {
			seen[r.owner] = true
			owners = append(owners, r.owner)
		}
	}
	names := c.appNames()
	for _, a := range c.apps {
		if a.super || a.bypass || a.repl || seen[a.oid] {
			c.escalation = append(c.escalation, escalation{app: a, target: a, owns: seen[a.oid]})
		}
	}
	rows, err := tx.Query(ctx, `SELECT a.oid, a.rolname, quote_ident(a.rolname), a.rolsuper, a.rolbypassrls, a.rolreplication, a.rolcanlogin,
		t.oid, t.rolname, quote_ident(t.rolname), t.rolsuper, t.rolbypassrls, t.rolreplication, t.rolcanlogin,
		ARRAY(SELECT quote_ident(p.rolname) FROM pg_auth_members m JOIN pg_roles p ON p.oid = m.roleid
		      WHERE m.member = a.oid AND (p.oid = t.oid OR `+c.actsAs("p.oid", "t.oid")+`) ORDER BY 1)
		FROM pg_roles a JOIN pg_roles t ON t.oid <> a.oid AND `+c.actsAs("a.oid", "t.oid")+`
		WHERE a.rolname = ANY($1) AND NOT a.rolsuper
		  AND (t.rolsuper OR t.rolbypassrls OR t.rolreplication OR t.oid = ANY($2::oid[]))
		ORDER BY a.rolname, t.rolname`, names, owners)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var e escalation
		if err := rows.Scan(&e.app.oid, &e.app.name, &e.app.q, &e.app.super, &e.app.bypass, &e.app.repl, &e.app.login,
			&e.target.oid, &e.target.name, &e.target.q, &e.target.super, &e.target.bypass, &e.target.repl, &e.target.login, &e.via); err != nil {
			return err
		}
		e.owns = seen[e.target.oid]
		c.escalation = append(c.escalation, e)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.Query(ctx, `SELECT oid, rolname, quote_ident(rolname), rolsuper, rolbypassrls, rolreplication, rolcanlogin
		FROM pg_roles WHERE rolcanlogin AND NOT rolname = ANY($1)
		  AND (rolsuper OR rolbypassrls OR rolreplication OR oid = ANY($2::oid[]))
		ORDER BY rolname`, names, owners)
	if err != nil {
		return err
	}
	c.otherLogin, err = pgx.CollectRows(rows, scanRole)
	return err
}

// ownedTenantTables returns the tenant tables role owns.
func (c *catalog) ownedTenantTables(oid uint32) []*rel {
	var out []*rel
	for _, r := range c.rels {
		if r.tenant() && r.owner == oid {
			out = append(out, r)
		}
	}
	return out
}
