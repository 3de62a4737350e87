package lint

// Rule describes one check. Its ID never changes meaning.
type Rule struct {
	ID       string
	Name     string
	Title    string   // one line
	Severity Severity // the usual severity; a finding may be lower or higher (see Why)
	Category Category
	Why      string // why it matters, one or two sentences
	Levels   string // when a finding is more or less severe than Severity, and other limits
	Fix      string // how to fix it, in prose (each finding carries its own SQL)
	// Splinter is the splinter lint this check derives from or replaces,
	// if any ("0013").
	Splinter string
	// Supersedes lists checks whose finding on the same object is dropped
	// when this one fires at the same severity or higher: the tenant lint
	// says the same thing with more precision.
	Supersedes []string
}

var rules = []Rule{
	// Splinter-derived checks, generalised from Supabase's anon and
	// authenticated to the app roles, and from pgrst.db_schemas to the
	// exposed schemas.
	{ID: "S0003", Name: "auth_rls_initplan", Splinter: "0003", Severity: Warn, Category: Performance,
		Title:  "Policy calls a context function once per row",
		Why:    "A stable function such as auth.jwt() or current_setting() outside a sub-select is evaluated for every row the policy filters; wrapped in (SELECT …) it runs once per query.",
		Levels: "A warning; on tenant tables L10 reports it as an error. A sub-select that refers to the row runs per row too, and calls with row-dependent arguments cannot be hoisted and are not reported.",
		Fix:    "Wrap each call in a sub-select: (SELECT auth.jwt()) ->> 'sub'. L10 reports the same on tenant tables."},
	{ID: "S0006", Name: "multiple_permissive_policies", Splinter: "0006", Severity: Warn, Category: Performance,
		Title:  "Several permissive policies for one role and command",
		Why:    "Permissive policies are ORed: every one is evaluated for every row, and each widens what the role sees. One policy per role and command is faster and easier to audit.",
		Levels: "Policies count for each role the app roles can act as, and FOR ALL counts for every command.",
		Fix:    "Merge them into one permissive policy, or turn the ones that should restrict into AS RESTRICTIVE policies."},
	{ID: "S0007", Name: "policy_exists_rls_disabled", Splinter: "0007", Severity: Error, Category: Security,
		Title: "Policies exist but row security is disabled",
		Why:   "Policies do nothing until row security is enabled on the table: every row is visible to every role with a grant.",
		Fix:   "ALTER TABLE … ENABLE ROW LEVEL SECURITY (and FORCE it)."},
	{ID: "S0008", Name: "rls_enabled_no_policy", Splinter: "0008", Severity: Info, Category: Security,
		Title: "Row security enabled without any policy",
		Why:   "With no policy, row security denies every row to every role it applies to. That is safe, and may be intended (a table reached only through SECURITY DEFINER functions).",
		Fix:   "Nothing, if deny-all is intended; otherwise create the policies the table needs."},
	{ID: "S0010", Name: "security_definer_view", Splinter: "0010", Severity: Warn, Category: Security,
		Title:  "View without security_invoker readable by app roles",
		Why:    "A view reads its tables with its owner's privileges and row security, not the caller's: over tables the owner may read freely, it hands them to every role that can select from the view.",
		Levels: "A warning; views over tenant tables are L07's errors.",
		Fix:    "ALTER VIEW … SET (security_invoker = true) (PostgreSQL 15 and later), or revoke SELECT from the app roles. L07 reports views over tenant tables as errors."},
	{ID: "S0011", Name: "function_search_path_mutable", Splinter: "0011", Severity: Warn, Category: Security,
		Title:  "Function without a pinned search_path",
		Why:    "A function without SET search_path resolves unqualified names through the caller's search_path, so a caller who can create objects can substitute its own tables, functions or operators.",
		Levels: "A warning when app roles can create objects somewhere (L13) or the function is SECURITY DEFINER; information otherwise.",
		Fix:    "ALTER FUNCTION … SET search_path = pg_catalog, pg_temp, and qualify every name in the body."},
	{ID: "S0013", Name: "rls_disabled_in_exposed_schema", Splinter: "0013", Severity: Warn, Category: Security,
		Title:  "Table without row security readable by app roles",
		Why:    "Without row security every role with a grant sees and changes every row; a table without the tenant column is shared by all tenants.",
		Levels: "A warning when app roles can only read it, an error when they can write to it. Tables with the tenant column are reported by L01 instead.",
		Fix:    "Enable row security with a read-only policy for shared data, or revoke the write privileges; if the table holds per-tenant data, add the tenant column."},
	{ID: "S0014", Name: "extension_in_public", Splinter: "0014", Severity: Warn, Category: Security,
		Title: "Extension installed in the public schema",
		Why:   "Objects in public are on almost every search_path, so an extension's functions and operators there can be shadowed or can shadow others, and public is often writable.",
		Fix:   "Move the extension to its own schema: ALTER EXTENSION … SET SCHEMA extensions."},
	{ID: "S0015", Name: "rls_references_user_metadata", Splinter: "0015", Severity: Error, Category: Security,
		Title: "Policy reads a user-editable claim",
		Why:   "user_metadata (raw_user_meta_data) is written by the end user, so a policy that reads a tenant or role from it lets any user move themselves into another tenant.",
		Fix:   "Read app_metadata, which only the server writes, or a membership table only a trusted path fills. L05 reports this on tenant tables."},
	{ID: "S0016", Name: "materialized_view_in_api", Splinter: "0016", Severity: Warn, Category: Security,
		Title: "Materialized view readable by app roles",
		Why:   "A materialized view cannot have row security: every role that can select from it sees every row it holds.",
		Fix:   "Revoke SELECT from the app roles; serve it through a security_invoker view or a function that filters by tenant. L07 reports ones built on tenant tables as errors."},
	{ID: "S0017", Name: "foreign_table_in_api", Splinter: "0017", Severity: Warn, Category: Security,
		Title: "Foreign table readable by app roles",
		Why:   "Foreign tables have no row security: the remote side answers with whatever its user mapping may read.",
		Fix:   "Revoke SELECT from the app roles, or move the foreign table to a schema they cannot use."},
	{ID: "S0022", Name: "extension_versions_outdated", Splinter: "0022", Severity: Warn, Category: Security,
		Title: "Extension older than the installed package",
		Why:   "The extension's SQL objects are at an older version than the server's package provides, and may lack security fixes made since.",
		Fix:   "ALTER EXTENSION … UPDATE."},
	{ID: "S0023", Name: "sensitive_columns_exposed", Splinter: "0023", Severity: Error, Category: Security,
		Title: "Sensitive columns in a table without row security",
		Why:   "Columns named like passwords, tokens, keys or identity numbers are readable in every row by every app role, for every tenant.",
		Fix:   "Enable row security with tenant policies, or revoke SELECT on the table (or on those columns) from the app roles."},
	{ID: "S0024", Name: "rls_policy_always_true", Splinter: "0024", Severity: Warn, Category: Security,
		Title:  "Permissive policy that is always true",
		Why:    "USING (true) on UPDATE, DELETE or ALL, or WITH CHECK (true), lets app roles change or write any row.",
		Levels: "A policy with no expression is not reported: PostgreSQL ignores it, it grants nothing. On a tenant table a restrictive tenant guard makes true harmless; without one, L03 and L04 report it as an error.",
		Fix:    "Replace true with the condition the policy means, or drop the policy."},
	{ID: "S0028", Name: "security_definer_function_executable", Splinter: "0028, 0029", Severity: Warn, Category: Security,
		Title:  "SECURITY DEFINER function executable by app roles",
		Why:    "A SECURITY DEFINER function runs with its owner's rights, and PostgreSQL grants EXECUTE on new functions to PUBLIC, so app roles can call it.",
		Levels: "A warning when the owner is a superuser or has BYPASSRLS (the function is above row security), information otherwise (review what it reads). L08 reports the dangerous ones as errors.",
		Fix:    "REVOKE EXECUTE … FROM PUBLIC and grant it only to the roles that need it; prefer SECURITY INVOKER."},

	// Tenant lints.
	{ID: "L01", Name: "tenant_table_rls_disabled", Severity: Error, Category: Security, Supersedes: []string{"S0007", "S0013"},
		Title:  "Tenant table without row security",
		Why:    "A table with the tenant column and row security off shows every tenant's rows to every role with a grant.",
		Levels: "An error when app roles hold a privilege on the table, information when they hold none (it is one GRANT away). Partitions and children of a table with row security are L14's.",
		Fix:    "ALTER TABLE … ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY, and a tenant policy."},
	{ID: "L02", Name: "tenant_table_rls_not_forced", Severity: Warn, Category: Security,
		Title: "Row security on a tenant table is not forced",
		Why:   "The table's owner bypasses row security unless it is FORCEd, so any request path that runs as the owner sees every tenant.",
		Fix:   "ALTER TABLE … FORCE ROW LEVEL SECURITY, and never serve requests as the owner."},
	{ID: "L03", Name: "write_policy_ignores_tenant", Severity: Error, Category: Security, Supersedes: []string{"S0024"},
		Title:  "Write policy that does not pin the tenant",
		Why:    "When the check PostgreSQL applies to new and changed rows (WITH CHECK, or USING when there is none) does not pin the tenant column, and no restrictive policy does, a tenant can insert rows into another tenant or move its rows there.",
		Levels: "A policy with no expression at all is not reported: it grants nothing. An OR with a branch that ignores the tenant column does not pin it. A restrictive FOR ALL policy with USING and no WITH CHECK guards INSERT too: PostgreSQL checks new rows with its USING.",
		Fix:    "Pin the tenant in WITH CHECK, or add a restrictive tenant guard: CREATE POLICY tenant_guard … AS RESTRICTIVE FOR ALL USING (tenant_id = …) WITH CHECK (tenant_id = …)."},
	{ID: "L04", Name: "permissive_policy_ignores_tenant", Severity: Error, Category: Security, Supersedes: []string{"S0024"},
		Title:  "Permissive policy that ignores the tenant column",
		Why:    "Permissive policies are ORed: one whose USING does not pin the tenant column opens the rows it matches to every tenant, whatever the other policies say, unless a restrictive policy pins the tenant.",
		Levels: "Checked for SELECT, UPDATE and DELETE policies (their USING) that apply to app roles; a restrictive policy that pins the tenant for the same command and roles is a guard. An OR with a branch that ignores the tenant column does not pin it.",
		Fix:    "Add a restrictive tenant guard (AS RESTRICTIVE FOR ALL USING (tenant_id = …)), or add the tenant condition to the policy."},
	{ID: "L05", Name: "policy_trusts_forgeable_context", Severity: Error, Category: Security, Supersedes: []string{"S0015"},
		Title:  "Policy trusts a context the caller can forge",
		Why:    "Any SQL the app role runs can set current_setting() and request.jwt.claims with set_config, end users write user_metadata, and COALESCE(…, tenant_id), \"context IS NULL OR …\" or CASE WHEN context IS NULL THEN true let every row through when the context is missing: each lets one tenant read as another.",
		Levels: "An error for a direct current_setting(), a user-editable claim, a fail-open default, or a call to a function that reads a setting without verifying it: a SECURITY INVOKER wrapper is as forgeable as current_setting() itself, and so is a SECURITY DEFINER one unless it also reads a relation the app roles cannot read (where a key to verify a signature against would live). Calls are followed into the functions they call. bulkhead.context(), bulkhead.tenant_id() and bulkhead.tenant_id_for() are trusted while they are as bulkhead's migrations made them (L19), and bulkhead's auth.jwt() returns what bulkhead.context() verified. Function bodies are read as written, or as PostgreSQL deparses a SQL-standard body (RETURN …, BEGIN ATOMIC … END).",
		Fix:    "Compare the tenant column with a verified tenant: (SELECT bulkhead.tenant_id()), or a SECURITY DEFINER function that checks a signature the app role cannot make."},
	{ID: "L06", Name: "app_role_bypasses_rls", Severity: Error, Category: Security,
		Title:  "App role that is, or can become, a role above row security",
		Why:    "Superusers and BYPASSRLS roles ignore row security, owners ignore it on their tables unless FORCEd, and REPLICATION reads tables without it; SET ROLE needs only membership, so SQL run as an app role can become any role it is a member of.",
		Levels: "An error for an app role. Login roles that are not app roles but are above row security are listed as information, except with the default app roles (no --app-roles): a login role (not a superuser) that owns tenant tables whose row security is off or not forced is an error, since an application that logs in as the role that created its tables sees every tenant's rows and the default app roles leave that role out; and finding no app role at all is an error on the database, since every check of what app roles reach then looked at nobody.",
		Fix:    "ALTER ROLE … NOSUPERUSER NOBYPASSRLS NOREPLICATION, give tables a NOLOGIN owner, and REVOKE the membership that leads to the privileged role."},
	{ID: "L07", Name: "view_bypasses_tenant_rls", Severity: Error, Category: Security, Supersedes: []string{"S0010", "S0016"},
		Title:  "View or materialized view over tenant tables without security_invoker",
		Why:    "A view without security_invoker reads its tables as its owner (who, without FORCE, bypasses row security), and a materialized view has no row security at all: app roles that can select from it see every tenant's rows.",
		Levels: "An error; a warning for a security_barrier view that filters by a context function (the rare definer view done carefully). Views are followed through other views.",
		Fix:    "ALTER VIEW … SET (security_invoker = true); revoke SELECT on materialized views from the app roles."},
	{ID: "L08", Name: "security_definer_function_risk", Severity: Error, Category: Security, Supersedes: []string{"S0011", "S0028"},
		Title:  "SECURITY DEFINER function app roles can call, with a mutable search_path or over tenant tables",
		Why:    "A definer function runs with its owner's rights: without a pinned search_path (or with pg_temp searched first) the caller can substitute the objects it uses, and a body that names tenant tables reads them above the caller's row security.",
		Levels: "A mutable search_path is an error when app roles can create objects somewhere (L13) and a warning otherwise; pg_temp first is an error when app roles have TEMP; naming tenant tables is an error when the owner bypasses row security on them (superuser, BYPASSRLS, owner without FORCE, or no row security) and a warning otherwise.",
		Fix:    "ALTER FUNCTION … SET search_path = pg_catalog, pg_temp; filter by the verified tenant inside the body or make it SECURITY INVOKER; revoke EXECUTE from PUBLIC."},
	{ID: "L09", Name: "key_without_tenant_column", Severity: Warn, Category: Security,
		Title:  "Primary key, unique key or foreign key without the tenant column",
		Why:    "Constraint checks ignore row security: a unique key without the tenant column tells a tenant whether another tenant has a value (an existence oracle), and a foreign key without it lets a row point at another tenant's row.",
		Levels: "Only tables app roles can insert into or update are checked; a partition's own unique indexes and keys (ones its partitioned table does not have) are checked when app roles can insert into or update the root of its partition tree, which routes rows to it. A foreign key is checked only when it references another tenant table.",
		Fix:    "Include the tenant column: PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email), FOREIGN KEY (tenant_id, x_id) REFERENCES x (tenant_id, id)."},
	{ID: "L10", Name: "per_row_context_call", Severity: Error, Category: Performance, Supersedes: []string{"S0003"},
		Title:  "Tenant policy evaluates a context function once per row",
		Why:    "A context function outside a sub-select runs for every row the policy filters; bulkhead's verifier then checks a signature per row (about 100 times slower on a 50,000-row scan), and the time a query takes starts to reveal how many rows other tenants have.",
		Levels: "An error though its category is performance: per-row verification is slow enough to be a denial of service and a timing channel. Calls whose arguments depend on the row cannot be hoisted and are not reported.",
		Fix:    "Wrap each call in a sub-select so it runs once per query: tenant_id = (SELECT bulkhead.tenant_id())."},
	{ID: "L11", Name: "no_tenant_leading_index", Severity: Warn, Category: Security,
		Title:  "Tenant table without an index that starts with the tenant column",
		Why:    "Without it, every query reads other tenants' rows and lets the policy discard them: slower, and the query time reveals how many rows other tenants have (a timing side channel).",
		Levels: "Only tenant tables app roles hold a privilege on are checked; a partition is not checked on its own, since an index on its partitioned table is built on every partition.",
		Fix:    "CREATE INDEX … ON … (tenant_id), or lead the existing indexes with the tenant column."},
	{ID: "L12", Name: "app_role_dangerous_table_privilege", Severity: Error, Category: Security,
		Title:  "App roles hold TRUNCATE, REFERENCES or TRIGGER on a tenant table",
		Why:    "TRUNCATE ignores row security and empties the table for every tenant; REFERENCES lets a role's own foreign key probe for other tenants' keys; TRIGGER lets it run code on every tenant's writes.",
		Levels: "TRUNCATE, REFERENCES and TRIGGER are all errors.",
		Fix:    "REVOKE TRUNCATE, REFERENCES, TRIGGER ON … FROM the app roles (and in ALTER DEFAULT PRIVILEGES)."},
	{ID: "L13", Name: "app_role_can_create", Severity: Error, Category: Security,
		Title:  "App roles can create objects",
		Why:    "CREATE on a schema lets compromised code plant functions and operators that unqualified names resolve to, and tables whose foreign keys probe other tenants' keys; CREATE on the database lets it make schemas; TEMP lets it shadow tables through pg_temp and leave state on pooled connections.",
		Levels: "An error for CREATE on a schema or the database, a warning for TEMP.",
		Fix:    "REVOKE CREATE ON SCHEMA … and REVOKE CREATE, TEMPORARY ON DATABASE … from PUBLIC and the app roles."},
	{ID: "L14", Name: "partition_without_rls", Severity: Error, Category: Security, Supersedes: []string{"S0007", "S0013", "L01"},
		Title: "Partition or child table without row security under a parent with it",
		Why:   "Row security on a parent applies only to queries through the parent. A partition or inheritance child queried by name uses its own setting, and with row security off it shows every tenant's rows.",
		Fix:   "ALTER TABLE <partition> ENABLE ROW LEVEL SECURITY and FORCE it (no policy: direct reads are denied, reads through the parent keep working), or revoke the app roles' privileges on it."},
	{ID: "L15", Name: "sequence_readable", Severity: Warn, Category: Security,
		Title:  "Sequence app roles can read",
		Why:    "SELECT on a sequence shows its last value, which counts every tenant's rows (serial ids leak volume and invite guessing).",
		Levels: "Sequences in schemas the app roles cannot use are not reported. Revoking SELECT hides only last_value: a role that can insert still sees the global counter through nextval() (USAGE) or the id RETURNING gives back, so a sequence shared by tenants reveals their volume whatever the grants.",
		Fix:    "REVOKE SELECT ON SEQUENCE … (USAGE is enough for nextval); to stop inserts revealing the counter too, use random keys such as gen_random_uuid(), or a sequence per tenant."},
	{ID: "L16", Name: "user_leakproof_function", Severity: Warn, Category: Security,
		Title:  "User-defined LEAKPROOF function",
		Why:    "PostgreSQL runs LEAKPROOF functions before row security filters, so a function that can raise an error or a notice carrying its arguments shows other tenants' values.",
		Levels: "Functions in pg_catalog and functions that belong to extensions are not reported.",
		Fix:    "ALTER FUNCTION … NOT LEAKPROOF, unless it has been audited never to reveal its arguments."},
	{ID: "L17", Name: "remote_access", Severity: Warn, Category: Security,
		Title:  "dblink, postgres_fdw or file_fdw installed, or a user mapping for PUBLIC",
		Why:    "dblink and postgres_fdw open connections as other roles (which row security does not follow), file_fdw reads server files, and a user mapping FOR PUBLIC lends one role's remote credentials to every role.",
		Levels: "A warning for the extension, an error for a user mapping FOR PUBLIC.",
		Fix:    "DROP EXTENSION when it is not needed (or revoke its functions from PUBLIC), and DROP USER MAPPING FOR PUBLIC."},
	{ID: "L18", Name: "server_version_vulnerable", Severity: Error, Category: Security,
		Title:  "Server release with known row-security or statistics leaks",
		Why:    "Releases before 13.22, 14.19, 15.14, 16.10 and 17.6 leak rows or statistics past row security (CVE-2024-10976, CVE-2025-8713 and earlier), and clusters initialised before 15.7 (and the matching releases) keep the unfixed pg_stats_ext views (CVE-2024-4317) after an upgrade.",
		Levels: "An error. Major versions before 13 are out of support and always reported.",
		Fix:    "Upgrade to the latest minor release; in old clusters run the fix-CVE-2024-4317.sql script from the release notes in every database."},
	{ID: "L19", Name: "bulkhead_function_altered", Severity: Error, Category: Security,
		Title:  "bulkhead's context functions differ from bulkhead's migrations",
		Why:    "bulkhead.context() is the verifier every row policy rests on, and bulkhead.tenant_id(), tenant_id_for(), claimed_tenant_id() and auth.jwt() carry its answer. Their owner or a superuser can replace one, or unpin its search_path, and every policy still looks right while the database accepts forged, expired or another tenant's contexts.",
		Levels: "An error when a function's body, SECURITY DEFINER, pinned settings, owner or volatility differ from what the latest migration this lint knows made, or when it is missing. bulkhead.context() may also be the native verifier as `bulkhead verifier native` installs it (a C function, symbol bulkhead_context, SECURITY DEFINER, owned by bulkhead_owner, no settings), and is reported when that differs. Information when the schema is at another migration, or its version is unreadable, so nothing was compared. Only in databases set up by bulkhead.",
		Fix:    "Restore the definition from the migration that made it, find out who changed it, run gameday, and rotate the context keys if forged contexts may have been accepted."},
	{ID: "L20", Name: "app_role_reaches_other_sessions", Severity: Warn, Category: Security,
		Title:  "App roles can see or end other sessions",
		Why:    "pg_stat_activity and pg_stat_get_activity() show other sessions' query text (literals, and contexts sent inside SQL), pg_locks and pg_lock_status() show the tables each session is using (in a schema per tenant, which tenant is at work), and pg_cancel_backend() and pg_terminate_backend() end other sessions of the same role. The advisory-lock functions (pg_advisory_lock(), pg_try_advisory_lock() and their shared and transaction forms) let one session learn whether another holds a key, a channel between tenants' code, and a session lock left by business code stays with its pooled connection until it is released. With one login for every tenant, one compromised request watches, signals or disrupts the others'. A view revoked while the function behind it is not hides nothing.",
		Levels: "One finding per database, a warning: PostgreSQL grants all of these to PUBLIC by default. Privileges held through a predefined role (pg_monitor) are reported too, with advice instead of a REVOKE.",
		Fix:    "As a superuser, REVOKE SELECT ON pg_stat_activity, pg_locks and REVOKE EXECUTE ON FUNCTION pg_stat_get_activity, pg_lock_status, pg_cancel_backend, pg_terminate_backend FROM PUBLIC, granting them to pg_monitor, and REVOKE EXECUTE on the advisory-lock functions FROM PUBLIC (bulkhead migrate does); give each function or service its own login role."},
	{ID: "L21", Name: "maintenance_role_cannot_see_rows", Severity: Warn, Category: Security,
		Title:  "bulkhead's maintenance role cannot see every tenant row",
		Why:    "Offboarding deletes a tenant's rows, and a move copies and deletes them, as bulkhead_maint, then count what is left as that role. Where it does not bypass row security (a managed service's admin cannot make a BYPASSRLS role), only its maint_all policy on each tenant table lets it see the rows; without it, or under a restrictive policy, both would find nothing and report success with the rows left behind. bulkhead refuses them instead (maint_cannot_see_rows), so a tenant cannot be offboarded or moved until this is fixed.",
		Levels: "One finding per database, a warning, naming every such table of the pool and the silos. Only in databases set up by bulkhead.",
		Fix:    "Run bulkhead migrate, which gives every tenant table its maint_all policy (tenant-table version 5), and drop restrictive policies that apply to PUBLIC or bulkhead_maint."},
	{ID: "L22", Name: "app_role_unbounded_temp_files", Severity: Warn, Category: Security,
		Title:  "App roles may write temporary files without limit",
		Why:    "A sort or hash that does not fit in work_mem, which any role may lower or raise in its session, spills to temporary files on the server's disk. With temp_file_limit at -1 (PostgreSQL's default), one statement of a compromised or careless function can fill the disk every tenant's data and WAL are on, and PostgreSQL stops for all of them; a statement timeout does not help, since the role may set its own.",
		Levels: "One finding per database, a warning, naming every app login role whose sessions start with temp_file_limit = -1 (from its own setting for this database or for every database, the database's setting, or the server's, in that order).",
		Fix:    "As a superuser, ALTER ROLE … SET temp_file_limit = '1GB' for each app login role (bulkhead migrate does, for the gateway and every function), or set temp_file_limit for the server; the roles cannot lift a superuser setting."},
	{ID: "L23", Name: "app_role_no_connection_limit", Severity: Warn, Category: Security,
		Title:  "App login roles without a connection limit",
		Why:    "PostgreSQL has no bound on the CPU, memory or locks one role's statements take but the number of sessions it may hold at once: with none, one compromised or runaway service can open as many sessions as the server allows, run a heavy statement in each, and starve every tenant (on two CPUs, CPU-bound statements on 20 sessions put another tenant's p99 at over 100 times its value alone), or use up max_connections so that nobody else can connect.",
		Levels: "One finding per database, a warning, naming every app login role whose CONNECTION LIMIT is -1 (PostgreSQL's default).",
		Fix:    "As a role with CREATEROLE, ALTER ROLE … CONNECTION LIMIT n for each app login role, n sized to what one service may take from every tenant; a role cannot change its own. bulkhead gives its gateway 200 and each function 20 (bulkhead functions create --connection-limit)."},
}

var ruleByID = map[string]Rule{}

// supersededBy maps a check to the checks that supersede it.
var supersededBy = map[string][]string{}

func init() {
	for _, r := range rules {
		if _, dup := ruleByID[r.ID]; dup {
			panic("lint: duplicate rule " + r.ID)
		}
		ruleByID[r.ID] = r
		for _, s := range r.Supersedes {
			supersededBy[s] = append(supersededBy[s], r.ID)
		}
	}
}

// Rules returns every rule, in id order (splinter-derived first).
func Rules() []Rule {
	return append([]Rule(nil), rules...)
}
