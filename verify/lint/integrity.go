package lint

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/maintsight"
)

// funcPrint is what L19 compares of one of bulkhead's own context
// functions: the body, and every attribute that changes what it decides.
type funcPrint struct {
	Definer  bool   // SECURITY DEFINER
	Config   string // proconfig, joined with "; " (the pinned search_path)
	Owner    string
	Volatile string // provolatile: i, s or v
	BodyMD5  string // md5 of prosrc
}

// nativeContext is the native verifier (pgext/bulkhead_verifier.c) as
// `bulkhead verifier native` installs it in place of bulkhead.context():
// a C function whose prosrc is its symbol. Its checks are the PL/pgSQL
// verifier's, which bulkhead's tests hold it to; which library it loads
// only a superuser can choose.
var nativeContext = funcPrint{Definer: true, Owner: "bulkhead_owner", Volatile: "s", BodyMD5: md5Hex("bulkhead_context")}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// matches reports whether got is what bulkhead made of the function name:
// its migrations' definition, or for bulkhead.context() the native
// verifier.
func (in integrity) matches(name string, got funcPrint) bool {
	if got == fingerprints[name] {
		return true
	}
	return name == "bulkhead.context()" && in.langs[name] == "c" && got == nativeContext
}

// integrity is what the database holds of bulkhead's own functions.
type integrity struct {
	version int64 // the latest applied migration; -1 when unreadable
	funcs   map[string]funcPrint
	langs   map[string]string // each function's language
	// maintBlind lists the tenant tables (pool and silos) whose rows
	// bulkhead_maint cannot all see (L21).
	maintBlind []string
}

// loadIntegrity reads bulkhead's own functions and its migration version.
func (c *catalog) loadIntegrity(ctx context.Context, tx pgx.Tx) error {
	if !c.bulkhead {
		return nil
	}
	c.integrity.version = -1
	var readable bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('bulkhead_control.schema_migrations') IS NOT NULL
		AND has_table_privilege(to_regclass('bulkhead_control.schema_migrations'), 'SELECT')`).Scan(&readable); err != nil {
		return err
	}
	if readable {
		// goose appends a row per change: a version's latest row says
		// whether it is applied (as bulkhead's own Setup reads it).
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM (
			SELECT DISTINCT ON (version_id) version_id, is_applied FROM bulkhead_control.schema_migrations
			 ORDER BY version_id, id DESC) v WHERE is_applied`).Scan(&c.integrity.version); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, `SELECT p.oid::regprocedure::text, p.prosecdef, coalesce(array_to_string(p.proconfig, '; '), ''),
			pg_get_userbyid(p.proowner), p.provolatile::text, md5(replace(p.prosrc, E'\r', '')),
			(SELECT l.lanname FROM pg_language l WHERE l.oid = p.prolang)
		FROM pg_proc p WHERE p.oid = ANY (SELECT to_regprocedure(n) FROM unnest($1::text[]) n)`, fingerprintNames())
	if err != nil {
		return err
	}
	defer rows.Close()
	c.integrity.funcs = map[string]funcPrint{}
	c.integrity.langs = map[string]string{}
	for rows.Next() {
		var name, lang string
		var f funcPrint
		if err := rows.Scan(&name, &f.Definer, &f.Config, &f.Owner, &f.Volatile, &f.BodyMD5, &lang); err != nil {
			return err
		}
		c.integrity.funcs[name] = f
		c.integrity.langs[name] = lang
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	blind, err := tx.Query(ctx, maintsight.BlindTablesSQL, nil)
	if err != nil {
		return err
	}
	c.integrity.maintBlind, err = pgx.CollectRows(blind, pgx.RowTo[string])
	return err
}

// checkMaintSight reports the tenant tables bulkhead_maint cannot see every
// row of (L21): offboarding and moves delete, copy and count a tenant's
// rows as that role, and refuse (maint_cannot_see_rows) rather than find
// nothing and report success.
func (c *catalog) checkMaintSight() []Finding {
	if !c.bulkhead || len(c.integrity.maintBlind) == 0 {
		return nil
	}
	var fix strings.Builder
	fix.WriteString("-- As the tables' owner (bulkhead migrate makes these), and drop any\n-- restrictive policy that applies to PUBLIC or bulkhead_maint:\n")
	for _, t := range c.integrity.maintBlind {
		fmt.Fprintf(&fix, "CREATE POLICY maint_all ON %s AS PERMISSIVE FOR ALL TO bulkhead_maint USING (true) WITH CHECK (true);\n", t)
	}
	return []Finding{{ID: "L21", Object: Object{Kind: "role", Name: "bulkhead_maint"},
		Message: fmt.Sprintf("bulkhead_maint does not bypass row security and cannot see every row of %s: offboarding and tenant moves, which work as that role, are refused until it can.", join(c.integrity.maintBlind)),
		Fix:     strings.TrimSuffix(fix.String(), "\n")}}
}

// checkIntegrity reports bulkhead's own context functions when they are
// not what bulkhead's migrations made them (L19).
func (c *catalog) checkIntegrity() []Finding {
	if !c.bulkhead {
		return nil
	}
	in := c.integrity
	switch {
	case in.version < 0:
		return []Finding{{ID: "L19", Severity: Info, Object: migrations,
			Message: "The migration version is not readable by this role, so bulkhead's own functions were not compared with their definitions.",
			Fix:     "-- Run lint as the database owner or a superuser."}}
	case in.version < fingerprintVersion:
		return []Finding{{ID: "L19", Severity: Info, Object: migrations,
			Message: fmt.Sprintf("bulkhead's schema is at migration %d, older than the %d this lint knows, so its own functions were not compared with their definitions.", in.version, fingerprintVersion),
			Fix:     "-- Bring the database up to date:\n-- bulkhead migrate"}}
	case in.version > fingerprintVersion:
		return []Finding{{ID: "L19", Severity: Info, Object: migrations,
			Message: fmt.Sprintf("bulkhead's schema is at migration %d, newer than the %d this lint knows, so its own functions were not compared with their definitions.", in.version, fingerprintVersion),
			Fix:     "-- Lint with the bulkhead release that migrated the database."}}
	}
	var out []Finding
	for _, name := range fingerprintNames() {
		want := fingerprints[name]
		got, ok := in.funcs[name]
		if !ok {
			out = append(out, Finding{ID: "L19", Object: Object{Kind: "function", Name: name},
				Message: fmt.Sprintf("%s is missing: bulkhead's row policies and audit depend on it.", name),
				Fix:     restoreFix})
			continue
		}
		if in.matches(name, got) {
			continue
		}
		var diffs []string
		if got.BodyMD5 != want.BodyMD5 {
			diffs = append(diffs, "its body")
		}
		if got.Definer != want.Definer {
			diffs = append(diffs, fmt.Sprintf("SECURITY DEFINER is %t, not %t", got.Definer, want.Definer))
		}
		if got.Config != want.Config {
			diffs = append(diffs, fmt.Sprintf("its settings are %q, not %q", got.Config, want.Config))
		}
		if got.Owner != want.Owner {
			diffs = append(diffs, fmt.Sprintf("its owner is %s, not %s", got.Owner, want.Owner))
		}
		if got.Volatile != want.Volatile {
			diffs = append(diffs, fmt.Sprintf("its volatility is %s, not %s", got.Volatile, want.Volatile))
		}
		if len(diffs) > 0 {
			out = append(out, Finding{ID: "L19", Object: Object{Kind: "function", Name: name},
				Message: fmt.Sprintf("%s differs from what bulkhead's migration %d made (%s). A changed context function can accept forged or expired contexts, or another tenant's.", name, fingerprintVersion, strings.Join(diffs, "; ")),
				Fix:     restoreFix})
		}
	}
	return out
}

// fingerprintNames lists the functions L19 guards, sorted.
func fingerprintNames() []string {
	names := make([]string, 0, len(fingerprints))
	for n := range fingerprints {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// migrations is the object L19 names when it could not compare.
var migrations = Object{Kind: "table", Name: "bulkhead_control.schema_migrations"}

const restoreFix = "-- Find out who changed it (only its owner or a superuser can), restore\n" +
	"-- bulkhead's definition from the migration that made it (postgres/migrations),\n" +
	"-- run `bulkhead gameday`, and rotate the context keys if forged contexts may have been accepted."
