package lint

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// checks lists every check. Each returns its findings; Run fills in the
// rule's name, category and why, and drops superseded findings.
var checks = []func(*catalog) []Finding{
	(*catalog).checkTables,     // L01 L02 L14 S0007 S0008 S0013 S0023
	(*catalog).checkPolicies,   // L03 L04 L05 L10 S0003 S0015 S0024
	(*catalog).checkPermissive, // S0006
	(*catalog).checkViews,      // L07 S0010 S0016 S0017
	(*catalog).checkFunctions,  // L08 L16 S0011 S0028
	(*catalog).checkRoles,      // L06
	(*catalog).checkKeys,       // L09 L11
	(*catalog).checkPrivileges, // L12 L13 L15 L20
	(*catalog).checkExtensions, // L17 S0014 S0022
	(*catalog).checkServer,     // L18
	(*catalog).checkIntegrity,  // L19
	(*catalog).checkMaintSight, // L21
	(*catalog).checkTempFiles,  // L22 L23
}

// ---- helpers

func join(s []string) string { return strings.Join(s, ", ") }

// roleList returns who to revoke from: the grantees an app role inherits
// the privilege from, or else the app roles themselves.
func (c *catalog) roleList(grantees []string) string {
	if len(grantees) > 0 {
		return join(grantees)
	}
	var q []string
	for _, r := range c.apps {
		q = append(q, r.q)
	}
	if len(q) == 0 {
		return "PUBLIC"
	}
	return join(q)
}

// policyRoles is who a suggested new policy is for.
func (c *catalog) policyRoles() string {
	if c.bulkhead {
		return "bulkhead_app"
	}
	return "PUBLIC"
}

func (c *catalog) tenantPredicate() string { return c.tcolQ + " = " + c.tenantExpr }

func (c *catalog) tenantPolicySQL(r *rel) string {
	p := c.tenantPredicate()
	return fmt.Sprintf("CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO %s USING (%s) WITH CHECK (%s);", r.q, c.policyRoles(), p, p)
}

func (c *catalog) appCanCreate() bool {
	if c.dbTemp || c.dbCreate {
		return true
	}
	for _, s := range c.schemas {
		if s.appCreate {
			return true
		}
	}
	return false
}

// pins reports whether expression x restricts rows of r by the tenant
// column (see [expr.pinsColumn]).
func (c *catalog) pins(x *expr, r *rel) bool {
	return x != nil && x.pinsColumn(r.name, c.opt.TenantColumn)
}

// childOfRLS reports whether r is a partition or inheritance child of a
// table with row security.
func (c *catalog) childOfRLS(r *rel) bool {
	for _, p := range r.parents {
		if pr := c.relByOID[p]; pr != nil && pr.rls {
			return true
		}
	}
	return false
}

func privList(r *rel, privs ...string) []string {
	var out []string
	for _, p := range privs {
		if r.app[p] {
			out = append(out, p)
		}
	}
	return out
}

func (c *catalog) granteesFor(r *rel, privs ...string) []string {
	set := map[string]bool{}
	for _, p := range privs {
		for _, g := range r.grantees[p] {
			set[g] = true
		}
	}
	var out []string
	for g := range set {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// ---- tables

// sensitiveNames are column names (lower case, '-' as '_') that hold
// secrets or identity numbers.
var sensitiveNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`password passwd pwd pass_hash password_hash hashed_password password_digest
		passphrase secret secret_key client_secret api_key apikey api_secret api_token access_token refresh_token
		auth_token session_token id_token bearer_token token private_key signing_key encryption_key otp otp_secret
		totp_secret mfa_secret recovery_code recovery_codes pin ssn social_security_number national_id
		national_insurance_number tax_id taxpayer_id passport passport_number driver_license drivers_license
		credit_card credit_card_number card_number cc_number cvv cvc card_cvv iban bank_account account_number
		routing_number sort_code date_of_birth dob birth_date medical_record health_record`) {
		sensitiveNames[n] = true
	}
}

func sensitiveColumns(cols []string) []string {
	var out []string
	for _, c := range cols {
		if sensitiveNames[strings.ReplaceAll(strings.ToLower(c), "-", "_")] {
			out = append(out, c)
		}
	}
	return out
}

func (c *catalog) checkTables() []Finding {
	var out []Finding
	for _, r := range c.rels {
		if (r.kind != "r" && r.kind != "p") || r.ext {
			continue
		}
		enable := fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY;\nALTER TABLE %s FORCE ROW LEVEL SECURITY;", r.q, r.q)
		child := c.childOfRLS(r)
		reach := r.reachable()
		privs := privList(r, tablePrivileges...)

		// L14: a partition or child without row security under a parent with it.
		if child && !r.rls {
			if reach {
				out = append(out, Finding{ID: "L14", Object: r.object(),
					Message: fmt.Sprintf("%s has row security off, under a parent that has it on; app roles can %s it by name.", r.q, strings.ToLower(join(privs))),
					Fix:     enable + "\n-- No policy is needed: direct access is then denied, access through the parent keeps its policies."})
			}
			continue
		}

		// L01 / S0013 / S0007: row security off.
		if !r.rls {
			if len(r.policies) > 0 {
				out = append(out, Finding{ID: "S0007", Object: r.object(),
					Message: fmt.Sprintf("%s has %s but row security is disabled, so none of them applies.", r.q, plural(len(r.policies), "policy", "policies")),
					Fix:     enable})
			}
			switch {
			case r.tenant() && (reach || !r.partition):
				f := Finding{ID: "L01", Object: r.object(), Fix: enable}
				if len(r.policies) == 0 {
					f.Fix += "\n" + c.tenantPolicySQL(r)
				}
				if reach {
					f.Message = fmt.Sprintf("Tenant table %s has row security off; app roles can %s every tenant's rows.", r.q, strings.ToLower(join(privs)))
				} else {
					f.Severity = Info
					f.Message = fmt.Sprintf("Tenant table %s has row security off; no app role holds a privilege on it today.", r.q)
				}
				if len(r.policies) > 0 {
					f.Message += fmt.Sprintf(" Its %s nothing.", plural(len(r.policies), "policy does", "policies do"))
				}
				out = append(out, f)
			case !r.tenant() && r.exposed && r.app["SELECT"]:
				f := Finding{ID: "S0013", Object: r.object(), Severity: Warn,
					Message: fmt.Sprintf("%s has no row security and no %s column: every tenant shares its rows, and app roles can %s them.", r.q, c.opt.TenantColumn, strings.ToLower(join(privs))),
					Fix: fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY;\nCREATE POLICY shared_read ON %s AS PERMISSIVE FOR SELECT TO PUBLIC USING (true);\n"+
						"-- Reads stay open to every tenant and writes by app roles are refused. If the rows belong to tenants, add the %s column instead.", r.q, r.q, c.opt.TenantColumn)}
				if r.writable() {
					f.Severity = Error
				}
				out = append(out, f)
			}
			if r.exposed && r.app["SELECT"] {
				if cols := sensitiveColumns(r.cols); len(cols) > 0 {
					out = append(out, Finding{ID: "S0023", Object: r.object(),
						Message: fmt.Sprintf("%s has no row security and app roles can read its columns %s in every row.", r.q, join(cols)),
						Fix: fmt.Sprintf("REVOKE SELECT ON %s FROM %s;\n-- or: ALTER TABLE %s ENABLE ROW LEVEL SECURITY, with policies that pin the tenant.",
							r.q, c.roleList(r.grantees["SELECT"]), r.q)})
				}
			}
			continue
		}

		// Row security on.
		if r.tenant() && !r.force {
			out = append(out, Finding{ID: "L02", Object: r.object(),
				Message: fmt.Sprintf("Tenant table %s has row security enabled but not forced: its owner %s sees every tenant's rows.", r.q, r.ownerQ),
				Fix:     fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY;", r.q)})
		}
		if len(r.policies) == 0 && !child {
			f := Finding{ID: "S0008", Object: r.object(),
				Message: fmt.Sprintf("%s has row security enabled and no policy: every role it applies to sees no rows.", r.q),
				Fix:     "-- Nothing to do if deny-all is intended (a table reached only through SECURITY DEFINER functions)."}
			if r.tenant() {
				f.Fix += "\n-- Otherwise:\n" + c.tenantPolicySQL(r)
			}
			out = append(out, f)
		}
	}
	return out
}

// ---- policies

// guard reports whether a restrictive policy for cmd that applies to every
// role in roles pins the tenant column, in USING (write false) or in the
// check applied to new rows (write true): WITH CHECK, or USING when the
// policy has none, which PostgreSQL then applies to the new rows of INSERT
// as well as UPDATE.
func (c *catalog) guard(r *rel, cmd string, roles []string, write bool) bool {
	for _, g := range r.policies {
		if g.permissive || !g.appliesTo(cmd) || !covers(g.appRoles, roles) {
			continue
		}
		x := g.qualX
		if write {
			x = g.checkX
			if x == nil {
				x = g.qualX
			}
		}
		if c.pins(x, r) {
			return true
		}
	}
	return false
}

func covers(have, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// isContextCall reports whether a call reads per-session context: the
// current_setting() built-in, or a non-immutable function outside
// pg_catalog (auth.jwt(), bulkhead.tenant_id(), a user's wrapper).
func (c *catalog) isContextCall(k call) bool {
	if k.name == "current_setting" && (k.schema == "" || k.schema == "pg_catalog") {
		return true
	}
	if k.schema == "" || k.schema == "pg_catalog" {
		return false
	}
	fs := c.funcByKey[k.schema+"."+k.name]
	if len(fs) == 0 {
		return k.schema == "auth" || k.schema == "bulkhead"
	}
	for _, f := range fs {
		if f.volatility != "i" {
			return true
		}
	}
	return false
}

// perRow returns the context calls PostgreSQL evaluates once per row:
// outside any sub-select that runs once, with arguments that do not
// depend on the row (so a sub-select could hoist them).
func (c *catalog) perRow(x *expr, r *rel) []call {
	if x == nil {
		return nil
	}
	var out []call
	for _, k := range x.calls(r.name) {
		if !k.once && c.isContextCall(k) && k.args.constant() {
			out = append(out, k)
		}
	}
	return out
}

var qualifiedCall = regexp.MustCompile(`(?i)\b([a-z_][a-z0-9_$]*)\s*\.\s*([a-z_][a-z0-9_$]*)\s*\(`)

// unverifiedSetting reports whether f reads a setting (current_setting,
// request.jwt.*) without being able to verify it, following calls to
// other functions. A SECURITY INVOKER function runs with the caller's
// rights, so it can check nothing the caller could not forge; a SECURITY
// DEFINER one is no better unless it also reads a relation the app roles
// cannot read, where a key to check a signature against would live.
// bulkhead's own verifier is trusted while L19 finds it as bulkhead's
// migrations made it.
func (c *catalog) unverifiedSetting(f *function, depth int) bool {
	if f.lang == "c" || f.lang == "internal" || depth > 4 || c.isBulkheadVerifier(f) {
		return false
	}
	if f.secdef && c.readsUnreadable(f) {
		return false
	}
	src := strings.ToLower(f.src)
	if strings.Contains(src, "current_setting") || strings.Contains(src, "request.jwt") {
		return true
	}
	for _, m := range qualifiedCall.FindAllStringSubmatch(src, -1) {
		for _, g := range c.funcByKey[m[1]+"."+m[2]] {
			if g != f && c.unverifiedSetting(g, depth+1) {
				return true
			}
		}
	}
	return false
}

// bulkheadVerifiers are bulkhead's functions that verify the signed
// context (bulkhead.context()) or return what it verified.
var bulkheadVerifiers = map[string]bool{
	"bulkhead.context()":           true,
	"bulkhead.tenant_id()":         true,
	"bulkhead.tenant_id_for(text)": true,
}

// isBulkheadVerifier reports whether f is one of bulkhead's verifiers
// exactly as the migrations L19 knows made it (body, SECURITY DEFINER,
// settings, owner and volatility).
func (c *catalog) isBulkheadVerifier(f *function) bool {
	if !c.bulkhead || !bulkheadVerifiers[f.sig] || c.integrity.version != fingerprintVersion {
		return false
	}
	_, known := fingerprints[f.sig]
	got, ok := c.integrity.funcs[f.sig]
	return known && ok && c.integrity.matches(f.sig, got)
}

// readsUnreadable reports whether f's body selects from (FROM or JOIN) a
// relation no app role can read. The answer is kept per function.
func (c *catalog) readsUnreadable(f *function) bool {
	if v, ok := c.unreadableReads[f.oid]; ok {
		return v
	}
	src := strings.ToLower(f.src)
	found := false
	for _, r := range c.rels {
		if r.kind == "S" || r.app["SELECT"] {
			continue
		}
		re := regexp.MustCompile(`\b(from|join)\s+("?` + regexp.QuoteMeta(strings.ToLower(r.schema)) + `"?\s*\.\s*)?"?` +
			regexp.QuoteMeta(strings.ToLower(r.name)) + `"?($|[^a-z0-9_$.])`)
		if re.MatchString(src) {
			found = true
			break
		}
	}
	if c.unreadableReads == nil {
		c.unreadableReads = map[uint32]bool{}
	}
	c.unreadableReads[f.oid] = found
	return found
}

var userEditable = []string{"user_metadata", "raw_user_meta_data", "user_meta_data", "custom:"}

func replaceUserEditable(s string) string {
	s = strings.ReplaceAll(s, "raw_user_meta_data", "raw_app_meta_data")
	s = strings.ReplaceAll(s, "user_meta_data", "app_meta_data")
	return strings.ReplaceAll(s, "user_metadata", "app_metadata")
}

// clauses renders the policy's expressions as CREATE POLICY writes them.
func clauses(p *policy) string {
	s := ""
	if p.qual != "" {
		s += " USING (" + p.qual + ")"
	}
	if p.check != "" {
		s += " WITH CHECK (" + p.check + ")"
	}
	return s
}

// alterPolicy builds ALTER POLICY with the clauses the policy has.
func alterPolicy(p *policy, using, check string) string {
	s := fmt.Sprintf("ALTER POLICY %s ON %s", p.q, p.rel.q)
	if p.qual != "" {
		s += " USING (" + using + ")"
	}
	if p.check != "" {
		s += " WITH CHECK (" + check + ")"
	}
	return s + ";"
}

func (c *catalog) guardSQL(r *rel, roles []string) string {
	p := c.tenantPredicate()
	return fmt.Sprintf("DROP POLICY IF EXISTS tenant_guard ON %s;\nCREATE POLICY tenant_guard ON %s AS RESTRICTIVE FOR ALL TO %s USING (%s) WITH CHECK (%s);",
		r.q, r.q, join(roles), p, p)
}

func (c *catalog) checkPolicies() []Finding {
	var out []Finding
	for _, p := range c.policies {
		r := p.rel
		if len(p.appRoles) == 0 || !r.rls || !r.reachable() {
			continue // the policy never runs for app roles
		}
		tenant := r.tenant()

		// L10 / S0003: context calls evaluated per row.
		q, k := c.perRow(p.qualX, r), c.perRow(p.checkX, r)
		if len(q)+len(k) > 0 {
			id := "S0003"
			if tenant {
				id = "L10"
			}
			names := map[string]bool{}
			var list []string
			for _, x := range append(append([]call{}, q...), k...) {
				if n := x.String() + "()"; !names[n] {
					names[n] = true
					list = append(list, n)
				}
			}
			using, check := p.qual, p.check
			if p.qualX != nil {
				using = p.qualX.fastForm(q)
			}
			if p.checkX != nil {
				check = p.checkX.fastForm(k)
			}
			out = append(out, Finding{ID: id, Object: p.object(),
				Message: fmt.Sprintf("Policy %s on %s evaluates %s once per row; in a sub-select it runs once per query.", p.q, r.q, join(list)),
				Fix:     alterPolicy(p, using, check)})
		}

		// L05 / S0015: forgeable or user-editable context.
		var reasons []string
		sev := Warn
		editable := false
		for _, x := range []*expr{p.qualX, p.checkX} {
			if x == nil {
				continue
			}
			if x.hasWord(userEditable...) {
				editable = true
			}
			if !tenant {
				continue
			}
			for _, k := range x.calls(r.name) {
				if k.name == "current_setting" && (k.schema == "" || k.schema == "pg_catalog") {
					reasons = append(reasons, "reads current_setting() directly, which any SQL the app role runs can change with set_config")
					sev = Error
				} else if k.schema != "" && k.schema != "pg_catalog" {
					for _, f := range c.funcByKey[k.schema+"."+k.name] {
						if c.unverifiedSetting(f, 0) {
							if f.secdef {
								reasons = append(reasons, fmt.Sprintf("calls %s, which reads a setting and, though SECURITY DEFINER, reads nothing the app roles cannot read to verify it against", f.sig))
							} else {
								reasons = append(reasons, fmt.Sprintf("calls %s, which reads a setting without verifying it", f.sig))
							}
							sev = Error
							break
						}
					}
				}
			}
			if x.failOpen(r.name, c.opt.TenantColumn, c.isContextCall) {
				reasons = append(reasons, "lets every row through when the context is missing (COALESCE(…, "+c.opt.TenantColumn+"), \"… IS NULL OR …\" or CASE WHEN … IS NULL THEN true)")
				sev = Error
			}
		}
		if editable {
			reasons = append(reasons, "reads a claim the end user can edit (user_metadata)")
			sev = Error
		}
		if tenant && len(reasons) > 0 {
			reasons = dedupe(reasons)
			f := Finding{ID: "L05", Severity: sev, Object: p.object(),
				Message: fmt.Sprintf("Policy %s on %s %s.", p.q, r.q, strings.Join(reasons, "; "))}
			if editable && len(reasons) == 1 {
				f.Fix = alterPolicy(p, replaceUserEditable(p.qual), replaceUserEditable(p.check))
			} else {
				f.Fix = fmt.Sprintf("-- was:%s; keep any condition that is not about the tenant.\n%s",
					clauses(p), alterPolicy(p, c.tenantPredicate(), c.tenantPredicate()))
			}
			out = append(out, f)
		} else if editable {
			out = append(out, Finding{ID: "S0015", Object: p.object(),
				Message: fmt.Sprintf("Policy %s on %s reads user_metadata, which the end user can edit.", p.q, r.q),
				Fix:     alterPolicy(p, replaceUserEditable(p.qual), replaceUserEditable(p.check))})
		}

		if !p.permissive {
			continue
		}

		// S0024: literally true.
		// On a tenant table a restrictive tenant guard makes "true" harmless.
		guarded := func(write bool, cmds ...string) bool {
			for _, cmd := range cmds {
				if p.appliesTo(cmd) && !(tenant && c.guard(r, cmd, p.appRoles, write)) {
					return false
				}
			}
			return true
		}
		var truths []string
		if (p.cmd == "w" || p.cmd == "d" || p.cmd == "*") && p.qualX != nil && p.qualX.alwaysTrue() && !guarded(false, "w", "d") {
			truths = append(truths, "USING (true)")
		}
		if p.cmd != "r" && p.cmd != "d" && p.checkX != nil && p.checkX.alwaysTrue() && !guarded(true, "a", "w") {
			truths = append(truths, "WITH CHECK (true)")
		}
		if len(truths) > 0 {
			out = append(out, Finding{ID: "S0024", Object: p.object(),
				Message: fmt.Sprintf("Permissive %s policy %s on %s has %s for %s.", cmdName(p.cmd), p.q, r.q, strings.Join(truths, " and "), join(p.roles)),
				Fix:     fmt.Sprintf("DROP POLICY %s ON %s;\n-- or ALTER POLICY with the condition it should check.", p.q, r.q)})
		}
		if !tenant {
			continue
		}

		// L04: permissive USING that ignores the tenant column.
		for _, cmd := range []string{"r", "w", "d"} {
			if !p.appliesTo(cmd) || p.qualX == nil || c.pins(p.qualX, r) || c.guard(r, cmd, p.appRoles, false) {
				continue
			}
			out = append(out, Finding{ID: "L04", Object: p.object(),
				Message: fmt.Sprintf("Permissive %s policy %s on %s does not pin %s in USING (%s), and no restrictive policy pins the tenant: it opens the rows it matches to every tenant.",
					cmdName(p.cmd), p.q, r.q, c.opt.TenantColumn, p.qual),
				Fix: c.guardSQL(r, p.roles)})
			break
		}

		// L03: the check on new rows ignores the tenant column.
		for _, cmd := range []string{"a", "w"} {
			if !p.appliesTo(cmd) {
				continue
			}
			x, clause := p.checkX, "WITH CHECK"
			if x == nil && cmd == "w" {
				x, clause = p.qualX, "USING (serving as the check)"
			}
			if x == nil || c.pins(x, r) || c.guard(r, cmd, p.appRoles, true) {
				continue
			}
			out = append(out, Finding{ID: "L03", Object: p.object(),
				Message: fmt.Sprintf("%s policy %s on %s checks new rows with %s (%s), which does not pin %s, and no restrictive policy does: a tenant can write rows into another tenant.",
					cmdName(p.cmd), p.q, r.q, clause, x.text, c.opt.TenantColumn),
				Fix: c.guardSQL(r, p.roles)})
			break
		}
	}
	return out
}

// checkPermissive reports several permissive policies for one role and
// command (S0006).
func (c *catalog) checkPermissive() []Finding {
	var out []Finding
	for _, r := range c.rels {
		if !r.rls || len(r.policies) < 2 || !r.reachable() {
			continue
		}
		for _, cmd := range []string{"r", "a", "w", "d"} {
			byRole := map[string][]*policy{}
			for _, p := range r.policies {
				if !p.permissive || !p.appliesTo(cmd) {
					continue
				}
				for _, role := range p.appRoles {
					byRole[role] = append(byRole[role], p)
				}
			}
			var roles []string
			var group []*policy
			for role, ps := range byRole {
				if len(ps) > 1 {
					roles = append(roles, role)
					if len(ps) > len(group) {
						group = ps
					}
				}
			}
			if len(roles) == 0 {
				continue
			}
			sort.Strings(roles)
			var names []string
			for _, p := range group {
				names = append(names, p.q)
			}
			out = append(out, Finding{ID: "S0006", Object: r.object(),
				Message: fmt.Sprintf("%s has %d permissive %s policies (%s) for %s; they are ORed and each is evaluated for every row.",
					r.q, len(group), cmdName(cmd), join(names), join(roles)),
				Fix: c.mergeSQL(r, cmd, group)})
		}
	}
	return out
}

// mergeSQL merges policies of one command and role list into one, when
// they have the same shape; otherwise it says what to do.
func (c *catalog) mergeSQL(r *rel, cmd string, ps []*policy) string {
	same := true
	for _, p := range ps[1:] {
		if p.cmd != ps[0].cmd || join(p.roles) != join(ps[0].roles) || (p.qual == "") != (ps[0].qual == "") || (p.check == "") != (ps[0].check == "") {
			same = false
		}
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.name)
	}
	if !same {
		return fmt.Sprintf("-- Merge %s into one permissive %s policy per role, or make the ones that restrict AS RESTRICTIVE.", join(names), cmdName(cmd))
	}
	var quals, checks, drops []string
	for _, p := range ps {
		if p.qual != "" {
			quals = append(quals, "("+p.qual+")")
		}
		if p.check != "" {
			checks = append(checks, "("+p.check+")")
		}
		drops = append(drops, fmt.Sprintf("DROP POLICY %s ON %s;", p.q, r.q))
	}
	s := fmt.Sprintf("CREATE POLICY %s ON %s AS PERMISSIVE FOR %s TO %s", quoteName(strings.Join(names, "_or_")), r.q, cmdName(ps[0].cmd), join(ps[0].roles))
	if len(quals) > 0 {
		s += " USING (" + strings.Join(quals, " OR ") + ")"
	}
	if len(checks) > 0 {
		s += " WITH CHECK (" + strings.Join(checks, " OR ") + ")"
	}
	return strings.Join(drops, "\n") + "\n" + s + ";"
}

var simpleName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// quoteName quotes a name made by lint (not a keyword by construction).
func quoteName(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	if simpleName.MatchString(s) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// ---- views

// tenantSources returns the tenant tables a view or materialized view
// reads, through any number of other views.
func (c *catalog) tenantSources(v *rel) []*rel {
	seen := map[uint32]bool{v.oid: true}
	var out []*rel
	var walk func(oid uint32)
	walk = func(oid uint32) {
		for _, d := range c.deps[oid] {
			if seen[d] {
				continue
			}
			seen[d] = true
			t := c.relByOID[d]
			if t == nil {
				continue
			}
			if t.tenant() {
				out = append(out, t)
			}
			if t.kind == "v" || t.kind == "m" {
				walk(d)
			}
		}
	}
	walk(v.oid)
	sort.Slice(out, func(i, j int) bool { return out[i].q < out[j].q })
	return out
}

func (c *catalog) checkViews() []Finding {
	var out []Finding
	for _, v := range c.rels {
		if v.ext || !v.app["SELECT"] {
			continue
		}
		revoke := fmt.Sprintf("REVOKE SELECT ON %s FROM %s;", v.q, c.roleList(v.grantees["SELECT"]))
		invokerFix := fmt.Sprintf("ALTER VIEW %s SET (security_invoker = true);", v.q)
		if c.version < 150000 {
			invokerFix = revoke + "\n-- security_invoker views need PostgreSQL 15."
		}
		invoker := c.version >= 150000 && v.option("security_invoker")
		switch v.kind {
		case "v", "m":
			src := c.tenantSources(v)
			if len(src) > 0 && (v.kind == "m" || !invoker) {
				var names []string
				for _, t := range src {
					names = append(names, t.q)
				}
				f := Finding{ID: "L07", Object: v.object()}
				if v.kind == "m" {
					f.Message = fmt.Sprintf("Materialized view %s holds rows of tenant tables %s with no row security, and app roles can select from it.", v.q, join(names))
					f.Fix = revoke + "\n-- Serve per-tenant aggregates from a table with row security, or through a security_invoker view that filters by tenant."
				} else {
					f.Message = fmt.Sprintf("View %s reads tenant tables %s as its owner %s, not as the caller, and app roles can select from it.", v.q, join(names), v.ownerQ)
					f.Fix = invokerFix
					if v.option("security_barrier") && c.viewFiltersByContext(v) {
						f.Severity = Warn
						f.Message += " It is a security_barrier view that filters by a context function; check that the filter pins the tenant."
					}
				}
				out = append(out, f)
			}
			if !v.exposed {
				continue
			}
			if v.kind == "v" && !invoker {
				out = append(out, Finding{ID: "S0010", Object: v.object(),
					Message: fmt.Sprintf("View %s runs as its owner %s (no security_invoker), and app roles can select from it.", v.q, v.ownerQ),
					Fix:     invokerFix})
			}
			if v.kind == "m" {
				out = append(out, Finding{ID: "S0016", Object: v.object(),
					Message: fmt.Sprintf("Materialized view %s has no row security, and app roles can select from it.", v.q),
					Fix:     revoke})
			}
		case "f":
			if v.exposed {
				out = append(out, Finding{ID: "S0017", Object: v.object(),
					Message: fmt.Sprintf("Foreign table %s has no row security, and app roles can select from it.", v.q),
					Fix:     revoke})
			}
		}
	}
	return out
}

func (c *catalog) viewFiltersByContext(v *rel) bool {
	x := parseExpr(v.viewdef)
	for _, k := range x.calls(v.name) {
		if c.isContextCall(k) {
			return true
		}
	}
	return false
}

// ---- functions

// safePath reports whether a pinned search_path keeps pg_temp from being
// searched first: empty, or with pg_temp as the last entry.
func safePath(p string) bool {
	var parts []string
	for _, s := range strings.Split(p, ",") {
		s = strings.Trim(strings.TrimSpace(s), `"`)
		if s != "" {
			parts = append(parts, s)
		}
	}
	return len(parts) == 0 || parts[len(parts)-1] == "pg_temp"
}

// tenantTablesNamed returns the tenant tables a function body names.
func (c *catalog) tenantTablesNamed(f *function) []*rel {
	if f.lang == "c" || f.lang == "internal" {
		return nil
	}
	src := strings.ToLower(f.src)
	var out []*rel
	for _, r := range c.rels {
		if !r.tenant() || r.partition {
			continue
		}
		re := regexp.MustCompile(`(^|[^a-z0-9_$."])` + regexp.QuoteMeta(strings.ToLower(r.name)) + `($|[^a-z0-9_$])`)
		qre := regexp.MustCompile(regexp.QuoteMeta(strings.ToLower(r.schema)) + `"?\s*\.\s*"?` + regexp.QuoteMeta(strings.ToLower(r.name)) + `($|[^a-z0-9_$])`)
		if re.MatchString(src) || qre.MatchString(src) {
			out = append(out, r)
		}
	}
	return out
}

func (c *catalog) checkFunctions() []Finding {
	var out []Finding
	for _, f := range c.funcs {
		if f.ext {
			continue
		}
		path, pinned := f.searchPath()
		pinFix := fmt.Sprintf("ALTER %s %s SET search_path = pg_catalog, pg_temp;\n-- then qualify every name the body uses with its schema.", f.keyword(), f.sig)
		native := f.lang == "c" || f.lang == "internal"

		if f.leakproof {
			out = append(out, Finding{ID: "L16", Object: f.object(),
				Message: fmt.Sprintf("%s is marked LEAKPROOF, so PostgreSQL runs it before row security filters, on other tenants' rows.", f.sig),
				Fix:     fmt.Sprintf("ALTER %s %s NOT LEAKPROOF;", f.keyword(), f.sig)})
		}
		if f.exposed && !pinned && !native {
			sev := Info
			why := "It runs as the caller, and app roles can create nothing, so only a caller's own objects could be substituted."
			if f.secdef || c.appCanCreate() {
				sev, why = Warn, ""
			}
			out = append(out, Finding{ID: "S0011", Severity: sev, Object: f.object(),
				Message: strings.TrimSpace(fmt.Sprintf("%s has no pinned search_path. %s", f.sig, why)),
				Fix:     pinFix})
		}
		if !f.secdef || !f.appExec {
			continue
		}
		revoke := fmt.Sprintf("REVOKE EXECUTE ON %s %s FROM %s;", f.keyword(), f.sig, join(dedupe(append([]string{"PUBLIC"}, f.grantees...))))
		if f.exposed {
			sev := Info
			msg := fmt.Sprintf("%s is SECURITY DEFINER (owner %s) and app roles can execute it; review what it reads and returns.", f.sig, f.ownerQ)
			if f.ownerSuper || f.ownerBypass {
				sev = Warn
				msg = fmt.Sprintf("%s is SECURITY DEFINER, owned by %s, which bypasses row security, and app roles can execute it.", f.sig, f.ownerQ)
			}
			out = append(out, Finding{ID: "S0028", Severity: sev, Object: f.object(), Message: msg,
				Fix: "-- if app roles need not call it:\n" + revoke})
		}

		// L08.
		var reasons, fixes []string
		sev := Severity("")
		raise := func(s Severity) {
			if s.rank() > sev.rank() {
				sev = s
			}
		}
		if !native {
			switch {
			case !pinned:
				reasons = append(reasons, "has no pinned search_path")
				fixes = append(fixes, pinFix)
				if c.appCanCreate() {
					raise(Error)
				} else {
					raise(Warn)
				}
			case !safePath(path):
				reasons = append(reasons, fmt.Sprintf("pins search_path = %s, which searches pg_temp first for tables and types", path))
				fixes = append(fixes, fmt.Sprintf("ALTER %s %s SET search_path = %s, pg_temp;", f.keyword(), f.sig, path))
				if c.dbTemp {
					raise(Error)
				} else {
					raise(Warn)
				}
			}
		}
		if ts := c.tenantTablesNamed(f); len(ts) > 0 {
			var names []string
			bypass := false
			for _, t := range ts {
				names = append(names, t.q)
				if f.ownerSuper || f.ownerBypass || !t.rls || (f.owner == t.owner && !t.force) {
					bypass = true
				}
			}
			if bypass {
				reasons = append(reasons, fmt.Sprintf("names tenant tables %s, which its owner %s reads above row security", join(names), f.ownerQ))
				raise(Error)
			} else {
				reasons = append(reasons, fmt.Sprintf("names tenant tables %s", join(names)))
				raise(Warn)
			}
			fixes = append(fixes, fmt.Sprintf("ALTER %s %s SECURITY INVOKER;\n-- or keep it SECURITY DEFINER and filter every tenant table by %s inside the body.", f.keyword(), f.sig, c.tenantPredicate()))
		}
		if len(reasons) > 0 {
			out = append(out, Finding{ID: "L08", Severity: sev, Object: f.object(),
				Message: fmt.Sprintf("SECURITY DEFINER %s (owner %s), which app roles can execute, %s.", f.sig, f.ownerQ, strings.Join(reasons, "; ")),
				Fix:     strings.Join(fixes, "\n") + "\n-- if app roles need not call it: " + revoke})
		}
	}
	return out
}

// ---- roles

func (c *catalog) ownerRole() string {
	if c.bulkhead {
		return "bulkhead_owner"
	}
	return "tenant_owner"
}

func (c *catalog) checkRoles() []Finding {
	var out []Finding
	for _, e := range c.escalation {
		var what, fixes []string
		t := e.target
		self := t.oid == e.app.oid
		alter := func(attr string) {
			fixes = append(fixes, fmt.Sprintf("ALTER ROLE %s %s;", t.q, attr))
		}
		if t.super {
			what = append(what, "is a superuser")
			alter("NOSUPERUSER")
		}
		if t.bypass {
			what = append(what, "has BYPASSRLS")
			alter("NOBYPASSRLS")
		}
		if t.repl {
			what = append(what, "has REPLICATION")
			alter("NOREPLICATION")
		}
		if e.owns {
			var names []string
			for _, r := range c.ownedTenantTables(t.oid) {
				names = append(names, r.q)
			}
			if len(names) == 1 {
				what = append(what, "owns tenant table "+names[0])
			} else {
				what = append(what, "owns tenant tables "+join(names))
			}
			if !c.bulkhead {
				fixes = append(fixes, "-- once: CREATE ROLE tenant_owner NOLOGIN;")
			}
			for _, n := range names {
				fixes = append(fixes, fmt.Sprintf("ALTER TABLE %s OWNER TO %s;", n, c.ownerRole()))
			}
		}
		f := Finding{ID: "L06", Object: Object{Kind: "role", Name: e.app.q}}
		if self {
			f.Message = fmt.Sprintf("App role %s %s.", e.app.q, strings.Join(what, ", "))
			f.Fix = strings.Join(fixes, "\n")
		} else {
			f.Message = fmt.Sprintf("App role %s can SET ROLE %s, which %s.", e.app.q, t.q, strings.Join(what, ", "))
			var rev []string
			for _, v := range e.via {
				rev = append(rev, fmt.Sprintf("REVOKE %s FROM %s;", v, e.app.q))
			}
			f.Fix = strings.Join(rev, "\n") + "\n-- Give work that needs " + t.q + " its own login role, outside the request path."
		}
		out = append(out, f)
	}
	for _, r := range c.otherLogin {
		var what []string
		if r.super {
			what = append(what, "superuser")
		}
		if r.bypass {
			what = append(what, "BYPASSRLS")
		}
		if r.repl {
			what = append(what, "REPLICATION")
		}
		if ts := c.ownedTenantTables(r.oid); len(ts) > 0 {
			what = append(what, "owner of "+plural(len(ts), "tenant table", "tenant tables"))
		}
		if f, ok := c.ownerLogin(r); ok {
			out = append(out, f)
			continue
		}
		out = append(out, Finding{ID: "L06", Severity: Info, Object: Object{Kind: "role", Name: r.q},
			Message: fmt.Sprintf("Login role %s (%s) is not an app role; it is above row security.", r.q, strings.Join(what, ", ")),
			Fix:     "-- Keep this role's credentials out of every request path and out of application code."})
	}
	if len(c.apps) == 0 && len(c.opt.AppRoles) == 0 {
		out = append(out, Finding{ID: "L06", Severity: Error, Object: Object{Kind: "database", Name: c.dbq},
			Message: "lint found no app role (the default: " + c.defaultAppRoles() + "), so it judged no role's privileges: " +
				"its checks of grants, policies and functions that app roles reach found nothing because they looked at nobody.",
			Fix: "-- Name the login roles that serve tenant requests and lint again:\n-- bulkhead lint --app-roles role1,role2"})
	}
	return out
}

// defaultAppRoles says which roles lint takes as app roles by default.
func (c *catalog) defaultAppRoles() string {
	if c.bulkhead {
		return "login roles that are members of bulkhead_app"
	}
	return "login roles that may connect and are neither superusers nor owners of a tenant table"
}

// ownerLogin reports, as an error, a login role that lint's default app
// roles left out because it owns tenant tables, when row security on some
// of them is off or not forced: an application that logs in as the role
// that created its tables (the usual way) sees every tenant's rows, and
// no other finding would fail the run. With --app-roles the caller has
// said which roles serve requests, and the role stays information.
func (c *catalog) ownerLogin(r role) (Finding, bool) {
	if len(c.opt.AppRoles) > 0 || r.super {
		return Finding{}, false
	}
	var names, fixes []string
	for _, t := range c.ownedTenantTables(r.oid) {
		if t.rls && t.force {
			continue
		}
		names = append(names, t.q)
		if !t.rls {
			fixes = append(fixes, fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY;", t.q))
		}
		fixes = append(fixes, fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY;", t.q))
	}
	if len(names) == 0 {
		return Finding{}, false
	}
	what := "tenant table " + names[0] + ", whose row security is off or not forced"
	if len(names) > 1 {
		what = "tenant tables " + join(names) + ", whose row security is off or not forced"
	}
	owner := "-- once: CREATE ROLE tenant_owner NOLOGIN;"
	if c.bulkhead {
		owner = ""
	}
	fixes = append(fixes, "-- and give the tables an owner that cannot log in:")
	if owner != "" {
		fixes = append(fixes, owner)
	}
	for _, n := range names {
		fixes = append(fixes, fmt.Sprintf("-- ALTER TABLE %s OWNER TO %s;", n, c.ownerRole()))
	}
	fixes = append(fixes, "-- If this role does not serve requests, say which roles do: bulkhead lint --app-roles role1,role2")
	return Finding{ID: "L06", Severity: Error, Object: Object{Kind: "role", Name: r.q},
		Message: fmt.Sprintf("Login role %s owns %s, so it reads every tenant's rows, and it is not one of lint's default app roles (%s), "+
			"so no other check judged it: if the application logs in as %s, one tenant's request sees every tenant's rows.", r.q, what, c.defaultAppRoles(), r.q),
		Fix: strings.Join(fixes, "\n")}, true
}

// ---- keys and indexes

func contains(s []int16, v int16) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

var fkDef = regexp.MustCompile(`^FOREIGN KEY \((.*?)\) REFERENCES (.*?)\((.*?)\)(.*)$`)
var indexUsing = regexp.MustCompile(`USING (\w+) \(`)

// partitionRoot returns the root of the partition tree r belongs to, or r.
func (c *catalog) partitionRoot(r *rel) *rel {
	for i := 0; r.partition && len(r.parents) > 0 && i < 100; i++ {
		p := c.relByOID[r.parents[0]]
		if p == nil {
			break
		}
		r = p
	}
	return r
}

// partitionOf names the root of r's partition tree, for a message.
func (c *catalog) partitionOf(r *rel) string {
	if root := c.partitionRoot(r); root != r {
		return fmt.Sprintf(" (a partition of %s, which routes inserts to it)", root.q)
	}
	return ""
}

// keyWritable reports whether app roles can insert into or update r, so
// that its keys are checked on their writes: directly, or for a partition
// through the root of its partition tree, which routes rows to it.
func (c *catalog) keyWritable(r *rel) bool {
	w := func(x *rel) bool { return x.app["INSERT"] || x.app["UPDATE"] }
	return w(r) || (r.partition && w(c.partitionRoot(r)))
}

func (c *catalog) checkKeys() []Finding {
	var out []Finding
	tc := c.tcolQ
	for _, k := range c.cons {
		r := c.relByOID[k.rel]
		if r == nil || !c.keyWritable(r) {
			continue
		}
		obj := Object{Kind: "constraint", Name: k.q + " ON " + r.q}
		switch k.typ {
		case "p", "u":
			if contains(k.cols, r.tcol) {
				continue
			}
			kind := "UNIQUE"
			if k.typ == "p" {
				kind = "PRIMARY KEY"
			}
			out = append(out, Finding{ID: "L09", Object: obj,
				Message: fmt.Sprintf("%s %s on %s%s (%s) does not include %s: inserting a value another tenant holds fails, which tells a tenant it exists.", kind, k.q, r.q, c.partitionOf(r), join(k.colQ), c.opt.TenantColumn),
				Fix: fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s (%s);\n-- foreign keys that reference it must be rebuilt with %s first.",
					r.q, k.q, k.q, kind, join(append([]string{tc}, k.colQ...)), c.opt.TenantColumn)})
		case "f":
			fr := c.relByOID[k.frel]
			if fr == nil || !fr.tenant() {
				continue
			}
			paired := false
			for i := range k.cols {
				if i < len(k.fcols) && k.cols[i] == r.tcol && k.fcols[i] == fr.tcol {
					paired = true
				}
			}
			if paired {
				continue
			}
			fix := fmt.Sprintf("-- rebuild %s with %s on both sides (needs a unique key on %s that includes it)", k.q, c.opt.TenantColumn, fr.q)
			if m := fkDef.FindStringSubmatch(k.def); m != nil {
				fix = fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s FOREIGN KEY (%s, %s) REFERENCES %s(%s, %s)%s;\n-- needs a unique key on %s (%s, %s).",
					r.q, k.q, k.q, tc, m[1], strings.TrimSpace(m[2]), tc, m[3], m[4], fr.q, tc, m[3])
			}
			out = append(out, Finding{ID: "L09", Object: obj,
				Message: fmt.Sprintf("Foreign key %s on %s references tenant table %s without pairing %s: a row can point at another tenant's row, and the error for a missing key tells a tenant which keys exist.", k.q, r.q, fr.q, c.opt.TenantColumn),
				Fix:     fix})
		}
	}
	lead := map[uint32]bool{}
	for _, x := range c.idx {
		r := c.relByOID[x.rel]
		if r == nil {
			continue
		}
		if x.valid && len(x.keys) > 0 && x.keys[0] == r.tcol {
			lead[r.oid] = true
		}
		if !x.unique || x.backing || x.inherited || !c.keyWritable(r) || contains(x.keys, r.tcol) {
			continue
		}
		if contains(x.keys, 0) && regexp.MustCompile(`\b`+regexp.QuoteMeta(c.opt.TenantColumn)+`\b`).MatchString(x.def) {
			continue // an expression index over the tenant column
		}
		fix := fmt.Sprintf("DROP INDEX %s;\n%s;", x.q, indexUsing.ReplaceAllString(x.def, "USING $1 ("+tc+", "))
		out = append(out, Finding{ID: "L09", Object: Object{Kind: "index", Name: x.q},
			Message: fmt.Sprintf("Unique index %s on %s%s does not include %s: inserting a value another tenant holds fails, which tells a tenant it exists.", x.q, r.q, c.partitionOf(r), c.opt.TenantColumn),
			Fix:     fix})
	}
	for _, r := range c.rels {
		if !r.tenant() || r.partition || !r.reachable() || lead[r.oid] {
			continue
		}
		out = append(out, Finding{ID: "L11", Object: r.object(),
			Message: fmt.Sprintf("No valid index on tenant table %s starts with %s.", r.q, c.opt.TenantColumn),
			Fix:     fmt.Sprintf("CREATE INDEX ON %s (%s);\n-- on a busy table: CREATE INDEX CONCURRENTLY, outside a transaction; or lead the existing indexes with %s.", r.q, tc, c.opt.TenantColumn)})
	}
	return out
}

// ---- privileges

func (c *catalog) checkPrivileges() []Finding {
	var out []Finding
	for _, r := range c.rels {
		if r.ext {
			continue
		}
		if r.tenant() {
			if ps := privList(r, "TRUNCATE", "REFERENCES", "TRIGGER"); len(ps) > 0 {
				out = append(out, Finding{ID: "L12", Object: r.object(),
					Message: fmt.Sprintf("App roles hold %s on tenant table %s.", join(ps), r.q),
					Fix: fmt.Sprintf("REVOKE %s ON %s FROM %s;\n-- and remove them from ALTER DEFAULT PRIVILEGES, where they were granted by default.",
						join(ps), r.q, c.roleList(c.granteesFor(r, ps...)))})
			}
		}
		if r.kind == "S" && r.app["SELECT"] {
			out = append(out, Finding{ID: "L15", Object: r.object(),
				Message: fmt.Sprintf("App roles can read sequence %s, whose value counts every tenant's rows.", r.q),
				Fix: fmt.Sprintf("REVOKE SELECT ON SEQUENCE %s FROM %s;\n-- USAGE is enough for nextval(). nextval() and RETURNING still show the global counter: only random keys (gen_random_uuid()) hide it.",
					r.q, c.roleList(r.grantees["SELECT"]))})
		}
	}
	for _, s := range c.schemas {
		if s.appCreate {
			out = append(out, Finding{ID: "L13", Object: Object{Kind: "schema", Name: s.q},
				Message: fmt.Sprintf("App roles can create objects in schema %s.", s.q),
				Fix:     fmt.Sprintf("REVOKE CREATE ON SCHEMA %s FROM %s;", s.q, c.roleList(s.grantees))})
		}
	}
	db := Object{Kind: "database", Name: c.dbq}
	if c.dbCreate {
		out = append(out, Finding{ID: "L13", Object: db,
			Message: fmt.Sprintf("App roles can create schemas in database %s.", c.dbq),
			Fix:     fmt.Sprintf("REVOKE CREATE ON DATABASE %s FROM %s;", c.dbq, c.roleList(c.dbGrants["CREATE"]))})
	}
	if c.dbTemp {
		out = append(out, Finding{ID: "L13", Severity: Warn, Object: db,
			Message: fmt.Sprintf("App roles can create temporary tables in database %s.", c.dbq),
			Fix:     fmt.Sprintf("REVOKE TEMPORARY ON DATABASE %s FROM %s;", c.dbq, c.roleList(c.dbGrants["TEMPORARY"]))})
	}
	if f, ok := c.sessionFinding(db); ok {
		out = append(out, f)
	}
	return out
}

// sessionFinding is L20: one finding for the database, naming every view
// and function of the session-watching kind the app roles may use.
func (c *catalog) sessionFinding(db Object) (Finding, bool) {
	var held, fix []string
	for _, s := range c.sessions {
		if !s.held {
			continue
		}
		held = append(held, s.name)
		on := s.name
		if s.kind == "function" {
			on = "FUNCTION " + s.name
		}
		var direct []string
		for _, g := range s.grantees {
			switch {
			case g == "PUBLIC" && strings.Contains(s.name, "advisory"):
				// Monitoring needs no advisory locks: revoked only.
				fix = append(fix, fmt.Sprintf("REVOKE %s ON %s FROM PUBLIC;", s.priv, on))
			case g == "PUBLIC":
				fix = append(fix, fmt.Sprintf("GRANT %s ON %s TO pg_monitor;\nREVOKE %s ON %s FROM PUBLIC;", s.priv, on, s.priv, on))
			case strings.HasPrefix(g, "pg_"):
				fix = append(fix, fmt.Sprintf("-- app roles hold %s on %s through %s: revoke that membership from them unless they monitor the server.", s.priv, s.name, g))
			default:
				direct = append(direct, g)
			}
		}
		if len(direct) > 0 {
			fix = append(fix, fmt.Sprintf("REVOKE %s ON %s FROM %s;", s.priv, on, join(direct)))
		}
	}
	if len(held) == 0 {
		return Finding{}, false
	}
	return Finding{ID: "L20", Object: db,
		Message: fmt.Sprintf("App roles can see, signal or end other sessions in database %s through %s.", c.dbq, join(held)),
		Fix:     strings.Join(fix, "\n") + "\n-- as a superuser; bulkhead migrate does this when its admin URL is a superuser, and also revokes the other pg_stat_* views and pg_stat_get_* functions from PUBLIC. On a managed service (no superuser) it cannot be done; see docs/trust-model.md, Residual risks."}, true
}

// checkTempFiles is L22 and L23: one finding each for the database,
// naming every app login role whose statements may write temporary files
// without bound, and every one without a connection limit.
func (c *catalog) checkTempFiles() []Finding {
	var out []Finding
	if f, ok := c.loginRolesFinding("L22", c.tempFree, func(names string) string {
		return fmt.Sprintf("App login roles %s may write temporary files without limit in database %s (temp_file_limit = -1).", names, c.dbq)
	},
		"ALTER ROLE %s SET temp_file_limit = '1GB';",
		"-- as a superuser (temp_file_limit is a superuser setting, so the roles cannot lift it); bulkhead migrate does this for bulkhead's app roles. Raise the value for a role whose queries need more, or set it for the whole server instead."); ok {
		out = append(out, f)
	}
	if f, ok := c.loginRolesFinding("L23", c.connFree, func(names string) string {
		return fmt.Sprintf("App login roles %s have no connection limit: each may run as many statements at once as the server allows connections.", names)
	},
		"ALTER ROLE %s CONNECTION LIMIT 20;",
		"-- as a role with CREATEROLE (the roles cannot change their own limit); size each to what one service may take from every tenant. bulkhead gives its gateway 200 and each function 20 (bulkhead functions create --connection-limit)."); ok {
		out = append(out, f)
	}
	return out
}

// loginRolesFinding is one finding id for the database naming roles (the
// message says how), with fix's statement for each role and then advice;
// none without roles.
func (c *catalog) loginRolesFinding(id string, roles []role, message func(names string) string, fix, advice string) (Finding, bool) {
	if len(roles) == 0 {
		return Finding{}, false
	}
	var names, fixes []string
	for _, r := range roles {
		names = append(names, r.q)
		fixes = append(fixes, fmt.Sprintf(fix, r.q))
	}
	return Finding{ID: id, Object: Object{Kind: "database", Name: c.dbq},
		Message: message(join(names)),
		Fix:     strings.Join(fixes, "\n") + "\n" + advice}, true
}

// ---- extensions and the server

func (c *catalog) checkExtensions() []Finding {
	var out []Finding
	for _, e := range c.exts {
		obj := Object{Kind: "extension", Name: e.q}
		if e.schema == "public" && e.name != "plpgsql" {
			fix := fmt.Sprintf("CREATE SCHEMA IF NOT EXISTS extensions;\nALTER EXTENSION %s SET SCHEMA extensions;", e.q)
			if !e.relocatable {
				fix = fmt.Sprintf("-- %s cannot be moved; reinstall it (this fails while objects depend on it):\nDROP EXTENSION %s;\nCREATE SCHEMA IF NOT EXISTS extensions;\nCREATE EXTENSION %s SCHEMA extensions;", e.q, e.q, e.q)
			}
			out = append(out, Finding{ID: "S0014", Object: obj,
				Message: fmt.Sprintf("Extension %s is installed in schema public.", e.q), Fix: fix})
		}
		if e.defaultVersion != "" && e.version != e.defaultVersion {
			out = append(out, Finding{ID: "S0022", Object: obj,
				Message: fmt.Sprintf("Extension %s is at version %s; the server provides %s.", e.q, e.version, e.defaultVersion),
				Fix:     fmt.Sprintf("ALTER EXTENSION %s UPDATE;", e.q)})
		}
		switch e.name {
		case "dblink", "postgres_fdw", "file_fdw":
			out = append(out, Finding{ID: "L17", Object: obj,
				Message: fmt.Sprintf("Extension %s is installed: it reaches data outside this session's roles and row security.", e.q),
				Fix:     fmt.Sprintf("DROP EXTENSION %s;\n-- or, if it is needed: REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA %s FROM PUBLIC; and grant it to the roles that need it.", e.q, e.schemaQ)})
		}
	}
	for _, s := range c.publicUM {
		out = append(out, Finding{ID: "L17", Severity: Error, Object: Object{Kind: "user mapping", Name: "PUBLIC SERVER " + s},
			Message: fmt.Sprintf("A user mapping FOR PUBLIC on server %s lends its remote credentials to every role.", s),
			Fix:     fmt.Sprintf("DROP USER MAPPING FOR PUBLIC SERVER %s;\n-- map only the roles that need the server.", s)})
	}
	return out
}

func (c *catalog) checkServer() []Finding {
	var out []Finding
	db := Object{Kind: "database", Name: c.dbq}
	if msg := versionProblem(c.version); msg != "" {
		out = append(out, Finding{ID: "L18", Object: db, Message: msg,
			Fix: "-- Upgrade the server to the latest minor release of its major version (a restart, no dump and restore)."})
	}
	if !c.statsExtFixed {
		out = append(out, Finding{ID: "L18", Object: db,
			Message: "pg_stats_ext and pg_stats_ext_exprs do not check the caller's rights (CVE-2024-4317): this cluster was initialised before the fix.",
			Fix:     "-- Run fix-CVE-2024-4317.sql (PostgreSQL release notes for 14.12, 15.7, 16.3) in every database of the cluster, as a superuser."})
	}
	return out
}
