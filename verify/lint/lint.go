package lint

import (
	"context"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// Severity is how urgent a finding is. The order is Info < Warn < Error.
type Severity string

// The severities.
const (
	Info  Severity = "info"  // worth knowing; often by design
	Warn  Severity = "warn"  // weakens isolation or performance; fix it
	Error Severity = "error" // one tenant can, or is one step from, reaching another's rows
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 3
	case Warn:
		return 2
	case Info:
		return 1
	}
	return 0
}

// AtLeast reports whether s is as severe as t or more.
func (s Severity) AtLeast(t Severity) bool { return s.rank() >= t.rank() }

// ParseSeverity parses "error", "warn" or "info".
func ParseSeverity(s string) (Severity, error) {
	switch v := Severity(strings.ToLower(s)); v {
	case Error, Warn, Info:
		return v, nil
	}
	return "", fault.Errorf(fault.Invalid, "invalid_parameter", "Unknown severity %q: use error, warn or info.", s)
}

// Category says what a finding is about.
type Category string

// The categories.
const (
	Security    Category = "security"
	Performance Category = "performance"
)

// Object names the database object a finding is about.
type Object struct {
	// Kind is one of table, partitioned table, view, materialized view,
	// foreign table, sequence, policy, function, role, schema, database,
	// extension or user mapping.
	Kind string `json:"kind"`
	// Name is the object's fully qualified name as SQL writes it, quoted
	// where needed: app.projects, bulkhead.context(), a policy as
	// `tenant_select ON app.projects`.
	Name string `json:"name"`
}

func (o Object) String() string { return o.Kind + " " + o.Name }

// Finding is one problem on one object.
type Finding struct {
	ID       string   `json:"id"`   // stable: L01…L19 for tenant lints, S00nn for splinter-derived ones
	Name     string   `json:"name"` // the rule's name, e.g. tenant_table_rls_disabled
	Severity Severity `json:"severity"`
	Category Category `json:"category"`
	Object   Object   `json:"object"`
	Message  string   `json:"message"` // what is wrong with this object
	Why      string   `json:"why"`     // why it matters
	Fix      string   `json:"fix"`     // SQL that fixes it; lines starting with -- are advice
}

// Options parameterise a run. The zero value lints with the defaults.
type Options struct {
	// TenantColumn names the column that says which tenant owns a row.
	// Default "tenant_id". A table with this column is a tenant table.
	TenantColumn string
	// AppRoles are the login roles that serve tenant traffic. Default: in
	// a bulkhead database, every login role that is a member of
	// bulkhead_app; elsewhere, every login role that may connect to the
	// database and is neither a superuser nor the owner of a tenant table.
	AppRoles []string
	// Schemas are the exposed schemas the splinter-derived checks look
	// at. Default: every schema except pg_catalog, information_schema,
	// pg_toast and temporary schemas. Tenant lints look at every schema.
	Schemas []string
	// TenantExpr is the verified-tenant expression used in suggested
	// fixes. Default: (SELECT bulkhead.tenant_id()) in a bulkhead
	// database, else NULL with a comment to replace it (a fix that fails
	// closed).
	TenantExpr string
}

// Report is the result of a run.
type Report struct {
	Database      string    `json:"database"`
	ServerVersion string    `json:"server_version"`
	Bulkhead      bool      `json:"bulkhead"` // the database was set up by bulkhead
	TenantColumn  string    `json:"tenant_column"`
	AppRoles      []string  `json:"app_roles"`
	Schemas       []string  `json:"schemas"`
	Findings      []Finding `json:"findings"`
}

// Count returns how many findings have severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Fails reports whether a finding at level or above exists.
func (r *Report) Fails(level Severity) bool {
	for _, f := range r.Findings {
		if f.Severity.AtLeast(level) {
			return true
		}
	}
	return false
}

// DB is what Run needs from a connection or a pool: *pgx.Conn and
// *pgxpool.Pool both satisfy it.
type DB interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Run lints the database behind db. It reads the catalogs in one
// read-only, repeatable-read transaction and changes nothing. The role it
// runs as should be able to read every schema's catalog entries (a
// superuser, or the owner of the objects); it needs no privilege on the
// data. Run returns an error only when the database cannot be read or an
// option is invalid (Kind Invalid, code invalid_role or invalid_parameter).
func Run(ctx context.Context, db DB, opt Options) (rep *Report, err error) {
	defer fault.Wrap(&err, "lint.Run")
	if opt.TenantColumn == "" {
		opt.TenantColumn = "tenant_id"
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Deparse with every name outside pg_catalog schema-qualified, and
	// never wait on a lock held by someone else's DDL for long.
	for _, s := range []string{
		`SET LOCAL search_path = pg_catalog`,
		`SET LOCAL lock_timeout = '5s'`,
		`SET LOCAL statement_timeout = '120s'`,
	} {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, err
		}
	}
	c, err := load(ctx, tx, opt)
	if err != nil {
		return nil, err
	}
	rep = &Report{
		Database:      c.db,
		ServerVersion: c.versionText,
		Bulkhead:      c.bulkhead,
		TenantColumn:  opt.TenantColumn,
		AppRoles:      c.appNames(),
		Schemas:       c.exposedNames,
		Findings:      c.check(),
	}
	return rep, nil
}

// check runs every check over the loaded catalog.
func (c *catalog) check() []Finding {
	var all []Finding
	for _, chk := range checks {
		all = append(all, chk(c)...)
	}
	return finish(all)
}

// finish fills rule fields, drops findings superseded by a more specific
// one on the same object, and sorts by severity, id and object.
func finish(all []Finding) []Finding {
	type key struct{ id, obj string }
	have := map[key]Severity{}
	for i := range all {
		f := &all[i]
		r := ruleByID[f.ID]
		if f.Name == "" {
			f.Name = r.Name
		}
		if f.Severity == "" {
			f.Severity = r.Severity
		}
		if f.Category == "" {
			f.Category = r.Category
		}
		if f.Why == "" {
			f.Why = r.Why
		}
		k := key{f.ID, f.Object.String()}
		if f.Severity.rank() > have[k].rank() {
			have[k] = f.Severity
		}
	}
	var out []Finding
	seen := map[string]bool{}
	for _, f := range all {
		superseded := false
		for _, by := range supersededBy[f.ID] {
			if s, ok := have[key{by, f.Object.String()}]; ok && s.AtLeast(f.Severity) {
				superseded = true
			}
		}
		dup := f.ID + "\x00" + f.Object.String() + "\x00" + f.Message
		if superseded || seen[dup] {
			continue
		}
		seen[dup] = true
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Severity != b.Severity {
			return a.Severity.rank() > b.Severity.rank()
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Object.Name != b.Object.Name {
			return a.Object.Name < b.Object.Name
		}
		return a.Message < b.Message
	})
	return out
}
