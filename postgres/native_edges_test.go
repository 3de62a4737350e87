package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestNativeVerifierBoundaries gives both verifiers contexts that sit
// exactly on the bounds of their time checks, and tenants in every status.
// Each case runs in one DO block, so that statement_timestamp(), which
// both verifiers compare with, is the time the block signed the context
// against: exp equal to it is expired; iat 5 s ahead of it is not in the
// future; a key whose not_after equals it is retired, a microsecond later
// it is not; an iat equal to the tenant's contexts_from is not issued
// before the move, a microsecond earlier it is. A verifier that compares
// with < where the other compares with <= disagrees on one of them, and
// both must give the answer migration 25 defines.
func TestNativeVerifierBoundaries(t *testing.T) {
	p := newVerifierPair(t)
	ctx := context.Background()
	tid := string(p.e.tenants["pa"].ID)
	if _, err := p.conn.Exec(ctx, `INSERT INTO bulkhead_control.keys (kid, purpose, secret) VALUES ('edgekid', 'context', '\x`+strings.Repeat("cd", 32)+`'),
		('recordkid', 'record', '\x`+strings.Repeat("cd", 32)+`'), ('adminkid', 'admin-jwt', '\x`+strings.Repeat("cd", 32)+`')`); err != nil {
		t.Fatal(err)
	}
	// iat and exp are float8 expressions in SQL over now, the epoch of
	// statement_timestamp() as the verifiers compute it (date_part), and
	// go into the payload as float8 text, which reads back as the same
	// float8; setup runs first in the same block.
	const st = "pg_catalog.statement_timestamp()"
	epoch := func(ts string) string { return "pg_catalog.date_part('epoch', " + ts + ")" }
	setTenant := func(set string) string {
		return "UPDATE bulkhead_control.tenants SET " + set + " WHERE id = '" + tid + "'"
	}
	cases := []struct {
		name, setup, iat, exp, kid string
		why                        string // the LOG line's reason; "" when valid
	}{
		{name: "exp now", iat: "now - 10", exp: "now", why: "invalid tenant context (expired)"},
		{name: "exp a microsecond later", iat: "now - 10", exp: epoch(st + " + interval '1 microsecond'")},
		{name: "iat 5 s ahead", iat: "now + 5", exp: "now + 60"},
		{name: "iat over 5 s ahead", iat: "now + 5.00001", exp: "now + 60", why: "invalid tenant context (issued in the future)"},
		{name: "retired now", setup: "UPDATE bulkhead_control.keys SET not_after = " + st + " WHERE kid = 'edgekid'",
			iat: "now", exp: "now + 60", why: "invalid tenant context (retired key)"},
		{name: "retired a microsecond later", setup: "UPDATE bulkhead_control.keys SET not_after = " + st + " + interval '1 microsecond' WHERE kid = 'edgekid'",
			iat: "now", exp: "now + 60"},
		{name: "issued as the tenant moved", setup: setTenant("contexts_from = " + st + " - interval '1 second'"),
			iat: epoch(st + " - interval '1 second'"), exp: "now + 60"},
		{name: "issued a microsecond before the tenant moved", setup: setTenant("contexts_from = " + st + " - interval '1 second'"),
			iat: epoch(st + " - interval '1.000001 second'"), exp: "now + 60", why: "invalid tenant context (issued before the tenant moved)"},
		{name: "moved later than now", setup: setTenant("contexts_from = " + st + " + interval '1 second'"),
			iat: "now", exp: "now + 60", why: "invalid tenant context (issued before the tenant moved)"},
		{name: "tenant moving", setup: setTenant("status = 'moving', move_to = 'silo'"),
			iat: "now", exp: "now + 60", why: "tenant context for a tenant that is not active (moving)"},
		{name: "tenant offboarding", setup: setTenant("status = 'offboarding'"),
			iat: "now", exp: "now + 60", why: "tenant context for a tenant that is not active (offboarding)"},
		{name: "tenant offboarded", setup: setTenant("status = 'offboarded'"),
			iat: "now", exp: "now + 60", why: "tenant context for a tenant that is not active (offboarded)"},
		{name: "tenant suspended", setup: setTenant("status = 'suspended'"),
			iat: "now", exp: "now + 60", why: "tenant context for a tenant that is not active (suspended)"},
		{name: "tenant moving, contexts also from later", setup: setTenant("status = 'moving', move_to = 'pool', contexts_from = " + st + " + interval '1 second'"),
			iat: "now", exp: "now + 60", why: "tenant context for a tenant that is not active (moving)"},
		{name: "a record key's kid", kid: "recordkid", iat: "now", exp: "now + 60", why: "invalid tenant context (unknown key)"},
		{name: "an admin JWT key's kid", kid: "adminkid", iat: "now", exp: "now + 60", why: "invalid tenant context (unknown key)"},
		{name: "expired and on a retired key", setup: "UPDATE bulkhead_control.keys SET not_after = " + st + " WHERE kid = 'edgekid'",
			iat: "now - 10", exp: "now", why: "invalid tenant context (expired)"},
	}
	for _, c := range cases {
		kid := c.kid
		if kid == "" {
			kid = "edgekid"
		}
		setup := c.setup
		if setup == "" {
			setup = "NULL"
		}
		do := `DO $do$
DECLARE
	now float8 := pg_catalog.date_part('epoch', pg_catalog.statement_timestamp());
	body text;
	payload text;
BEGIN
	` + setup + `;
	payload := format('{"tenant_id":"%s","aud":"%s","iat":%s,"exp":%s}', ` + quoteSQL(tid) + `, session_user,
		(` + c.iat + `)::float8::text, (` + c.exp + `)::float8::text);
	body := 'v1.` + kid + `.' || rtrim(translate(encode(convert_to(payload, 'UTF8'), 'base64'), E'+/\n', '-_'), '=');
	PERFORM set_config('bulkhead.context', body || '.' || rtrim(translate(encode(bulkhead_crypto.hmac(convert_to(body, 'UTF8'),
		(SELECT secret FROM bulkhead_control.keys WHERE keys.kid = '` + kid + `'), 'sha256'), 'base64'), E'+/\n', '-_'), '='), true);
	INSERT INTO pg_temp.edge_results SELECT 1, bulkhead.test_context_plpgsql()::text;
	INSERT INTO pg_temp.edge_results SELECT 2, bulkhead.test_context_native()::text;
END
$do$`
		p.logs = nil
		var plpgsql, native *string
		err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TEMP TABLE edge_results (n int, claims text) ON COMMIT DROP`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, do); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `SELECT claims FROM edge_results WHERE n = 1`).Scan(&plpgsql); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `SELECT claims FROM edge_results WHERE n = 2`).Scan(&native); err != nil {
				return err
			}
			return errRollback
		})
		if err != errRollback {
			t.Fatalf("%s: %v\n%s", c.name, err, do)
		}
		str := func(s *string) string {
			if s == nil {
				return "NULL"
			}
			return *s
		}
		want := "bulkhead: " + c.why + " for role " + p.user
		switch {
		case str(plpgsql) != str(native):
			t.Errorf("%s: the verifiers disagree\n plpgsql: %s\n native:  %s\n logs: %q", c.name, str(plpgsql), str(native), p.logs)
		case c.why == "" && (plpgsql == nil || len(p.logs) != 0):
			t.Errorf("%s: refused (%q), want valid", c.name, p.logs)
		case c.why != "" && (plpgsql != nil || len(p.logs) != 2 || p.logs[0] != want || p.logs[1] != want):
			t.Errorf("%s: %s, logs %q; want NULL and %q from both", c.name, str(plpgsql), p.logs, want)
		}
	}
}

var errRollback = fmt.Errorf("roll back")

func quoteSQL(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// TestNativeVerifierStartupSetting gives both verifiers values of
// bulkhead.context that set_config cannot make, because a text argument
// must be valid UTF-8: values a client sends in its startup packet, which
// PostgreSQL stores as they come. A truncated character at the end is an
// encoding error (22021) in both, other bytes that are not UTF-8 are
// malformed, and a context set for the whole session verifies in both.
func TestNativeVerifierStartupSetting(t *testing.T) {
	p := newVerifierPair(t)
	ctx := context.Background()
	valid := p.e.signRaw(t, "pa", func(m map[string]any) { m["aud"] = p.user })
	for _, c := range []struct {
		name, value string
		code        string // the error both raise, if any
		valid       bool
	}{
		{"a truncated character at the end", "v1.abc.def.\xf0", "22021", false},
		{"only a truncated character", "\xc3", "22021", false},
		{"a truncated three-byte character at the end", "v1.abc.def.ghi\xe2\x82", "22021", false},
		{"bytes that are never UTF-8", "v1.\xff\xfe.abc.def", "", false},
		{"a continuation byte first", "\x80v1.abc.def.ghi", "", false},
		{"a context after a truncated character", "\xe2\x82" + valid, "", false},
		{"9000 characters", "v1." + strings.Repeat("a", 9000) + ".b.c", "", false},
		{"a valid context for the session", valid, "", true},
	} {
		cfg, err := pgx.ParseConfig(p.e.pg.AdminURL)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["bulkhead.context"] = c.value
		var logs []string
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Severity == "LOG" {
				logs = append(logs, n.Message)
			}
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, err := conn.Exec(ctx, `SET client_min_messages = log`); err != nil {
			t.Fatal(err)
		}
		var outs [2]outcome
		for i, fn := range []string{"test_context_plpgsql", "test_context_native"} {
			logs = nil
			err := conn.QueryRow(ctx, `SELECT bulkhead.`+fn+`()::text`).Scan(&outs[i].claims)
			var pe *pgconn.PgError
			switch {
			case errors.As(err, &pe):
				outs[i].code = pe.Code
			case err != nil:
				t.Fatalf("%s: %s: %v", c.name, fn, err)
			}
			outs[i].logs = logs
		}
		conn.Close(ctx)
		if outs[0].String() != outs[1].String() {
			t.Errorf("%s: the verifiers disagree\n plpgsql: %s\n native:  %s", c.name, outs[0], outs[1])
		}
		if outs[0].code != c.code || (outs[0].claims != nil) != c.valid {
			t.Errorf("%s: %s; want error %q, valid %t", c.name, outs[0], c.code, c.valid)
		}
	}
}

// TestVerifierLocksUntilCommit: both verifiers keep their locks on the
// key and tenant tables and their primary-key indexes until the caller's
// transaction ends, as a SELECT does.
func TestVerifierLocksUntilCommit(t *testing.T) {
	p := newVerifierPair(t)
	ctx := context.Background()
	tok := p.e.signRaw(t, "pa", func(m map[string]any) { m["aud"] = p.user })
	const want = "keys keys_pkey tenants tenants_pkey"
	for _, fn := range []string{"test_context_plpgsql", "test_context_native"} {
		var held string
		err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('bulkhead.context', $1, true)`, tok); err != nil {
				return err
			}
			var claims *string
			if err := tx.QueryRow(ctx, `SELECT bulkhead.`+fn+`()::text`).Scan(&claims); err != nil {
				return err
			}
			if claims == nil {
				return fmt.Errorf("no claims")
			}
			return tx.QueryRow(ctx, `SELECT coalesce(string_agg(c.relname, ' ' ORDER BY c.relname), '')
				FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
				WHERE l.pid = pg_backend_pid() AND l.mode = 'AccessShareLock'
				AND c.relnamespace = 'bulkhead_control'::regnamespace AND c.relname IN ('keys', 'keys_pkey', 'tenants', 'tenants_pkey')`).Scan(&held)
		})
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		if held != want {
			t.Errorf("%s: after the call, the transaction holds AccessShareLock on %q; want %q", fn, held, want)
		}
	}
}
