package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// Finding is one thing the watchdog saw on an app login role, and what it
// did about it.
type Finding struct {
	Kind   string // "role_setting", "role_password", "strong_lock", "idle_in_transaction"
	Role   string
	PID    int32
	Detail string
	Action string // "reset", "terminated", "gone" (ended before it was signalled), or "reported (why)"
}

func (f Finding) String() string {
	return fmt.Sprintf("%s role=%s pid=%d %s (%s)", f.Kind, f.Role, f.PID, f.Detail, f.Action)
}

// WatchdogOptions tune Sweep.
type WatchdogOptions struct {
	// MaxIdleInTransaction ends app backends idle inside a transaction for
	// longer; zero means DefaultMaxIdleInTransaction.
	MaxIdleInTransaction time.Duration
	// MaxStatement cancels an app backend's statement that has run for
	// longer, and ends the backend once the statement has run for twice
	// as long (a cancel that did not stop it); zero means
	// DefaultMaxStatement. Business code can set its own
	// statement_timeout to anything, so this is the bound that holds.
	MaxStatement time.Duration
}

// DefaultMaxIdleInTransaction is WatchdogOptions.MaxIdleInTransaction's
// default: an open transaction holds its locks and its snapshot (which
// keeps vacuum from every table's dead rows) for as long as it is open.
const DefaultMaxIdleInTransaction = 30 * time.Second

// DefaultMaxStatement is WatchdogOptions.MaxStatement's default.
const DefaultMaxStatement = 5 * time.Minute

// appRoles selects the login roles that are members of bulkhead_app.
const appRoles = `SELECT r.oid, r.rolname FROM pg_roles r
	WHERE r.rolcanlogin AND NOT r.rolsuper AND pg_has_role(r.oid, 'bulkhead_app', 'MEMBER')`

// Sweep looks once at every app login role and acts:
//
//   - a role setting bulkhead did not make (ALTER ROLE CURRENT_USER SET …
//     plants read-only mode, tiny timeouts, huge work_mem or a search_path
//     into every future session of that role) is reset;
//   - the password of a login role whose credential bulkhead keeps (the
//     gateway's, business code's) changed: any role may ALTER ROLE
//     CURRENT_USER PASSWORD, which would lock every server out of the
//     data API's role; it is set back to the stored one;
//   - a backend holding a lock stronger than ROW EXCLUSIVE on a tenant
//     table (LOCK TABLE needs only UPDATE or DELETE, and row security does
//     not apply to it: it stalls every tenant) is terminated;
//   - a backend idle inside a transaction for too long is terminated;
//   - a statement that has run too long is canceled, and its backend
//     terminated if it is still running at twice the limit: business code
//     may set statement_timeout to 0, and a statement that runs for hours
//     takes a CPU and locks from every tenant.
//
// It looks at this database's backends only. With an admin connection
// that is not a superuser it does what that role's privileges allow;
// [DB.WatchdogLimits] says what it skips.
func (db *DB) Sweep(ctx context.Context, o WatchdogOptions) (out []Finding, err error) {
	defer fault.Wrap(&err, "postgres.Sweep")
	if o.MaxIdleInTransaction == 0 {
		o.MaxIdleInTransaction = DefaultMaxIdleInTransaction
	}
	if o.MaxStatement == 0 {
		o.MaxStatement = DefaultMaxStatement
	}
	rows, err := db.admin.Query(ctx, `WITH app AS (`+appRoles+`)
		SELECT app.rolname, s.setdatabase, cfg
		FROM pg_db_role_setting s JOIN app ON app.oid = s.setrole, unnest(s.setconfig) cfg
		WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))`)
	if err != nil {
		return nil, err
	}
	type setting struct{ role, cfg string }
	var planted []setting
	for rows.Next() {
		var st setting
		var dbOID uint32
		if err := rows.Scan(&st.role, &dbOID, &st.cfg); err != nil {
			rows.Close()
			return nil, err
		}
		name, _, _ := strings.Cut(st.cfg, "=")
		if _, own := ownSettings[name]; !own {
			planted = append(planted, st)
		}
	}
	rows.Close()
	reset := map[string]bool{}
	for _, st := range planted {
		f := Finding{Kind: "role_setting", Role: st.role, Detail: st.cfg, Action: "reset"}
		if !reset[st.role] {
			if err := db.resetRole(ctx, st.role); err != nil {
				f.Action = "reported (reset failed: " + err.Error() + ")"
			}
			reset[st.role] = true
		}
		out = append(out, f)
	}
	changed, err := db.changedPasswords(ctx)
	if err != nil {
		return nil, err
	}
	for _, role := range changed {
		f := Finding{Kind: "role_password", Role: role.name, Detail: "its password is not the one bulkhead stored", Action: "reset"}
		if _, err := db.admin.Exec(ctx, `ALTER ROLE `+quoteIdent(role.name)+` PASSWORD `+quoteLiteral(role.password)); err != nil {
			f.Action = "reported (reset failed: " + err.Error() + ")"
		}
		out = append(out, f)
	}
	rows, err = db.admin.Query(ctx, `WITH app AS (`+appRoles+`)
		SELECT DISTINCT a.pid, a.usename::text, 'strong_lock', l.mode || ' on ' || n.nspname || '.' || c.relname, true
		  FROM pg_locks l
		  JOIN pg_stat_activity a ON a.pid = l.pid
		  JOIN app ON app.oid = a.usesysid
		  JOIN pg_class c ON c.oid = l.relation
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE l.granted AND l.locktype = 'relation' AND a.datname = current_database()
		   AND l.mode IN ('ShareUpdateExclusiveLock', 'ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
		   AND (n.nspname = 'app' OR n.nspname ~ '^t_[0-9a-f]{32}$')
		UNION
		SELECT a.pid, a.usename::text, 'idle_in_transaction', a.state || ' for ' || date_trunc('second', now() - a.state_change)::text, true
		  FROM pg_stat_activity a JOIN app ON app.oid = a.usesysid
		 WHERE a.datname = current_database()
		   AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')
		   AND now() - a.state_change > make_interval(secs => $1)
		UNION
		SELECT a.pid, a.usename::text, 'long_statement', 'running for ' || date_trunc('second', now() - a.query_start)::text,
		       now() - a.query_start > make_interval(secs => $3)
		  FROM pg_stat_activity a JOIN app ON app.oid = a.usesysid
		 WHERE a.datname = current_database() AND a.backend_type = 'client backend'
		   AND a.state IN ('active', 'fastpath function call')
		   AND now() - a.query_start > make_interval(secs => $2)`, o.MaxIdleInTransaction.Seconds(), o.MaxStatement.Seconds(), 2*o.MaxStatement.Seconds())
	if err != nil {
		return nil, err
	}
	type found struct {
		Finding
		end bool // terminate the backend rather than cancel its statement
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (found, error) {
		var f found
		err := r.Scan(&f.PID, &f.Role, &f.Kind, &f.Detail, &f.end)
		return f, err
	})
	if err != nil {
		return nil, err
	}
	// A long statement is canceled, unless its backend is ended anyway
	// for another finding or the statement has outlived a cancel.
	end := map[int32]bool{}
	for _, f := range fs {
		end[f.PID] = end[f.PID] || f.end
	}
	// Each backend is terminated once, however many findings name it, and
	// the sweep waits for it to exit: "terminated" means its locks are
	// released and it is gone from pg_stat_activity, so the next sweep
	// does not find it again.
	done := map[int32]string{}
	for _, f := range fs {
		action, ok := done[f.PID]
		if !ok {
			if end[f.PID] {
				action = db.terminate(ctx, f.PID)
			} else {
				action = db.cancelStatement(ctx, f.PID)
			}
			done[f.PID] = action
		}
		f.Action = action
		out = append(out, f.Finding)
	}
	return out, nil
}

// terminateWait bounds how long a sweep waits for a terminated backend to
// exit.
const terminateWait = 2 * time.Second

// terminate ends the backend pid, waiting up to terminateWait for it to
// exit, and says what happened: "terminated" (it has exited), "gone" (it
// ended on its own before it could be signalled), or a "reported (…)"
// saying why it may still be there.
func (db *DB) terminate(ctx context.Context, pid int32) string {
	var exited bool
	err := db.admin.QueryRow(ctx, `SELECT pg_terminate_backend($1, $2)`, pid, terminateWait.Milliseconds()).Scan(&exited)
	switch {
	case err != nil:
		return "reported (could not terminate: " + err.Error() + ")"
	case exited:
		return "terminated"
	}
	// false: either pid is no longer a backend (it ended between the query
	// that found it and the signal), or it did not exit in time.
	var alive bool
	if err := db.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, pid).Scan(&alive); err != nil {
		return "reported (could not terminate: " + err.Error() + ")"
	}
	if !alive {
		return "gone"
	}
	return "reported (signalled, still running after " + terminateWait.String() + ")"
}

// cancelStatement cancels the statement backend pid is running, and says
// what happened: "canceled" (the signal was sent; the next sweep finds
// the statement again if it did not stop), "gone", or "reported (…)".
func (db *DB) cancelStatement(ctx context.Context, pid int32) string {
	var sent bool
	if err := db.admin.QueryRow(ctx, `SELECT pg_cancel_backend($1)`, pid).Scan(&sent); err != nil {
		return "reported (could not cancel: " + err.Error() + ")"
	}
	if !sent { // no longer a backend: it ended between the query and the signal
		return "gone"
	}
	return "canceled"
}

// resetRole removes every setting of an app role and puts back bulkhead's,
// when the admin may set them (a superuser: they are superuser-only
// parameters).
func (db *DB) resetRole(ctx context.Context, role string) error {
	q := quoteIdent(role)
	var super bool
	if err := db.admin.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return err
	}
	// In one transaction, so that no session of the role starts between
	// the reset and bulkhead's settings coming back.
	return pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `ALTER ROLE `+q+` RESET ALL`); err != nil {
			return err
		}
		// RESET ALL clears the settings for every database only; the role
		// may also have planted some for this database (IN DATABASE).
		var dbName string
		if err := tx.QueryRow(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `ALTER ROLE `+q+` IN DATABASE `+quoteIdent(dbName)+` RESET ALL`); err != nil {
			return err
		}
		if !super {
			return nil
		}
		return setOwnSettings(ctx, tx, role)
	})
}

// Watch runs Sweep every interval until ctx ends, and logs each finding at
// Warn: each is a sign of compromised business code.
func (db *DB) Watch(ctx context.Context, interval time.Duration, o WatchdogOptions) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fs, err := db.Sweep(ctx, o)
		if err != nil && ctx.Err() == nil {
			db.log.WarnContext(ctx, "watchdog sweep failed", "err", err)
		}
		for _, f := range fs {
			db.log.LogAttrs(ctx, slog.LevelWarn, "watchdog", slog.String("kind", f.Kind), slog.String("role", f.Role),
				slog.Int("pid", int(f.PID)), slog.String("detail", f.Detail), slog.String("action", f.Action))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// storedCredential is a login role bulkhead made and keeps the password of.
type storedCredential struct{ name, password string }

// changedPasswords returns the roles in role_credentials whose SCRAM
// verifier no longer matches the stored password. Reading verifiers needs
// a superuser; without one the check is skipped.
func (db *DB) changedPasswords(ctx context.Context) ([]storedCredential, error) {
	var readable bool
	if err := db.admin.QueryRow(ctx, `SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')`).Scan(&readable); err != nil {
		return nil, err
	}
	if !readable { // not a superuser: WatchdogLimits says so
		return nil, nil
	}
	rows, err := db.admin.Query(ctx, `SELECT c.role, c.password, coalesce(a.rolpassword, '')
		FROM bulkhead_control.role_credentials c JOIN pg_authid a ON a.rolname = c.role ORDER BY c.role`)
	if err != nil {
		return nil, err
	}
	var out []storedCredential
	for rows.Next() {
		var c storedCredential
		var verifier string
		if err := rows.Scan(&c.name, &c.password, &verifier); err != nil {
			rows.Close()
			return nil, err
		}
		if !scramMatches(verifier, c.password) {
			out = append(out, c)
		}
	}
	rows.Close()
	return out, rows.Err()
}

// WatchdogLimits says what the watchdog cannot do with the admin
// connection's privileges, one sentence each with the privilege that is
// missing; nil when it can do everything. serve and dev log them at
// start-up.
//
//   - Reading password verifiers (pg_authid) needs a superuser: without
//     one, a changed password of the gateway or business role is not put
//     back.
//   - Putting bulkhead's own role settings (log_parameter_max_length,
//     temp_file_limit) back after a reset needs a superuser: without one, reset roles are left without
//     them (as roles made without a superuser are anyway).
//   - Resetting role settings needs CREATEROLE.
//   - Ending other roles' backends, or canceling their statements, needs
//     pg_signal_backend (or a superuser).
//   - Seeing which of other roles' backends idle in a transaction or run
//     a long statement needs pg_read_all_stats (pg_stat_activity hides
//     their state otherwise).
func (db *DB) WatchdogLimits(ctx context.Context) (limits []string, err error) {
	defer fault.Wrap(&err, "postgres.WatchdogLimits")
	var super, createrole, signal, stats bool
	if err := db.admin.QueryRow(ctx, `SELECT r.rolsuper, r.rolcreaterole,
			pg_has_role(current_user, 'pg_signal_backend', 'USAGE'), pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&super, &createrole, &signal, &stats); err != nil {
		return nil, err
	}
	if super {
		return nil, nil
	}
	limits = append(limits,
		"not a superuser: a changed password of the gateway or business role is not seen or put back (reading pg_authid needs a superuser)",
		"not a superuser: after resetting a role's planted settings, log_parameter_max_length = 0 and temp_file_limit are not put back")
	if !createrole {
		limits = append(limits, "no CREATEROLE: settings planted on app roles are not reset (ALTER ROLE … RESET ALL needs CREATEROLE)")
	}
	if !signal {
		limits = append(limits, "not a member of pg_signal_backend: backends that lock tenant tables, idle in a transaction or run a statement past the watchdog's limit are reported, not ended or canceled (GRANT pg_signal_backend TO the admin role)")
	}
	if !stats {
		limits = append(limits, "not a member of pg_read_all_stats: app backends idle in a transaction or running a long statement are not seen, since pg_stat_activity hides other roles' state (GRANT pg_read_all_stats TO the admin role); offboarding cannot see other roles' open transactions either")
	}
	return limits, nil
}

// scramMatches reports whether a PostgreSQL SCRAM-SHA-256 verifier
// ("SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey") was made from
// password (RFC 5802: StoredKey = SHA-256(HMAC(SaltedPassword, "Client
// Key")), SaltedPassword = PBKDF2-HMAC-SHA-256). bulkhead's passwords are
// ASCII, which SASLprep leaves as they are.
func scramMatches(verifier, password string) bool {
	rest, ok := strings.CutPrefix(verifier, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iterText, saltText, ok := strings.Cut(params, ":")
	if !ok {
		return false
	}
	storedText, _, ok := strings.Cut(keys, ":")
	if !ok {
		return false
	}
	iter, err := strconv.Atoi(iterText)
	if err != nil || iter < 1 || iter > 1<<20 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltText)
	stored, err2 := base64.StdEncoding.DecodeString(storedText)
	if err1 != nil || err2 != nil {
		return false
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	sum := sha256.Sum256(mac.Sum(nil))
	return hmac.Equal(sum[:], stored)
}
