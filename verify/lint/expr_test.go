package lint

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The expressions below are as PostgreSQL 15 deparses them
// (pg_get_expr with search_path = pg_catalog).

func isCtx(k call) bool {
	return k.name == "current_setting" || k.schema == "auth" || k.schema == "bulkhead"
}

func perRowCalls(s, rel string) []string {
	var out []string
	for _, k := range parseExpr(s).calls(rel) {
		if !k.once && isCtx(k) && k.args.constant() {
			out = append(out, k.String())
		}
	}
	return out
}

func TestPerRowCalls(t *testing.T) {
	for _, tt := range []struct {
		name, expr string
		want       []string
	}{
		{"seed", `(tenant_id = (auth.jwt() ->> 'tenant_id'::text))`, []string{"auth.jwt"}},
		{"splinter 0003 false positive", `(tenant_id = ( SELECT (auth.jwt() ->> 'tenant_id'::text)))`, nil},
		{"sub-select of the call", `(tenant_id = (( SELECT auth.jwt() AS jwt) ->> 'tenant_id'::text))`, nil},
		{"bulkhead", `(tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id))`, nil},
		{"bulkhead per row", `(tenant_id = bulkhead.tenant_id_for('update'::text))`, []string{"bulkhead.tenant_id_for"}},
		{"current_setting with a cast", `(tenant_id = (current_setting('app.tenant_id'::text))::uuid)`, []string{"current_setting"}},
		{"row-dependent argument", `(tenant_id = bulkhead.lookup(owner_id))`, nil},
		{"correlated sub-select runs per row", `(EXISTS ( SELECT 1
   FROM s.m
  WHERE ((m.tenant_id = docs.tenant_id) AND (m.user_id = auth.uid()))))`, []string{"auth.uid"}},
		{"uncorrelated sub-select runs once", `(tenant_id IN ( SELECT m.tenant_id
   FROM s.m
  WHERE (m.user_id = current_setting('x.y'::text, true))))`, nil},
		{"string that looks like a call", `(note = 'auth.jwt()'::text)`, nil},
		{"two calls", `((auth.uid() IS NULL) OR (owner = auth.uid()))`, []string{"auth.uid", "auth.uid"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, perRowCalls(tt.expr, "docs")); diff != "" {
				t.Errorf("per-row calls in %s (-want +got):\n%s", tt.expr, diff)
			}
		})
	}
}

func TestFastForm(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`(tenant_id = (auth.jwt() ->> 'tenant_id'::text))`, `(tenant_id = ((SELECT auth.jwt()) ->> 'tenant_id'::text))`},
		{`((auth.uid() IS NULL) OR (owner = auth.uid()))`, `(((SELECT auth.uid()) IS NULL) OR (owner = (SELECT auth.uid())))`},
		{`(tenant_id = (current_setting('a'::text))::uuid)`, `(tenant_id = ((SELECT current_setting('a'::text)))::uuid)`},
	} {
		x := parseExpr(tt.in)
		var calls []call
		for _, k := range x.calls("docs") {
			if isCtx(k) {
				calls = append(calls, k)
			}
		}
		if got := x.fastForm(calls); got != tt.want {
			t.Errorf("fastForm(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestPinsColumn(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want bool
	}{
		{`(tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id))`, true},
		{`((tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id)) AND (owner = CURRENT_USER))`, true},
		{`(public OR (tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id)))`, false},
		{`((tenant_id = 'a'::text) OR (tenant_id = 'b'::text))`, true},
		{`true`, false},
		{`(( SELECT bulkhead.tenant_id() AS tenant_id) IS NOT NULL)`, false},
		{`bulkhead.tenant_id_for('x'::text) IS NOT NULL`, false},
		{`(EXISTS ( SELECT 1 FROM s.m WHERE ((m.tenant_id = docs.tenant_id) AND (m.u = CURRENT_USER))))`, true},
		{`(EXISTS ( SELECT 1 FROM s.m WHERE (m.tenant_id = m.tenant_id)))`, false},
		{`(tenant_id IN ( SELECT m.tenant_id FROM s.m))`, true},
		{`((docs.tenant_id)::text = 'x'::text)`, true},
		{`("tenant_id" = 'x'::text)`, true},
		{`(other.tenant_id = 'x'::text)`, false},
	} {
		if got := parseExpr(tt.expr).pinsColumn("docs", "tenant_id"); got != tt.want {
			t.Errorf("pinsColumn(%s) = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

func TestAlwaysTrue(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want bool
	}{
		{"true", true}, {"(true)", true}, {"(1 = 1)", true}, {"((true))", true},
		{"(true AND (tenant_id = 'a'::text))", false}, {"(1 = 2)", false}, {"( SELECT true)", false},
	} {
		if got := parseExpr(tt.expr).alwaysTrue(); got != tt.want {
			t.Errorf("alwaysTrue(%s) = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

func TestFailOpen(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want bool
	}{
		{`(tenant_id = COALESCE(NULLIF(current_setting('app.tenant_id'::text, true), ''::text), tenant_id))`, true},
		{`((auth.uid() IS NULL) OR (owner_id = auth.uid()))`, true},
		{`(tenant_id = COALESCE(( SELECT bulkhead.tenant_id() AS tenant_id), '00000000-0000-0000-0000-000000000000'::uuid))`, false},
		{`((owner_id IS NULL) OR (owner_id = auth.uid()))`, false},
		{`(tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id))`, false},
		// The column inside a cast or parentheses, after the context.
		{`((tenant_id)::text = COALESCE((( SELECT bulkhead.tenant_id() AS tenant_id))::text, (tenant_id)::text))`, true},
		{`(tenant_id = COALESCE(( SELECT bulkhead.tenant_id() AS tenant_id), docs.tenant_id))`, true},
		{`((tenant_id)::text = COALESCE((( SELECT bulkhead.tenant_id() AS tenant_id))::text, 'none'::text))`, false},
		// CASE that answers true for a missing context.
		{`CASE WHEN (( SELECT bulkhead.tenant_id() AS tenant_id) IS NULL) THEN true ELSE (tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id)) END`, true},
		{`CASE WHEN (( SELECT bulkhead.tenant_id() AS tenant_id) IS NOT NULL) THEN (tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id)) ELSE true END`, true},
		{`(CASE WHEN (current_setting('app.tenant_id'::text, true) IS NULL) THEN true ELSE false END OR false)`, true},
		{`CASE WHEN (( SELECT bulkhead.tenant_id() AS tenant_id) IS NULL) THEN false ELSE (tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id)) END`, false},
		{`CASE WHEN (( SELECT bulkhead.tenant_id() AS tenant_id) IS NULL) THEN false WHEN (tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id)) THEN true ELSE true END`, false},
		{`CASE WHEN (owner_id IS NULL) THEN true ELSE (tenant_id = ( SELECT bulkhead.tenant_id() AS tenant_id)) END`, false},
	} {
		if got := parseExpr(tt.expr).failOpen("docs", "tenant_id", isCtx); got != tt.want {
			t.Errorf("failOpen(%s) = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

func TestScanQuoting(t *testing.T) {
	toks := scan(`(x = E'it\'s' AND "We""ird" = 'a''b')`)
	var got []string
	for _, tk := range toks {
		if tk.kind == tString || tk.kind == tQIdent {
			got = append(got, tk.val)
		}
	}
	if diff := cmp.Diff([]string{"it's", `We"ird`, "a'b"}, got); diff != "" {
		t.Errorf("scan (-want +got):\n%s", diff)
	}
}

func TestVersionProblem(t *testing.T) {
	for _, tt := range []struct {
		num  int
		want bool
	}{
		{150013, true}, {150014, false}, {150018, false}, {160009, true}, {160010, false},
		{170005, true}, {170006, false}, {180000, false}, {140018, true}, {130022, false},
		{120022, true}, {90624, true},
	} {
		if got := versionProblem(tt.num) != ""; got != tt.want {
			t.Errorf("versionProblem(%d) = %q, want a problem: %v", tt.num, versionProblem(tt.num), tt.want)
		}
	}
	fixed := ` SELECT ... WHERE (pg_has_role(c.relowner, 'USAGE'::text) AND ...`
	old := ` SELECT ... WHERE (NOT (EXISTS ( SELECT 1 FROM unnest(s.stxkeys) k(k) WHERE (NOT has_column_privilege(c.oid, a.attnum, 'select'::text)))))`
	if !statsExtFixed(fixed, fixed) || statsExtFixed(old, fixed) || statsExtFixed(fixed, old) || !statsExtFixed("", "") {
		t.Error("statsExtFixed misjudges the view definitions")
	}
}

func TestSafePath(t *testing.T) {
	for p, want := range map[string]bool{
		`""`: true, ``: true, `pg_catalog, pg_temp`: true, `public`: false, `pg_temp, public`: false, `"$user", public, pg_temp`: true,
	} {
		if got := safePath(p); got != want {
			t.Errorf("safePath(%q) = %v, want %v", p, got, want)
		}
	}
}
