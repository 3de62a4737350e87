package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
)

// Function is a registered business function: code that talks to
// PostgreSQL directly with its own login role, and asks the control plane
// for signed contexts with its credential.
type Function struct {
	Name      string
	LoginRole string
}

// FunctionCredentials are returned once, when a function is registered.
type FunctionCredentials struct {
	Function
	Token    string // for POST /v1/auth/context; only its hash is stored
	Password string // the login role's password; not stored
}

var functionName = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)

// ErrFunctionExists is returned when a function name is taken.
var ErrFunctionExists = fault.E(fault.Conflict, "function_exists", "A function with that name exists.")

// DefaultFunctionConnections is a function's login role's CONNECTION
// LIMIT unless FunctionOptions says otherwise. It bounds how many
// statements the function runs on PostgreSQL at once, each up to a CPU:
// PostgreSQL has no other bound on what one role's statements take.
const DefaultFunctionConnections = 20

// MaxFunctionConnections is the largest FunctionOptions.ConnectionLimit.
const MaxFunctionConnections = 10000

// FunctionOptions tune CreateFunctionWith.
type FunctionOptions struct {
	// ConnectionLimit is the login role's CONNECTION LIMIT, 1 to
	// MaxFunctionConnections; zero means DefaultFunctionConnections.
	ConnectionLimit int
}

// CreateFunction registers a function: a login role of its own (a member
// of bulkhead_app, so it holds only the app grants; scram password;
// connection limit; bulkhead's role settings) and a credential.
func (db *DB) CreateFunction(ctx context.Context, name string) (*FunctionCredentials, error) {
	return db.CreateFunctionWith(ctx, name, FunctionOptions{})
}

// CreateFunctionWith is CreateFunction with options.
func (db *DB) CreateFunctionWith(ctx context.Context, name string, o FunctionOptions) (fc *FunctionCredentials, err error) {
	defer fault.Wrap(&err, "postgres.CreateFunction(%s)", name)
	if !functionName.MatchString(name) {
		return nil, fault.E(fault.Invalid, "invalid_function_name", "A function name is 2 to 40 characters of lowercase letters, digits and underscores, starting with a letter.")
	}
	if o.ConnectionLimit == 0 {
		o.ConnectionLimit = DefaultFunctionConnections
	}
	if o.ConnectionLimit < 1 || o.ConnectionLimit > MaxFunctionConnections {
		return nil, fault.Errorf(fault.Invalid, "invalid_connection_limit", "A function's connection limit is 1 to %d.", MaxFunctionConnections)
	}
	role := FunctionRolePrefix + name
	fc = &FunctionCredentials{Function: Function{Name: name, LoginRole: role},
		Token: "bkf_" + name + "_" + randomSecret(24), Password: randomSecret(24)}
	sum := sha256.Sum256([]byte(fc.Token))
	var super bool
	if err := db.admin.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO bulkhead_control.functions (name, login_role, token_hash) VALUES ($1, $2, $3)`, name, role, sum[:]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE ROLE `+quoteIdent(role)+` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB INHERIT
			CONNECTION LIMIT `+strconv.Itoa(o.ConnectionLimit)+` IN ROLE bulkhead_app PASSWORD `+quoteLiteral(fc.Password)); err != nil {
			return err
		}
		if super {
			if err := setOwnSettings(ctx, tx, role); err != nil {
				return err
			}
		}
		return db.changeEvent(ctx, tx, "functions:Create", controlResource("", policy.KindFunction, name), "", "", map[string]string{"login_role": role})
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42710" {
			return nil, fault.Errorf(fault.Conflict, "function_role_exists",
				"A login role named %s already exists in this PostgreSQL cluster (roles are shared by all its databases).", role)
		}
		if fault.KindOf(Translate(err)) == fault.Conflict {
			return nil, ErrFunctionExists
		}
		return nil, Translate(err)
	}
	return fc, nil
}

// FunctionInfo is a registered function as ListFunctions reports it.
type FunctionInfo struct {
	Name      string    `json:"name"`
	LoginRole string    `json:"login_role"`
	CreatedAt time.Time `json:"created_at"`
	// ConnectionLimit is the login role's CONNECTION LIMIT, -1 for none;
	// RoleMissing says the role is gone from the cluster.
	ConnectionLimit int  `json:"connection_limit"`
	RoleMissing     bool `json:"role_missing,omitempty"`
	// Sessions is how many sessions the role holds now, in every database
	// of the cluster (-1 when the admin role may not see them).
	Sessions int `json:"sessions"`
}

// ListFunctions returns every registered function, by name, with its
// login role's connection limit and the sessions it holds now.
func (db *DB) ListFunctions(ctx context.Context) (fs []FunctionInfo, err error) {
	defer fault.Wrap(&err, "postgres.ListFunctions")
	rows, err := db.admin.Query(ctx, `SELECT f.name, f.login_role, f.created_at, coalesce(r.rolconnlimit, -1), r.oid IS NULL,
			CASE WHEN pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
			     THEN (SELECT count(*) FROM pg_stat_activity a WHERE a.usename = f.login_role)::int ELSE -1 END
		FROM bulkhead_control.functions f LEFT JOIN pg_roles r ON r.rolname = f.login_role
		ORDER BY f.name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (f FunctionInfo, err error) {
		return f, r.Scan(&f.Name, &f.LoginRole, &f.CreatedAt, &f.ConnectionLimit, &f.RoleMissing, &f.Sessions)
	})
}

// DeleteFunction revokes a registered function: in one transaction its
// credential is removed (POST /v1/auth/context refuses it from then on)
// and its login role dropped, so that neither it nor a context already
// vended to it (addressed to that role) works again; then the sessions
// the role still held are ended. It returns how many were. A function
// whose role was dropped by hand is removed all the same.
func (db *DB) DeleteFunction(ctx context.Context, name string) (ended int, err error) {
	defer fault.Wrap(&err, "postgres.DeleteFunction(%s)", name)
	f, err := db.findFunction(ctx, `name = $1`, name)
	if err != nil {
		return 0, err
	}
	var oid uint32
	err = pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM bulkhead_control.functions WHERE name = $1`, name); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT oid FROM pg_roles WHERE rolname = $1`, f.LoginRole).Scan(&oid)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			// Memberships and role settings go with the role; a function's
			// role owns nothing and holds no grant of its own.
			if _, err := tx.Exec(ctx, `DROP ROLE `+quoteIdent(f.LoginRole)); err != nil {
				return err
			}
		}
		return db.changeEvent(ctx, tx, "functions:Delete", controlResource("", policy.KindFunction, name), "", "", map[string]string{"login_role": f.LoginRole})
	})
	if err != nil {
		return 0, Translate(err)
	}
	if oid == 0 {
		return 0, nil
	}
	// The role is gone, and with it its membership of bulkhead_app, so its
	// sessions can no longer read anything; end them all the same.
	rows, err := db.admin.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE usesysid = $1`, oid)
	if err != nil {
		return 0, Translate(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, Translate(err)
	}
	for _, pid := range pids {
		if db.terminate(ctx, pid) == "terminated" {
			ended++
		}
	}
	return ended, nil
}

// ResetFunctionPassword gives a function's login role a new password and
// returns it. `bulkhead dev` uses it on each start.
func (db *DB) ResetFunctionPassword(ctx context.Context, name string) (string, error) {
	f, err := db.findFunction(ctx, `name = $1`, name)
	if err != nil {
		return "", err
	}
	pw := randomSecret(24)
	if _, err := db.admin.Exec(ctx, `ALTER ROLE `+quoteIdent(f.LoginRole)+` PASSWORD `+quoteLiteral(pw)); err != nil {
		return "", Translate(err)
	}
	return pw, nil
}

// ErrBadFunctionToken is the one answer for any function credential that
// does not verify.
var ErrBadFunctionToken = fault.E(fault.Unauthenticated, "invalid_function_credential", "The function credential is not valid.")

// FindFunctionByToken returns the function whose credential is token.
func (db *DB) FindFunctionByToken(ctx context.Context, token string) (*Function, error) {
	if !strings.HasPrefix(token, "bkf_") || len(token) > 200 {
		return nil, ErrBadFunctionToken
	}
	sum := sha256.Sum256([]byte(token))
	f, err := db.findFunction(ctx, `token_hash = $1`, sum[:])
	if err != nil {
		return nil, ErrBadFunctionToken
	}
	return f, nil
}

func (db *DB) findFunction(ctx context.Context, where string, arg any) (*Function, error) {
	var f Function
	err := db.admin.QueryRow(ctx, `SELECT name, login_role FROM bulkhead_control.functions WHERE `+where, arg).Scan(&f.Name, &f.LoginRole)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.E(fault.NotFound, "function_not_found", "No such function.")
	}
	return &f, Translate(err)
}
