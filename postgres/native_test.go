package postgres_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// verifierPair is a database holding both verifiers side by side, under
// test names, and a superuser connection to call them on.
type verifierPair struct {
	e       *env
	conn    *pgx.Conn
	user    string // session_user of conn, the audience that verifies
	key     ctxtoken.Key
	logs    []string // the LOG lines of the last call
	retired ctxtoken.Key
}

func newVerifierPair(t testing.TB) *verifierPair {
	t.Helper()
	lib := pgtest.NativeLibrary(t)
	e := newEnvTB(t)
	ctx := context.Background()
	p := &verifierPair{e: e, key: e.key}
	cfg, err := pgx.ParseConfig(e.pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.Severity == "LOG" {
			p.logs = append(p.logs, n.Message)
		}
	}
	p.conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.conn.Close(context.Background()) })
	stmt, err := postgres.PLpgSQLVerifier()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		strings.Replace(stmt, "FUNCTION bulkhead.context()", "FUNCTION bulkhead.test_context_plpgsql()", 1),
		`CREATE FUNCTION bulkhead.test_context_native() RETURNS jsonb LANGUAGE c STABLE SECURITY DEFINER PARALLEL SAFE
			AS '` + lib + `', 'bulkhead_context'`,
		`ALTER FUNCTION bulkhead.test_context_plpgsql() OWNER TO bulkhead_owner`,
		`ALTER FUNCTION bulkhead.test_context_native() OWNER TO bulkhead_owner`,
		// A retired context key, for the retired-key refusal.
		`INSERT INTO bulkhead_control.keys (kid, purpose, secret, not_after) VALUES ('retiredkid', 'context', '\x` + strings.Repeat("ab", 32) + `', now() - interval '1 minute')`,
		`SET client_min_messages = log`,
	} {
		if _, err := p.conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	p.retired = ctxtoken.Key{ID: "retiredkid", Secret: []byte(strings.Repeat("\xab", 32))}
	if err := p.conn.QueryRow(ctx, `SELECT session_user`).Scan(&p.user); err != nil {
		t.Fatal(err)
	}
	return p
}

// outcome is what one verifier made of one context: its claims, or its
// error's SQLSTATE, and its LOG lines.
type outcome struct {
	claims *string
	code   string
	logs   []string
}

func (o outcome) String() string {
	c := "NULL"
	if o.claims != nil {
		c = *o.claims
	}
	return fmt.Sprintf("claims=%s error=%q logs=%q", c, o.code, o.logs)
}

func (p *verifierPair) call(t testing.TB, fn, token string) outcome {
	t.Helper()
	ctx := context.Background()
	p.logs = nil
	var o outcome
	err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('bulkhead.context', $1, true)`, token); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT bulkhead.`+fn+`()::text`).Scan(&o.claims)
	})
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe):
		o.code = pe.Code
	case err != nil:
		t.Fatalf("%s: %v", fn, err)
	}
	o.logs = p.logs
	return o
}

// compare calls both verifiers on token and fails the test when they
// disagree on the claims, the error or the LOG lines.
func (p *verifierPair) compare(t testing.TB, name, token string) outcome {
	t.Helper()
	want := p.call(t, "test_context_plpgsql", token)
	got := p.call(t, "test_context_native", token)
	if want.String() != got.String() {
		t.Errorf("%s: the verifiers disagree\n plpgsql: %s\n native:  %s", name, want, got)
	}
	return want
}

// sign signs payload (any bytes) as bulkhead signs a context, with key.
func sign(key ctxtoken.Key, payload []byte) string {
	signed := ctxtoken.Prefix + "." + key.ID + "." + base64.RawURLEncoding.EncodeToString(payload)
	h := hmac.New(sha256.New, key.Secret)
	h.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// TestNativeVerifierMatchesPLpgSQL gives the native verifier and the
// PL/pgSQL one of migration 25 the same contexts, valid, forged,
// malformed and refused for each reason the verifier knows, and requires
// the same answer from both: the claims, the error, and the LOG line.
func TestNativeVerifierMatchesPLpgSQL(t *testing.T) {
	p := newVerifierPair(t)
	e := p.e
	ctx := context.Background()
	now := time.Now().Unix()
	raw := func(edit func(m map[string]any)) string {
		return e.signRaw(t, "pa", func(m map[string]any) {
			m["aud"] = p.user
			edit(m)
		})
	}
	valid := raw(func(map[string]any) {})

	// A suspended tenant, and one that moved after its contexts were minted.
	if _, err := p.conn.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'suspended' WHERE slug = 'pb'`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.conn.Exec(ctx, `UPDATE bulkhead_control.tenants SET contexts_from = now() + interval '30 seconds' WHERE slug = 'sa'`); err != nil {
		t.Fatal(err)
	}
	other := func(slug string) string {
		return e.signRaw(t, slug, func(m map[string]any) { m["aud"] = p.user })
	}
	mac := valid[strings.LastIndexByte(valid, '.')+1:]
	body := valid[:strings.LastIndexByte(valid, '.')]
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	cases := []struct {
		name  string
		token string
		valid bool
	}{
		{"valid", valid, true},
		{"valid, another silo tenant", other("sb"), true},
		{"empty", "", false},
		{"no context key at all", "v1", false},
		{"another version", "v2" + valid[2:], false},
		{"three segments", "v1.abc.def", false},
		{"five segments", valid + ".x", false},
		{"empty segment", "v1..abc.def", false},
		{"padding", valid + "=", false},
		{"a space", "v1.a b.c.d", false},
		{"a newline at the end", valid + "\n", false},
		{"not ASCII", "v1.é.c.d", false},
		{"4097 characters", "v1.k." + strings.Repeat("a", 4097-49) + "." + strings.Repeat("a", 43), false},
		{"4096 characters, unknown key", "v1.k." + strings.Repeat("a", 4096-49) + "." + strings.Repeat("a", 43), false},
		{"4097 characters of which some are two bytes", "v1.k." + strings.Repeat("é", 4097-49) + "." + strings.Repeat("a", 43), false},
		{"kid of 33", "v1." + strings.Repeat("k", 33) + ".abc." + mac, false},
		{"kid of 32, unknown", "v1." + strings.Repeat("k", 32) + ".abc." + mac, false},
		{"MAC of 42", body + "." + mac[:42], false},
		{"MAC of 44", body + "." + mac + "A", false},
		{"MAC flipped first", body + "." + flip(mac, 0), false},
		{"MAC flipped last", body + "." + flip(mac, 42), false},
		{"payload flipped", flip(body, len(body)-1) + "." + mac, false},
		{"unknown kid", "v1.nosuchkid." + body[strings.IndexByte(body[3:], '.')+4:] + "." + mac, false},
		{"a JWT key's kid", "", false},
		{"retired key", sign(p.retired, []byte(fmt.Sprintf(`{"tenant_id":%q,"aud":%q,"iat":%d,"exp":%d}`, e.tenants["pa"].ID, p.user, now, now+60))), false},
		{"expired", raw(func(m map[string]any) { m["iat"], m["exp"] = now-100, now-1 }), false},
		{"issued in the future", raw(func(m map[string]any) { m["iat"], m["exp"] = now+60, now+120 }), false},
		{"issued 4 s ahead", raw(func(m map[string]any) { m["iat"], m["exp"] = now+4, now+60 }), true},
		{"lifetime 301", raw(func(m map[string]any) { m["iat"], m["exp"] = now-1, now+300 }), false},
		{"lifetime 300", raw(func(m map[string]any) { m["iat"], m["exp"] = now-1, now+299 }), true},
		{"fractional times", raw(func(m map[string]any) { m["iat"], m["exp"] = float64(now)-0.5, float64(now)+59.5 }), true},
		{"exponent times", raw(func(m map[string]any) {
			m["iat"], m["exp"] = json.Number(fmt.Sprintf("%de0", now)), json.Number(fmt.Sprintf("%d.0e0", now+60))
		}), true},
		{"exp missing", raw(func(m map[string]any) { delete(m, "exp") }), false},
		{"iat missing", raw(func(m map[string]any) { delete(m, "iat") }), false},
		{"exp a string", raw(func(m map[string]any) { m["exp"] = fmt.Sprint(now + 60) }), false},
		{"iat null", raw(func(m map[string]any) { m["iat"] = nil }), false},
		{"exp true", raw(func(m map[string]any) { m["exp"] = true }), false},
		{"exp an object", raw(func(m map[string]any) { m["exp"] = map[string]any{"n": now + 60} }), false},
		{"aud missing", raw(func(m map[string]any) { delete(m, "aud") }), false},
		{"aud null", raw(func(m map[string]any) { m["aud"] = nil }), false},
		{"aud another role", raw(func(m map[string]any) { m["aud"] = e.db.AppRole }), false},
		{"aud with a suffix", raw(func(m map[string]any) { m["aud"] = p.user + " " }), false},
		{"aud a list", raw(func(m map[string]any) { m["aud"] = []string{p.user} }), false},
		{"aud a number", raw(func(m map[string]any) { m["aud"] = 5 }), false},
		{"tenant missing", raw(func(m map[string]any) { delete(m, "tenant_id") }), false},
		{"tenant null", raw(func(m map[string]any) { m["tenant_id"] = nil }), false},
		{"tenant unknown", raw(func(m map[string]any) { m["tenant_id"] = "00000000-0000-4000-8000-000000000000" }), false},
		{"tenant suspended", other("pb"), false},
		{"issued before the tenant moved", other("sa"), false},
		{"tenant not a uuid", raw(func(m map[string]any) { m["tenant_id"] = "acme" }), false},
		{"tenant a number", raw(func(m map[string]any) { m["tenant_id"] = 7 }), false},
		{"tenant in braces", raw(func(m map[string]any) { m["tenant_id"] = "{" + string(e.tenants["pa"].ID) + "}" }), true},
		{"expired, iat beyond a float8 (never parsed)", raw(func(m map[string]any) { m["iat"], m["exp"] = json.Number("1e-400"), now-1 }), false},
		{"lifetime overflows a float8", raw(func(m map[string]any) { m["iat"], m["exp"] = json.Number("-1.7e308"), json.Number("1.7e308") }), false},
		{"exp out of float range", raw(func(m map[string]any) { m["exp"] = json1e400{} }), false},
		{"duplicate keys", sign(e.key, []byte(fmt.Sprintf(`{"tenant_id":%q,"aud":"x","aud":%q,"iat":%d,"exp":%d}`, e.tenants["pa"].ID, p.user, now, now+60))), true},
		{"payload an array", sign(e.key, []byte(`[1,2]`)), false},
		{"payload a string", sign(e.key, []byte(`"x"`)), false},
		{"payload null", sign(e.key, []byte(`null`)), false},
		{"payload not JSON", sign(e.key, []byte(`{"exp":`)), false},
		{"payload empty", sign(e.key, nil), false},
		{"payload invalid UTF-8", sign(e.key, []byte("{\"x\":\"\xff\"}")), false},
		{"payload with NUL", sign(e.key, []byte("{\"x\":\"\x00\"}")), false},
		{"payload with \\u0000", sign(e.key, []byte(`{"x":"\u0000"}`)), false},
		{"payload one byte", sign(e.key, []byte("{")), false},
		{"aud true", raw(func(m map[string]any) { m["aud"] = true }), false},
		{"aud an object", raw(func(m map[string]any) { m["aud"] = map[string]any{p.user: p.user} }), false},
		{"aud nested 1000 deep", raw(func(m map[string]any) {
			m["aud"] = json.RawMessage(strings.Repeat("[", 1000) + strings.Repeat("]", 1000))
		}), false},
		{"aud in unicode escapes", raw(func(m map[string]any) {
			esc := ""
			for _, r := range p.user {
				esc += fmt.Sprintf(`\u%04x`, r)
			}
			m["aud"] = json.RawMessage(`"` + esc + `"`)
		}), true},
		{"tenant an object", raw(func(m map[string]any) { m["tenant_id"] = map[string]any{"id": e.tenants["pa"].ID} }), false},
		{"tenant true", raw(func(m map[string]any) { m["tenant_id"] = true }), false},
		{"tenant upper case, no hyphens", raw(func(m map[string]any) {
			m["tenant_id"] = strings.ToUpper(strings.ReplaceAll(string(e.tenants["pa"].ID), "-", ""))
		}), true},
		{"exp -0", raw(func(m map[string]any) { m["exp"] = json.RawMessage("-0") }), false},
		{"exp 400 digits", raw(func(m map[string]any) { m["exp"] = json.RawMessage("1" + strings.Repeat("0", 400)) }), false},
		{"iat 1e-400", raw(func(m map[string]any) { m["iat"] = json.RawMessage("1e-400") }), false},
		{"exp with 60 decimals", raw(func(m map[string]any) {
			m["exp"] = json.RawMessage(fmt.Sprintf("%d.%s", now+60, strings.Repeat("9", 60)))
		}), true},
	}
	var jwtKid string
	if err := p.conn.QueryRow(ctx, `SELECT kid FROM bulkhead_control.keys WHERE purpose = 'jwt' LIMIT 1`).Scan(&jwtKid); err != nil {
		t.Fatal(err)
	}
	for i := range cases {
		if cases[i].name == "a JWT key's kid" {
			cases[i].token = "v1." + jwtKid + "." + body[strings.IndexByte(body[3:], '.')+4:] + "." + mac
		}
	}
	// A payload whose base64url length is 1 modulo 4 cannot be made by
	// encoding; make one by hand, signed.
	{
		signed := ctxtoken.Prefix + "." + e.key.ID + ".abcde"
		h := hmac.New(sha256.New, e.key.Secret)
		h.Write([]byte(signed))
		cases = append(cases, struct {
			name  string
			token string
			valid bool
		}{"payload of 5 base64 characters", signed + "." + base64.RawURLEncoding.EncodeToString(h.Sum(nil)), false})
	}
	for _, c := range cases {
		o := p.compare(t, c.name, c.token)
		if (o.claims != nil) != c.valid {
			t.Errorf("%s: the PL/pgSQL verifier gave %s, want valid=%t", c.name, o, c.valid)
		}
	}

	// The bound on iat: 5.5 s ahead of the database's clock is refused.
	// Dated from the database's clock just before; tried again should the
	// call come more than half a second later.
	for try := 0; ; try++ {
		var dbNow float64
		if err := p.conn.QueryRow(ctx, `SELECT extract(epoch FROM clock_timestamp())::float8`).Scan(&dbNow); err != nil {
			t.Fatal(err)
		}
		tok := raw(func(m map[string]any) {
			m["iat"], m["exp"] = json.Number(fmt.Sprintf("%.3f", dbNow+5.5)), json.Number(fmt.Sprintf("%.3f", dbNow+60))
		})
		if o := p.compare(t, "issued 5.5 s ahead", tok); o.claims == nil || try == 3 {
			if o.claims != nil {
				t.Errorf("issued 5.5 s ahead: the PL/pgSQL verifier accepted it four times")
			}
			break
		}
	}
}

// json1e400 marshals as a JSON number too large for a float8.
type json1e400 struct{}

func (json1e400) MarshalJSON() ([]byte, error) { return []byte("1e400"), nil }

// FuzzNativeVerifier gives both verifiers the same contexts: as written by
// the fuzzer, and with the fuzzer's bytes as a payload signed with the
// real key, which reaches every check past the signature.
func FuzzNativeVerifier(f *testing.F) {
	now := time.Now().Unix()
	f.Add("v1.abc.def.ghi", []byte(nil), false)
	f.Add("", []byte(fmt.Sprintf(`{"tenant_id":"TENANT","aud":"AUD","iat":%d,"exp":%d}`, now, now+60)), true)
	f.Add("", []byte(fmt.Sprintf(`{"tenant_id":"TENANT","aud":"AUD","iat":%d,"exp":%d,"scope":["select"]}`, now, now+400)), true)
	f.Add("", []byte(`{"tenant_id":"TENANT","aud":"AUD","iat":1e2,"exp":-0.0}`), true)
	f.Add("", []byte(`{"exp":1}`), true)
	f.Add("v1."+strings.Repeat("A", 40)+".x."+strings.Repeat("_", 43), []byte(nil), false)
	p := newVerifierPair(f)
	tid := string(p.e.tenants["pa"].ID)
	f.Fuzz(func(t *testing.T, token string, payload []byte, signed bool) {
		if strings.ContainsRune(token, 0) {
			return // a setting cannot hold NUL; set_config refuses it alike
		}
		if signed {
			s := strings.ReplaceAll(string(payload), "TENANT", tid)
			s = strings.ReplaceAll(s, "AUD", p.user)
			token = sign(p.key, []byte(s))
		}
		p.compare(t, "fuzzed", token)
	})
}

// TestNativeVerifierInstall installs the native verifier with the
// command's method and checks it decides as the PL/pgSQL one did for
// tenants' rows, with the same grants, owner and attributes, then removes
// it, which puts back the PL/pgSQL one's body, settings and attributes;
// and the refusals, each changing nothing.
func TestNativeVerifierInstall(t *testing.T) {
	lib := pgtest.NativeLibrary(t)
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.RemoveNativeVerifier(ctx); err != nil { // the template may have it
		t.Fatal(err)
	}
	v, err := e.db.VerifierStatus(ctx)
	if err != nil || v.Kind != "plpgsql" {
		t.Fatalf("VerifierStatus = %+v, %v; want plpgsql", v, err)
	}
	sqlBody := contextBody(t, e)
	sqlAttrs := contextAttrs(t, e)

	// Refused: a library that is not there; one written for another
	// migration's verifier.
	for _, c := range []struct {
		lib, code string
	}{
		{"/nonexistent/bulkhead_verifier.so", "native_library_missing"},
		{`/nonexistent/it's', 'x'; DROP TABLE bulkhead_control.keys; --\.so`, "native_library_missing"},
		{"$libdir/bulkhead_no_such_library", "native_library_missing"},
		{oldLibrary(t), "native_library_version"},
	} {
		_, err := e.db.InstallNativeVerifier(ctx, c.lib)
		if fault.CodeOf(err) != c.code {
			t.Errorf("InstallNativeVerifier(%s) = %v; want %s", c.lib, err, c.code)
		}
		if got := contextBody(t, e); got != sqlBody {
			t.Errorf("after a refused install, bulkhead.context() changed: %s", got)
		}
	}

	v, err = e.db.InstallNativeVerifier(ctx, lib)
	if err != nil || v.Kind != "native" || v.Library != lib {
		t.Fatalf("InstallNativeVerifier = %+v, %v", v, err)
	}
	var owner, config string
	var definer bool
	if err := e.adminConn(t).QueryRow(ctx, `SELECT pg_get_userbyid(proowner), prosecdef, coalesce(array_to_string(proconfig, ','), '')
		FROM pg_proc WHERE oid = 'bulkhead.context()'::regprocedure`).Scan(&owner, &definer, &config); err != nil {
		t.Fatal(err)
	}
	if owner != "bulkhead_owner" || !definer || config != "" {
		t.Errorf("native bulkhead.context(): owner %s, definer %t, config %q", owner, definer, config)
	}
	if got, want := contextAttrs(t, e), sqlAttrs; got != want {
		t.Errorf("native bulkhead.context()'s attributes are %s, want the PL/pgSQL one's %s", got, want)
	}

	// Each tenant sees its own canary and nothing else; forged and
	// expired contexts see nothing.
	for slug := range e.tenants {
		for other := range e.tenants {
			var n int
			err := postgres.ScopedTx(ctx, e.db.App(), e.mintTB(t, slug), postgres.ScopeOptions{}, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+e.table(other, "projects")+` WHERE name = $1`, "canary-"+other).Scan(&n)
			})
			if err != nil && other == slug {
				t.Fatalf("%s reading its own rows: %v", slug, err)
			}
			if want := map[bool]int{true: 1, false: 0}[slug == other]; err == nil && n != want {
				t.Errorf("%s sees %d rows of %s's projects, want %d", slug, n, other, want)
			}
		}
	}
	forged := e.mint(t, "pa", nil)
	forged = forged[:len(forged)-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(forged, "A")]
	expired := e.mint(t, "pa", func(c *ctxtoken.Claims) { c.IssuedAt, c.ExpiresAt = c.IssuedAt-120, c.IssuedAt-60 })
	for name, tok := range map[string]string{"forged": forged, "expired": expired} {
		var n int
		err := postgres.ScopedTx(ctx, e.db.App(), tok, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM `+e.table("pa", "projects")).Scan(&n)
		})
		if err == nil && n != 0 {
			t.Errorf("a %s context reads %d rows", name, n)
		}
		err = postgres.ScopedTx(ctx, e.db.App(), tok, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+e.table("pa", "projects")+` (tenant_id, name) VALUES ($1, 'forged')`, e.tenants["pa"].ID)
			return err
		})
		if err == nil {
			t.Errorf("a %s context inserted a row", name)
		}
	}

	// Installing again is harmless; removing restores migration 25's body.
	if _, err := e.db.InstallNativeVerifier(ctx, lib); err != nil {
		t.Fatal(err)
	}
	v, err = e.db.RemoveNativeVerifier(ctx)
	if err != nil || v.Kind != "plpgsql" {
		t.Fatalf("RemoveNativeVerifier = %+v, %v", v, err)
	}
	if got := contextBody(t, e); got != sqlBody {
		t.Errorf("after removal, bulkhead.context() is %s, want %s", got, sqlBody)
	}
	if got := contextAttrs(t, e); got != sqlAttrs {
		t.Errorf("after removal, bulkhead.context()'s attributes are %s, want %s", got, sqlAttrs)
	}
	var events int
	if err := e.adminConn(t).QueryRow(ctx, `SELECT (SELECT count(*) FROM bulkhead_audit.inbox WHERE event->>'action' IN ('verifier:Native', 'verifier:PLpgSQL'))
		+ (SELECT count(*) FROM bulkhead_audit.events WHERE action IN ('verifier:Native', 'verifier:PLpgSQL'))`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events < 3 {
		t.Errorf("%d verifier events audited, want at least 3 (two installs and a removal)", events)
	}
}

// TestNativeVerifierNeedsSuperuser: a managed service's admin role cannot
// create a function in C, and is told so before anything changes.
func TestNativeVerifierNeedsSuperuser(t *testing.T) {
	pg := pgtest.NewManagedDB(t, pgtest.ManagedRDS, false)
	ctx := context.Background()
	if _, err := postgres.Setup(ctx, pg.AdminURL, nil); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: pg.AdminURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.InstallNativeVerifier(ctx, postgres.DefaultNativeLibrary)
	if fault.CodeOf(err) != "native_verifier_needs_superuser" {
		t.Fatalf("InstallNativeVerifier as a managed admin = %v", err)
	}
	v, err := db.VerifierStatus(ctx)
	if err != nil || v.Kind != "plpgsql" {
		t.Fatalf("VerifierStatus = %+v, %v", v, err)
	}
}

// TestPLpgSQLVerifierIsTheLatest: the statement RemoveNativeVerifier puts
// back is the verifier of the last migration that defines one, and the
// native library says it reproduces that migration's.
func TestPLpgSQLVerifierIsTheLatest(t *testing.T) {
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	latest := ""
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join("migrations", en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "FUNCTION bulkhead.context()") {
			latest = en.Name()
		}
	}
	if want := fmt.Sprintf("%05d_", postgres.NativeVerifierVersion); !strings.HasPrefix(latest, want) {
		t.Errorf("the last migration that defines bulkhead.context() is %s, but NativeVerifierVersion is %d: update pgext/bulkhead_verifier.c to its checks, then both versions", latest, postgres.NativeVerifierVersion)
	}
	src, err := os.ReadFile("../pgext/bulkhead_verifier.c")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("#define BULKHEAD_VERIFIER_VERSION %d\n", postgres.NativeVerifierVersion); !strings.Contains(string(src), want) {
		t.Errorf("pgext/bulkhead_verifier.c lacks %q", want)
	}
	stmt, err := postgres.PLpgSQLVerifier()
	if err != nil || !strings.HasPrefix(stmt, "CREATE OR REPLACE FUNCTION bulkhead.context() RETURNS jsonb") || !strings.HasSuffix(stmt, "$fn$;") {
		t.Errorf("PLpgSQLVerifier() = %q, %v", stmt, err)
	}
}

// contextBody is bulkhead.context()'s language and body, as stored.
func contextBody(t *testing.T, e *env) string {
	t.Helper()
	var s string
	if err := e.adminConn(t).QueryRow(context.Background(), `SELECT l.lanname || ':' || md5(p.prosrc) || ':' || coalesce(array_to_string(p.proconfig, ','), '')
		FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = 'bulkhead.context()'::regprocedure`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// contextAttrs is what of bulkhead.context() other than its language,
// body and settings decides who may call it and how it runs: its grants,
// owner, SECURITY DEFINER, volatility, parallel safety, leakproofness,
// strictness, then its cost and rows.
func contextAttrs(t *testing.T, e *env) string {
	t.Helper()
	var s string
	if err := e.adminConn(t).QueryRow(context.Background(), `SELECT format('acl=%s owner=%s definer=%s volatile=%s parallel=%s leakproof=%s strict=%s returns=%s cost=%s rows=%s',
		p.proacl, pg_get_userbyid(p.proowner), p.prosecdef, p.provolatile, p.proparallel, p.proleakproof, p.proisstrict, p.prorettype::regtype, p.procost, p.prorows)
		FROM pg_proc p WHERE p.oid = 'bulkhead.context()'::regprocedure`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// oldLibrary builds the native verifier as if it were written for an
// older migration's verifier.
func oldLibrary(t *testing.T) string {
	t.Helper()
	src := string(pgtest.NativeSource(t))
	cur := fmt.Sprintf("#define BULKHEAD_VERIFIER_VERSION %d\n", postgres.NativeVerifierVersion)
	if !strings.Contains(src, cur) {
		t.Fatalf("the source lacks %q", cur)
	}
	return pgtest.NativeLibraryFrom(t, []byte(strings.Replace(src, cur, "#define BULKHEAD_VERIFIER_VERSION 16\n", 1)))
}

// TestSuiteVerifier: every test database runs the verifier the suite was
// asked for, so that `make test`'s second pass does test the native one.
func TestSuiteVerifier(t *testing.T) {
	db, _ := pgtest.Open(t)
	v, err := db.VerifierStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := "plpgsql"
	if os.Getenv(pgtest.EnvVerifier) == "native" {
		want = "native"
	}
	if v.Kind != want {
		t.Fatalf("the test database runs the %s verifier, want %s (%s=%q)", v.Kind, want, pgtest.EnvVerifier, os.Getenv(pgtest.EnvVerifier))
	}
}

// TestNativeVerifierSnapshots: both verifiers read the key and the
// tenant's status as the statement's snapshot has them: a transaction
// sees its own suspension of the tenant, and a REPEATABLE READ transaction
// keeps seeing the tenant active after another one suspends it.
func TestNativeVerifierSnapshots(t *testing.T) {
	p := newVerifierPair(t)
	ctx := context.Background()
	tok := p.e.signRaw(t, "pa", func(m map[string]any) { m["aud"] = p.user })
	both := func(tx pgx.Tx) (string, string) {
		t.Helper()
		if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('bulkhead.context', $1, true)`, tok); err != nil {
			t.Fatal(err)
		}
		var a, b *string
		if err := tx.QueryRow(ctx, `SELECT bulkhead.test_context_plpgsql()->>'tenant_id', bulkhead.test_context_native()->>'tenant_id'`).Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		deref := func(s *string) string {
			if s == nil {
				return "NULL"
			}
			return *s
		}
		return deref(a), deref(b)
	}
	id := string(p.e.tenants["pa"].ID)

	// Its own uncommitted suspension.
	tx, err := p.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'suspended' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if a, b := both(tx); a != "NULL" || b != "NULL" {
		t.Errorf("after suspending the tenant in the same transaction: plpgsql %s, native %s; want both NULL", a, b)
	}
	tx.Rollback(ctx)

	// Another transaction's suspension, after this one's snapshot.
	rr, err := p.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Rollback(ctx)
	if a, b := both(rr); a != id || b != id {
		t.Fatalf("before: plpgsql %s, native %s; want %s", a, b, id)
	}
	other := p.e.adminConn(t)
	if _, err := other.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'suspended' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if a, b := both(rr); a != id || b != id {
		t.Errorf("in a REPEATABLE READ transaction begun before the suspension: plpgsql %s, native %s; want both %s", a, b, id)
	}
	rr.Rollback(ctx)
	// A new transaction sees it.
	tx, err = p.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if a, b := both(tx); a != "NULL" || b != "NULL" {
		t.Errorf("after the suspension: plpgsql %s, native %s; want both NULL", a, b)
	}
}

// TestNativeVerifierIndexTampering: the native verifier reads its rows
// through the tables' primary-key indexes; an owner who replaces one with
// an index that could miss rows (partial) or drops it makes every context
// fail with an error, never pass and never quietly read as "unknown key".
func TestNativeVerifierIndexTampering(t *testing.T) {
	lib := pgtest.NativeLibrary(t)
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.InstallNativeVerifier(ctx, lib); err != nil {
		t.Fatal(err)
	}
	admin := e.adminConn(t)
	read := func() (int, error) {
		var n int
		err := postgres.ScopedTx(ctx, e.db.App(), e.mintTB(t, "pa"), postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM `+e.table("pa", "projects")).Scan(&n)
		})
		return n, err
	}
	if n, err := read(); err != nil || n != 1 {
		t.Fatalf("before: %d rows, %v", n, err)
	}
	for _, c := range []struct {
		name, tamper, restore string
	}{
		{"partial", `ALTER TABLE bulkhead_control.keys DROP CONSTRAINT keys_pkey;
			CREATE UNIQUE INDEX keys_pkey ON bulkhead_control.keys (kid) WHERE purpose = 'jwt'`,
			`DROP INDEX bulkhead_control.keys_pkey; ALTER TABLE bulkhead_control.keys ADD PRIMARY KEY (kid)`},
		{"dropped", `ALTER TABLE bulkhead_control.tenants DROP CONSTRAINT tenants_pkey CASCADE`,
			`ALTER TABLE bulkhead_control.tenants ADD PRIMARY KEY (id)`},
	} {
		if _, err := admin.Exec(ctx, c.tamper); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		n, err := read()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || !strings.Contains(pe.Message, "bulkhead") {
			t.Errorf("%s index: %d rows, %v; want the verifier's error", c.name, n, err)
		}
		if _, err := admin.Exec(ctx, c.restore); err != nil {
			t.Fatalf("restore after %s: %v", c.name, err)
		}
	}
}

// TestNativeVerifierNeedsUTF8: in a database of another encoding, where
// the verifier would have to look up a conversion, it is not installed.
func TestNativeVerifierNeedsUTF8(t *testing.T) {
	lib := pgtest.NativeLibrary(t)
	ctx := context.Background()
	d := pgtest.NewDB(t)
	admin, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := d.Name + "_latin1"
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name+` ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
	u := strings.Replace(d.AdminURL, "/"+d.Name, "/"+name, 1)
	if _, err := postgres.Setup(ctx, u, nil); err != nil {
		t.Fatalf("migrate a LATIN1 database: %v", err)
	}
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.InstallNativeVerifier(ctx, lib); fault.CodeOf(err) != "native_needs_utf8" {
		t.Fatalf("InstallNativeVerifier in a LATIN1 database: %v", err)
	}
	if v, err := db.VerifierStatus(ctx); err != nil || v.Kind != "plpgsql" {
		t.Fatalf("VerifierStatus = %+v, %v", v, err)
	}
}

// TestVerifierParallelQuery: both verifiers, called for every row of a
// parallel scan (they are PARALLEL SAFE, so the workers run them too),
// give the same verified tenant on every row as without parallelism. Row
// security's own call is an init-plan in the leader, which PostgreSQL 15
// does not put under a Gather; this is where the native verifier runs in
// a worker.
func TestVerifierParallelQuery(t *testing.T) {
	p := newVerifierPair(t)
	e := p.e
	ctx := context.Background()
	const rows = 3000
	e.exec(t, e.mintTB(t, "pa"), `INSERT INTO app.projects (name) SELECT 'bulk-' || g FROM generate_series(1, $1::int) g`, rows)
	tok := e.signRaw(t, "pa", func(m map[string]any) { m["aud"] = p.user })
	for _, fn := range []string{"test_context_plpgsql", "test_context_native"} {
		for _, parallel := range []bool{false, true} {
			var n int
			var plan strings.Builder
			err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
				set := []string{`SELECT pg_catalog.set_config('bulkhead.context', $1, true)`}
				if parallel {
					set = append(set, `SET LOCAL parallel_setup_cost = 0`, `SET LOCAL parallel_tuple_cost = 0`,
						`SET LOCAL min_parallel_table_scan_size = 0`, `SET LOCAL max_parallel_workers_per_gather = 2`,
						`SET LOCAL parallel_leader_participation = off`, `SET LOCAL enable_bitmapscan = off`,
						`SET LOCAL enable_indexscan = off`, `SET LOCAL enable_indexonlyscan = off`)
				} else {
					set = append(set, `SET LOCAL max_parallel_workers_per_gather = 0`)
				}
				for i, q := range set {
					var args []any
					if i == 0 {
						args = []any{tok}
					}
					if _, err := tx.Exec(ctx, q, args...); err != nil {
						return err
					}
				}
				q := `SELECT count(*) FROM app.projects WHERE (bulkhead.` + fn + `()->>'tenant_id')::uuid = tenant_id`
				rs, err := tx.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) `+q)
				if err != nil {
					return err
				}
				for rs.Next() {
					var line string
					if err := rs.Scan(&line); err != nil {
						return err
					}
					plan.WriteString(line + "\n")
				}
				if err := rs.Err(); err != nil {
					return err
				}
				return tx.QueryRow(ctx, q).Scan(&n)
			})
			if err != nil {
				t.Fatalf("%s, parallel %t: %v", fn, parallel, err)
			}
			if parallel {
				// The executed plan is the evidence: whether a client's
				// own execution of the query runs in parallel is the
				// server's choice, so the count comes from EXPLAIN ANALYZE.
				if !strings.Contains(plan.String(), "Workers Launched: 2") {
					t.Fatalf("%s: no parallel workers ran:\n%s", fn, plan.String())
				}
				if !strings.Contains(plan.String(), fmt.Sprintf("Gather (actual rows=%d ", rows+1)) || !strings.Contains(plan.String(), "Rows Removed by Filter: 0") ||
					regexp.MustCompile(`Rows Removed by Filter: [1-9]`).MatchString(plan.String()) {
					t.Errorf("%s: the parallel workers did not verify every row as pa's:\n%s", fn, plan.String())
				}
			}
			if n != rows+1 {
				t.Errorf("%s, parallel %t: %d rows verified as pa's, want %d", fn, parallel, n, rows+1)
			}
		}
	}
}

// TestMigrationReplacingNativeIsReported: a migration of a later release
// that changes bulkhead.context() replaces the native verifier with its
// own PL/pgSQL one (its checks must not run in an older library), and
// Setup says so, once; a Setup that applies nothing, or that replaces a
// PL/pgSQL verifier, says nothing.
func TestMigrationReplacingNativeIsReported(t *testing.T) {
	lib := pgtest.NativeLibrary(t)
	e := newEnv(t)
	ctx := context.Background()
	stmt, err := postgres.PLpgSQLVerifier()
	if err != nil {
		t.Fatal(err)
	}
	later := fstest.MapFS{}
	if err := fs.WalkDir(postgres.MigrationFS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(postgres.MigrationFS(), p)
		later[p] = &fstest.MapFile{Data: b}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	add := func(version int) {
		later[fmt.Sprintf("%05d_later_verifier.sql", version)] = &fstest.MapFile{Data: []byte(
			"-- +goose Up\n-- +goose StatementBegin\n" + stmt + ";\n-- +goose StatementEnd\n")}
	}
	if _, err := e.db.InstallNativeVerifier(ctx, lib); err != nil {
		t.Fatal(err)
	}
	rep, err := postgres.Setup(ctx, e.pg.AdminURL, nil)
	if err != nil || len(rep.Applied) != 0 || rep.NativeReplaced {
		t.Fatalf("Setup with nothing to apply = %+v, %v", rep, err)
	}
	add(990)
	rep, err = postgres.SetupWithMigrations(ctx, e.pg.AdminURL, later)
	if err != nil || fmt.Sprint(rep.Applied) != "[990]" || !rep.NativeReplaced {
		t.Fatalf("Setup with a later verifier over the native one = %+v, %v; want [990] applied and NativeReplaced", rep, err)
	}
	if v, err := e.db.VerifierStatus(ctx); err != nil || v.Kind != "plpgsql" {
		t.Fatalf("VerifierStatus after it = %+v, %v", v, err)
	}
	rep, err = postgres.SetupWithMigrations(ctx, e.pg.AdminURL, later)
	if err != nil || len(rep.Applied) != 0 || rep.NativeReplaced {
		t.Fatalf("Setup again = %+v, %v", rep, err)
	}
	add(991)
	rep, err = postgres.SetupWithMigrations(ctx, e.pg.AdminURL, later)
	if err != nil || fmt.Sprint(rep.Applied) != "[991]" || rep.NativeReplaced {
		t.Fatalf("Setup with a later verifier over a PL/pgSQL one = %+v, %v; want [991] applied, nothing replaced", rep, err)
	}
	// A tenant still reads its own rows, and only those, under the
	// later verifier.
	if got := e.names(t, e.mint(t, "pa", nil), "pa"); fmt.Sprint(got) != "[canary-pa]" {
		t.Fatalf("pa reads %v", got)
	}
	if got := e.names(t, e.mint(t, "pb", nil), "pb"); fmt.Sprint(got) != "[canary-pb]" {
		t.Fatalf("pb reads %v", got)
	}
}
