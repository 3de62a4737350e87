package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestNativeVerifierLookupCache: the native verifier remembers, per
// backend, which table, index and columns bulkhead_control's names meant,
// and looks them up again after any change that could make them mean
// others. Each case fills that memory with a call, changes the catalog
// from another session (or in the caller's own transaction), and calls
// again on the same connection, so the same backend: the answer must be
// what the names mean now, the PL/pgSQL verifier's where it has one. A
// verifier that used what it remembered would read a dropped index (an
// error about an OID), the old table or the old column (a context that
// verifies for a suspended tenant).
func TestNativeVerifierLookupCache(t *testing.T) {
	p := newVerifierPair(t)
	ctx := context.Background()
	admin := p.e.adminConn(t)
	id := string(p.e.tenants["pa"].ID)
	token := func() string { return p.e.signRaw(t, "pa", func(m map[string]any) { m["aud"] = p.user }) }
	exec := func(q string) {
		t.Helper()
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// warm verifies a context on the connection, filling the memory.
	warm := func(name string) {
		t.Helper()
		if o := p.compare(t, name+", before", token()); o.claims == nil {
			t.Fatalf("%s, before: %s; want the claims", name, o)
		}
	}
	// nativeError is the message of the error the native verifier raises
	// in a transaction of its own ("" when none).
	nativeError := func() string {
		t.Helper()
		err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('bulkhead.context', $1, true)`, token()); err != nil {
				return err
			}
			var s *string
			return tx.QueryRow(ctx, `SELECT bulkhead.test_context_native()::text`).Scan(&s)
		})
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Message
		}
		if err != nil {
			t.Fatal(err)
		}
		return ""
	}
	const notTheIndex = "bulkhead: keys_pkey is not the valid, unique, whole-table btree index"
	const inactive = "bulkhead: tenant context for a tenant that is not active (suspended) for role "
	suspendedCopy := `INSERT INTO bulkhead_control.tenants SELECT * FROM bulkhead_control.tenants_old;
		UPDATE bulkhead_control.tenants SET status = 'suspended' WHERE id = '` + id + `'`
	refused := func(name string, o outcome) {
		t.Helper()
		if o.claims != nil || len(o.logs) != 1 || o.logs[0] != inactive+p.user {
			t.Errorf("%s: %s; want NULL and %q", name, o, inactive+p.user)
		}
	}

	// The index replaced by one of the same name that could miss rows.
	warm("keys_pkey replaced")
	exec(`ALTER TABLE bulkhead_control.keys DROP CONSTRAINT keys_pkey;
		CREATE UNIQUE INDEX keys_pkey ON bulkhead_control.keys (kid) WHERE purpose = 'jwt'`)
	if msg := nativeError(); !strings.HasPrefix(msg, notTheIndex) {
		t.Errorf("keys_pkey replaced by a partial index: error %q; want %q", msg, notTheIndex)
	}
	exec(`DROP INDEX bulkhead_control.keys_pkey; ALTER TABLE bulkhead_control.keys ADD PRIMARY KEY (kid)`)

	// The same, in the caller's own transaction, after a call in it.
	warm("keys_pkey replaced in the transaction")
	err := pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		for _, q := range []string{
			`SELECT pg_catalog.set_config('bulkhead.context', '` + token() + `', true)`,
			`SELECT bulkhead.test_context_native()`,
			`ALTER TABLE bulkhead_control.keys DROP CONSTRAINT keys_pkey`,
			`CREATE UNIQUE INDEX keys_pkey ON bulkhead_control.keys (kid) WHERE purpose = 'jwt'`,
			`SELECT bulkhead.test_context_native()`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Message, notTheIndex) {
		t.Errorf("keys_pkey replaced in the caller's transaction: %v; want %q", err, notTheIndex)
	}

	// The index dropped and made again: another relation, the same name.
	warm("tenants_pkey made again")
	exec(`ALTER TABLE bulkhead_control.tenants DROP CONSTRAINT tenants_pkey CASCADE;
		ALTER TABLE bulkhead_control.tenants ADD PRIMARY KEY (id)`)
	if o := p.compare(t, "tenants_pkey made again", token()); o.claims == nil {
		t.Errorf("tenants_pkey made again: %s; want the claims", o)
	}

	// The table replaced by another of the same name, where the tenant is
	// suspended.
	replaceTenants := `ALTER TABLE bulkhead_control.tenants RENAME TO tenants_old;
		ALTER INDEX bulkhead_control.tenants_pkey RENAME TO tenants_old_pkey;
		CREATE TABLE bulkhead_control.tenants (LIKE bulkhead_control.tenants_old INCLUDING ALL);
		ALTER TABLE bulkhead_control.tenants OWNER TO bulkhead_owner;` + suspendedCopy
	restoreTenants := `DROP TABLE bulkhead_control.tenants;
		ALTER TABLE bulkhead_control.tenants_old RENAME TO tenants;
		ALTER INDEX bulkhead_control.tenants_old_pkey RENAME TO tenants_pkey`
	warm("tenants replaced")
	exec(replaceTenants)
	refused("tenants replaced", p.compare(t, "tenants replaced", token()))
	exec(restoreTenants)

	// The key table replaced by one where the key is retired, committed
	// after the caller's transaction began but before the verifier's first
	// lock in it: the names are looked up again once the lock is taken.
	warm("keys replaced during the transaction")
	var during outcome
	err = pgx.BeginFunc(ctx, p.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('bulkhead.context', $1, true)`, token()); err != nil {
			return err
		}
		exec(`ALTER TABLE bulkhead_control.keys RENAME TO keys_old;
			ALTER INDEX bulkhead_control.keys_pkey RENAME TO keys_old_pkey;
			CREATE TABLE bulkhead_control.keys (LIKE bulkhead_control.keys_old INCLUDING ALL);
			ALTER TABLE bulkhead_control.keys OWNER TO bulkhead_owner;
			INSERT INTO bulkhead_control.keys SELECT * FROM bulkhead_control.keys_old;
			UPDATE bulkhead_control.keys SET not_after = now() - interval '1 second'`)
		p.logs = nil
		err := tx.QueryRow(ctx, `SELECT bulkhead.test_context_native()::text`).Scan(&during.claims)
		during.logs = p.logs
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if during.claims != nil || len(during.logs) != 1 || !strings.Contains(during.logs[0], "(retired key)") {
		t.Errorf("keys replaced during the transaction: %s; want NULL and the retired key's line", during)
	}
	exec(`DROP TABLE bulkhead_control.keys;
		ALTER TABLE bulkhead_control.keys_old RENAME TO keys;
		ALTER INDEX bulkhead_control.keys_old_pkey RENAME TO keys_pkey`)

	// The index renamed away, and another index renamed to its name: only
	// the indexes change.
	warm("keys_pkey renamed")
	exec(`ALTER INDEX bulkhead_control.keys_pkey RENAME TO keys_pkey_old;
		ALTER INDEX bulkhead_control.tenants_pkey RENAME TO keys_pkey`)
	if msg := nativeError(); !strings.HasPrefix(msg, notTheIndex) {
		t.Errorf("tenants_pkey renamed keys_pkey: error %q; want %q", msg, notTheIndex)
	}
	exec(`ALTER INDEX bulkhead_control.keys_pkey RENAME TO tenants_pkey;
		ALTER INDEX bulkhead_control.keys_pkey_old RENAME TO keys_pkey`)

	// A column renamed, and another of its name added (empty).
	warm("status replaced")
	exec(`ALTER TABLE bulkhead_control.tenants RENAME COLUMN status TO status_old;
		ALTER TABLE bulkhead_control.tenants ADD COLUMN status text`)
	if o := p.compare(t, "status replaced", token()); o.claims != nil {
		t.Errorf("status replaced by an empty column: %s; want NULL", o)
	}
	exec(`ALTER TABLE bulkhead_control.tenants DROP COLUMN status;
		ALTER TABLE bulkhead_control.tenants RENAME COLUMN status_old TO status`)

	// The schema replaced by another of the same name.
	warm("bulkhead_control replaced")
	exec(`ALTER SCHEMA bulkhead_control RENAME TO bulkhead_control_old;
		CREATE SCHEMA bulkhead_control AUTHORIZATION bulkhead_owner;
		CREATE TABLE bulkhead_control.keys (LIKE bulkhead_control_old.keys INCLUDING ALL);
		INSERT INTO bulkhead_control.keys SELECT * FROM bulkhead_control_old.keys;
		CREATE TABLE bulkhead_control.tenants (LIKE bulkhead_control_old.tenants INCLUDING ALL);
		CREATE TABLE bulkhead_control.tenants_old (LIKE bulkhead_control_old.tenants INCLUDING ALL);
		INSERT INTO bulkhead_control.tenants_old SELECT * FROM bulkhead_control_old.tenants;
		ALTER TABLE bulkhead_control.keys OWNER TO bulkhead_owner;
		ALTER TABLE bulkhead_control.tenants OWNER TO bulkhead_owner;` + suspendedCopy)
	refused("bulkhead_control replaced", p.compare(t, "bulkhead_control replaced", token()))
	exec(`DROP SCHEMA bulkhead_control CASCADE; ALTER SCHEMA bulkhead_control_old RENAME TO bulkhead_control`)

	// Rows are read on every call: a tenant suspended, a key retired.
	warm("tenant suspended")
	exec(`UPDATE bulkhead_control.tenants SET status = 'suspended' WHERE id = '` + id + `'`)
	refused("tenant suspended", p.compare(t, "tenant suspended", token()))
	exec(`UPDATE bulkhead_control.tenants SET status = 'active' WHERE id = '` + id + `'`)
	warm("key retired")
	exec(`UPDATE bulkhead_control.keys SET not_after = now() - interval '1 second' WHERE kid = '` + p.key.ID + `'`)
	if o := p.compare(t, "key retired", token()); o.claims != nil || len(o.logs) != 1 || !strings.Contains(o.logs[0], "(retired key)") {
		t.Errorf("key retired: %s; want NULL and the retired key's line", o)
	}
	exec(`UPDATE bulkhead_control.keys SET not_after = NULL WHERE kid = '` + p.key.ID + `'`)
	warm("after")
}
