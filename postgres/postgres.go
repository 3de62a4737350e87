// Package postgres holds all of bulkhead's SQL: roles and hardening, the
// control catalog, provisioning of pool and silo tenants, the row-security
// DDL of tenant tables, keys, scoped transactions and migrations.
//
// A [DB] holds two pools. The admin pool connects with the control plane's
// URL (a superuser, or a role that may take bulkhead_owner): catalog work
// and DDL run there, as bulkhead_owner. The app pool logs in as the
// database's gateway role (bulkhead_gw_…), an app role that owns nothing
// and bypasses nothing: all
// tenant data travels there, inside transactions that set a signed tenant
// context which PostgreSQL verifies itself.
//
// This is the only package that imports pgconn: driver errors are
// translated into [fault] errors here.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// Config configures Open.
type Config struct {
	// AdminURL is the control plane's connection: a superuser or a role that
	// may take bulkhead_owner and bulkhead_maint.
	AdminURL string
	// AppURL, when set, is used for the app pool instead of the database's
	// gateway role with its stored credential.
	AppURL string
	// AppMaxConns bounds the app pool; 0 means pool_max_conns from the
	// URL, or else DefaultAppMaxConns.
	AppMaxConns int32
	Logger      *slog.Logger
	Now         func() time.Time
}

// DB is the control plane's handle on the database.
type DB struct {
	admin *pgxpool.Pool
	app   *pgxpool.Pool
	// business is an exec-mode pool for business code in this process,
	// as the database's business role, made on first use (see
	// [DB.Business]).
	business struct {
		once     sync.Once
		adminURL string // to connect as the business role
		maxConns int32
		pool     *pgxpool.Pool
		err      error
	}
	log  *slog.Logger
	now  func() time.Time
	keys keyCache
	// AppRole is the login role of the app pool: the aud of contexts the
	// gateway mints for itself.
	AppRole string
}

// Open connects the control plane's pool and makes the data API's, which
// connects on first use ([DB.PingApp] connects it at once). It does not
// run migrations; call [Setup] first.
func Open(ctx context.Context, c Config) (db *DB, err error) {
	defer fault.Wrap(&err, "postgres.Open")
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	acfg, err := pgxpool.ParseConfig(c.AdminURL)
	if err != nil {
		return nil, fault.E(fault.Invalid, "invalid_database_url", "The database URL could not be parsed.")
	}
	acfg.MaxConns = 8
	admin, err := pgxpool.NewWithConfig(ctx, acfg)
	if err != nil {
		return nil, err
	}
	db = &DB{admin: admin, log: c.Logger, now: c.Now}
	db.keys.db = db
	appURL := c.AppURL
	if appURL == "" {
		var role, pw string
		if err := admin.QueryRow(ctx, `SELECT role, password FROM bulkhead_control.role_credentials WHERE role LIKE 'bulkhead\_gw\_%'`).Scan(&role, &pw); err != nil {
			admin.Close()
			return nil, fmt.Errorf("read the gateway credential (has `bulkhead migrate` run?): %w", err)
		}
		u, err := url.Parse(c.AdminURL)
		if err != nil || u.Scheme == "" {
			admin.Close()
			return nil, fault.E(fault.Invalid, "invalid_database_url", "The database URL must be a postgres:// URL.")
		}
		u.User = url.UserPassword(role, pw)
		appURL = u.String()
	}
	// This build's statements need its migrations; a newer bulkhead's
	// are made to keep older ones working through a rollout. A role that
	// may not read goose's table (a control-plane role of bulkhead_owner,
	// say) is not checked.
	applied, readable, err := readAppliedVersion(ctx, admin)
	if err != nil {
		admin.Close()
		return nil, err
	}
	switch known := SchemaVersion(); {
	case !readable:
	case applied < known:
		admin.Close()
		return nil, fault.Errorf(fault.Conflict, "not_migrated",
			"The database is at migration %d; this bulkhead needs %d. Run bulkhead migrate (with this release or a later one) first.", applied, known)
	case applied > known:
		c.Logger.WarnContext(ctx, "the database was migrated by a newer bulkhead", "migration", applied, "this_build", known)
	}
	pcfg, err := GatewayPoolConfig(appURL)
	if err != nil {
		admin.Close()
		return nil, err
	}
	switch {
	case c.AppMaxConns > 0:
		pcfg.MaxConns = c.AppMaxConns
	case !strings.Contains(appURL, "pool_max_conns"):
		pcfg.MaxConns = DefaultAppMaxConns()
	}
	db.business.adminURL, db.business.maxConns = c.AdminURL, pcfg.MaxConns
	db.app, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		admin.Close()
		return nil, err
	}
	db.AppRole = pcfg.ConnConfig.User
	return db, nil
}

// PingApp connects the data API's pool as the gateway role, so that a
// server fails at its start, not at its first request, when that role
// cannot log in. Open does not connect that pool: a process that never
// serves the data API (an authorizer, a command) then holds no connection
// of the gateway role, whose connection limit the servers need.
func (db *DB) PingApp(ctx context.Context) error {
	if err := db.app.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: connect as %s: %w", db.AppRole, err)
	}
	return nil
}

// Ping checks that PostgreSQL answers on both of a server's pools: the
// control plane's, and the data API's as the gateway role. A pool whose
// every connection is in use counts as answering without a ping: its
// connections are serving requests, and a ping would only queue behind
// them, failing a busy server's readiness (and every replica's at once).
func (db *DB) Ping(ctx context.Context) error {
	if err := pingUnlessBusy(ctx, db.admin); err != nil {
		return fmt.Errorf("postgres: connect as the control plane: %w", err)
	}
	if err := pingUnlessBusy(ctx, db.app); err != nil {
		return fmt.Errorf("postgres: connect as %s: %w", db.AppRole, err)
	}
	return nil
}

// pingUnlessBusy pings p, unless all of its connections are in use.
func pingUnlessBusy(ctx context.Context, p *pgxpool.Pool) error {
	if st := p.Stat(); st.IdleConns() == 0 && st.TotalConns() >= st.MaxConns() {
		return nil
	}
	return p.Ping(ctx)
}

// AppPoolConfig parses the URL of an app login role and applies the rules
// every pool that carries tenant data follows: the extended protocol with
// the context always a bound parameter (it never appears in SQL text or
// pg_stat_activity), and the simple protocol refused. It is the config for
// pools that run business code: unnamed statements, and no statement
// cache of pgx's, so that what is prepared on a connection is business
// code's own, which the reset before another principal drops ([ScopedTx]).
func AppPoolConfig(appURL string) (*pgxpool.Config, error) {
	pcfg, err := tenantPoolConfig(appURL)
	if err != nil {
		return nil, err
	}
	pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pcfg.ConnConfig.StatementCacheCapacity = 0
	pcfg.ConnConfig.DescriptionCacheCapacity = 0
	// Whether the login may take session advisory locks decides what
	// ScopedTx releases when it keeps a connection for one principal.
	pcfg.AfterConnect = noteAdvisoryLocks
	return pcfg, nil
}

// GatewayPoolConfig is the config of the pool of bulkhead's own data API,
// which never runs business code (that gets its own pool, see
// [DB.Business]). By default it is [AppPoolConfig]'s: the library's
// statements go unnamed, as bulkhead's hardening rules say. With
// default_query_exec_mode=cache_statement in the URL, an operator opts in
// to prepared statements: each is prepared once per connection and cached
// (at most [StatementCacheSize]), so PostgreSQL keeps its plan instead of
// parsing and planning every request. A prepared statement holds SQL text
// with placeholders, never a tenant's values or context, and no other code
// runs on these connections; docs/PERFORMANCE.md measures the difference.
func GatewayPoolConfig(appURL string) (*pgxpool.Config, error) {
	pcfg, err := tenantPoolConfig(appURL)
	if err != nil {
		return nil, err
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = GatewayApplicationName
	if !strings.Contains(appURL, "default_query_exec_mode=cache_statement") {
		pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		pcfg.ConnConfig.StatementCacheCapacity = 0
		pcfg.ConnConfig.DescriptionCacheCapacity = 0
		return pcfg, nil
	}
	pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	pcfg.ConnConfig.StatementCacheCapacity = StatementCacheSize
	pcfg.ConnConfig.DescriptionCacheCapacity = 0
	return pcfg, nil
}

// tenantPoolConfig parses appURL, refusing the simple protocol, and names
// the application; the caller chooses the statement mode.
func tenantPoolConfig(appURL string) (*pgxpool.Config, error) {
	pcfg, err := pgxpool.ParseConfig(appURL)
	if err != nil {
		return nil, fault.E(fault.Invalid, "invalid_database_url", "The app database URL could not be parsed.")
	}
	if pcfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol {
		return nil, fault.E(fault.Invalid, "simple_protocol_refused",
			"The simple query protocol puts tenant contexts into SQL text; bulkhead refuses it. Remove default_query_exec_mode=simple_protocol.")
	}
	if pcfg.ConnConfig.RuntimeParams == nil {
		pcfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = "bulkhead"
	// Isolation: pgx keeps notifications that arrive on a connection in a
	// buffer of its own, which DISCARD ALL does not empty; the next
	// tenant's transaction on the connection could read them. A
	// connection that carries tenant work drops them (NOTIFY the command
	// works for any role; a LISTEN lasts until the reset before another
	// principal).
	pcfg.ConnConfig.OnNotification = func(*pgconn.PgConn, *pgconn.Notification) {}
	return pcfg, nil
}

// DefaultAppMaxConns is the app pool's size when none is configured: 4 per
// CPU, at least 8.
func DefaultAppMaxConns() int32 { return int32(max(8, 4*runtime.NumCPU())) }

// GatewayApplicationName is the application_name of the data API's
// connections in pg_stat_activity; business code's are "bulkhead".
const GatewayApplicationName = "bulkhead-gateway"

// StatementCacheSize is how many prepared statements an app connection
// keeps. The data API has a few statement shapes per table and schema; the
// least recently used one is deallocated beyond this.
const StatementCacheSize = 128

// Close closes the pools.
func (db *DB) Close() {
	if db.app != nil {
		db.app.Close()
	}
	db.business.once.Do(func() {}) // waits for a pool being made, and stops any later one
	if db.business.pool != nil {
		db.business.pool.Close()
	}
	db.admin.Close()
}

// Business returns the pool for business code in this process (the Go
// library's DB.Tx in a minter), made on first use. It logs in as the
// database's business role (bulkhead_tx_…), never the gateway's: any role
// can change its own password and session defaults, and business code must
// not be able to do that to the role the data API serves every tenant
// with. Contexts for it must name that role as their audience: the pool's
// ConnConfig.User.
func (db *DB) Business(ctx context.Context) (*pgxpool.Pool, error) {
	db.business.once.Do(func() {
		db.business.pool, db.business.err = db.openBusiness(ctx)
	})
	return db.business.pool, db.business.err
}

func (db *DB) openBusiness(ctx context.Context) (*pgxpool.Pool, error) {
	var role, pw string
	err := db.admin.QueryRow(ctx, `SELECT role, password FROM bulkhead_control.role_credentials WHERE starts_with(role, $1)`, BusinessRolePrefix).Scan(&role, &pw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errors.New("this database has no business role (bulkhead_tx_…) yet: run `bulkhead migrate`")
	}
	if err != nil {
		return nil, fmt.Errorf("read the business role's credential: %w", err)
	}
	u, err := url.Parse(db.business.adminURL)
	if err != nil || u.Scheme == "" {
		return nil, fault.E(fault.Invalid, "invalid_database_url", "The database URL must be a postgres:// URL.")
	}
	u.User = url.UserPassword(role, pw)
	cfg, err := AppPoolConfig(u.String())
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = db.business.maxConns
	return pgxpool.NewWithConfig(ctx, cfg)
}

// Admin returns the admin pool, for tools that inspect the database as the
// control plane (lint, gameday set-up). Never hand it to business code.
func (db *DB) Admin() *pgxpool.Pool { return db.admin }

// App returns the app pool (the gateway role). Tenant work on it must go
// through [DB.ScopedTx].
func (db *DB) App() *pgxpool.Pool { return db.app }

// ownerTx runs fn in a transaction on the admin pool as bulkhead_owner.
func (db *DB) ownerTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
			return err
		}
		return fn(tx)
	})
}

// Translate maps a driver error to a fault error. It is the only place
// that reads SQLSTATEs.
//
//   - no rows → NotFound
//   - 23505 unique violation → Conflict
//   - 23503 foreign key violation → Invalid: composite tenant keys make
//     "absent" and "another tenant's" the same error
//   - 42501 insufficient privilege, including a row-security WITH CHECK
//     violation (a write aimed outside the caller's tenant) → Denied
//   - 22xxx data exceptions, 23502 not-null, 23514 check → Invalid
//   - 21000 cardinality violation (an upsert naming a key twice) → Invalid
//   - 57014 statement timeout → Unavailable
func Translate(err error) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &fault.Error{Kind: fault.NotFound, Code: "not_found", Message: "Not found.", Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &fault.Error{Kind: fault.Canceled, Code: "canceled", Message: "The request was canceled or ran out of time.", Err: err}
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case pe.Code == "23505":
		return &fault.Error{Kind: fault.Conflict, Code: "conflict", Message: "A row with the same key already exists.", Err: err}
	case pe.Code == "23503":
		return &fault.Error{Kind: fault.Invalid, Code: "invalid_reference", Message: "A referenced row does not exist.", Err: err}
	case pe.Code == "42501" && strings.Contains(pe.Message, "row-level security"):
		return &fault.Error{Kind: fault.Denied, Code: "row_security_violation", Message: "The write is not allowed for this tenant.", Err: err}
	case pe.Code == "42501":
		return &fault.Error{Kind: fault.Denied, Code: "permission_denied", Message: "The database refused the operation.", Err: err}
	case pe.Code == "23502":
		return &fault.Error{Kind: fault.Invalid, Code: "not_null_violation", Message: "A required value is missing.", Err: err}
	case pe.Code == "23514":
		return &fault.Error{Kind: fault.Invalid, Code: "check_violation", Message: "A value is out of the allowed range.", Err: err}
	case len(pe.Code) == 5 && pe.Code[:2] == "22":
		return &fault.Error{Kind: fault.Invalid, Code: "invalid_value", Message: "A value has the wrong type or format.", Err: err}
	case pe.Code == "21000":
		// cardinality_violation: an upsert whose body names one key twice
		// ("ON CONFLICT DO UPDATE command cannot affect row a second time").
		return &fault.Error{Kind: fault.Invalid, Code: "duplicate_key_in_body", Message: "The body names the same key more than once; an upsert can change a row only once.", Err: err}
	case pe.Code == "42P10":
		return &fault.Error{Kind: fault.Invalid, Code: "invalid_conflict_target", Message: "on_conflict must name the columns of a unique key (for tenant tables: tenant_id and id).", Err: err}
	case pe.Code == "57014":
		return &fault.Error{Kind: fault.Unavailable, Code: "statement_timeout", Message: "The statement took too long.", Err: err}
	case pe.Code == "53300":
		return &fault.Error{Kind: fault.Unavailable, Code: "too_many_connections", Message: "The database is busy.", Err: err}
	}
	return err
}

// keyCache holds keys by purpose and reloads them when older than maxAge,
// so a rotation made by another process is seen within seconds.
type keyCache struct {
	db     *DB
	mu     sync.Mutex
	seq    uint64 // loads so far, of any purpose
	loaded map[KeyPurpose]time.Time
	keys   map[KeyPurpose][]Key
}

const keyCacheAge = 5 * time.Second

// Keys returns the verifying keys of purpose, the current signer first,
// from a cache that is at most a few seconds old.
func (db *DB) Keys(ctx context.Context, purpose KeyPurpose) ([]Key, error) {
	c := &db.keys
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.get(ctx, db, purpose)
}

// KeySet is the verifying keys of some purposes as the key cache held them
// at one moment. Seq orders key sets read from one DB: a set with a higher
// Seq was read later, and none of its purposes' keys were loaded earlier
// than in a set with a lower Seq; two sets with the same Seq hold the same
// keys.
type KeySet struct {
	Seq  uint64
	Keys map[KeyPurpose][]Key // by purpose, each as Keys returns it
}

// KeySet returns the verifying keys of purposes, read together from the
// cache that Keys reads, with their place in the order of reads (see
// [KeySet]): a caller that builds something from keys can tell a set read
// before the one it already has.
func (db *DB) KeySet(ctx context.Context, purposes ...KeyPurpose) (KeySet, error) {
	c := &db.keys
	c.mu.Lock()
	defer c.mu.Unlock()
	set := KeySet{Keys: make(map[KeyPurpose][]Key, len(purposes))}
	for _, p := range purposes {
		ks, err := c.get(ctx, db, p)
		if err != nil {
			return KeySet{}, err
		}
		set.Keys[p] = ks
	}
	set.Seq = c.seq
	return set, nil
}

// get returns the keys of purpose, loading them if the cache has none
// younger than keyCacheAge. c.mu must be held.
func (c *keyCache) get(ctx context.Context, db *DB, purpose KeyPurpose) ([]Key, error) {
	now := db.now()
	if t, ok := c.loaded[purpose]; ok && now.Sub(t) < keyCacheAge {
		return c.keys[purpose], nil
	}
	ks, err := db.FindKeys(ctx, purpose)
	if err != nil {
		return nil, err
	}
	if c.loaded == nil {
		c.loaded = map[KeyPurpose]time.Time{}
	}
	if c.keys == nil {
		c.keys = map[KeyPurpose][]Key{}
	}
	c.seq++
	c.loaded[purpose], c.keys[purpose] = now, ks
	return ks, nil
}

// SigningKey returns the current signer of purpose.
func (db *DB) SigningKey(ctx context.Context, purpose KeyPurpose) (Key, error) {
	ks, err := db.Keys(ctx, purpose)
	if err != nil {
		return Key{}, err
	}
	now := db.now()
	for _, k := range ks {
		if k.Signing(now) {
			return k, nil
		}
	}
	return Key{}, fault.Errorf(fault.Unavailable, "no_signing_key", "No %s key can sign; run `bulkhead keys rotate --purpose %s`.", purpose, purpose)
}

func (c *keyCache) invalidate() {
	c.mu.Lock()
	c.loaded = nil
	c.mu.Unlock()
}
