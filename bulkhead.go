package bulkhead

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/fresh"
	"github.com/bulkhead-dev/bulkhead/internal/tokencache"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// DefaultContextTTL is how long a signed tenant context lives: about one
// request deadline.
const DefaultContextTTL = 45 * time.Second

// DefaultStatementTimeout bounds each statement of a transaction [DB.Tx]
// runs, unless Config.StatementTimeout says otherwise: below the default
// context lifetime, which a transaction cannot outlive anyway.
const DefaultStatementTimeout = 30 * time.Second

// MaxStatementTimeout is the longest Config.StatementTimeout.
const MaxStatementTimeout = time.Hour

// MaxTenantCacheTTL is the longest Config.TenantCacheTTL, and its default:
// a move's shortest settling (4 s, bulkhead tenants move --settle) less
// postgres.MoveClockSkew, so that no minter routes a moved tenant to its
// old place once the move has ended.
const MaxTenantCacheTTL = 2 * time.Second

// MaxContextTTL is the longest lifetime the database verifier accepts.
const MaxContextTTL = 5 * time.Minute

// Config configures Open. Set exactly one of DatabaseURL and AppDatabaseURL.
type Config struct {
	// DatabaseURL is the control plane's connection (a superuser, or a role
	// that may take bulkhead_owner). A DB opened with it is a minter.
	DatabaseURL string
	// AppDatabaseURL is an app login role's connection, for business code.
	// A DB opened with it holds no keys and only runs vended contexts.
	AppDatabaseURL string
	// ContextTTL is the lifetime of minted contexts; zero means
	// DefaultContextTTL.
	ContextTTL time.Duration
	// TenantCacheTTL bounds how stale the minter's view of a tenant (its
	// status, placement and plan) may be; zero means MaxTenantCacheTTL, and
	// a longer one is refused. The database checks the status itself on
	// every statement, so for a suspension this only affects how fast the
	// HTTP layer answers 401 instead of an empty result; for a move it is
	// how long a minter may still route the tenant to its old place, which
	// the move's settling outlasts (postgres.MoveOptions.Settle); a new plan
	// applies to the minter's contexts within it.
	TenantCacheTTL time.Duration
	// StatementTimeout bounds each statement of the transactions Tx runs
	// (statement_timeout, set with the context): one that runs longer
	// fails with the fault code statement_timeout, and the transaction
	// rolls back. Zero means DefaultStatementTimeout; a negative value
	// leaves the login role's own statement_timeout; otherwise 1ms to
	// MaxStatementTimeout. Business code may change it inside its
	// transaction: it bounds honest code's slow queries, while the
	// watchdog of bulkhead serve bounds every app role's statements.
	StatementTimeout time.Duration
	Logger           *slog.Logger
	Now              func() time.Time
}

// DB is bulkhead's handle on the database.
type DB struct {
	pg       *postgres.DB  // minter only
	app      *pgxpool.Pool // the pool tenant work runs on
	appRole  string
	ttl      time.Duration
	log      *slog.Logger
	now      func() time.Time
	timeout  time.Duration // statement_timeout of Tx; zero leaves the role's
	tenants  *tenantCache  // minter only
	policies fresh.Cache[policiesKey, *TenantPolicies]
	parsed   tokencache.Cache[*policy.Document] // see loadPolicies
}

// ErrNotMinter is returned when a DB opened for business code is asked to
// do what only a trusted minter may.
var ErrNotMinter = fault.E(fault.Denied, "not_a_minter", "This process holds no signing keys: it can only use contexts vended to it.")

// Open connects to PostgreSQL. With Config.DatabaseURL it is a minter and
// expects `bulkhead migrate` to have run; with Config.AppDatabaseURL it is a
// business-code handle. Open refuses the simple query protocol.
func Open(ctx context.Context, cfg Config) (db *DB, err error) {
	defer fault.Wrap(&err, "bulkhead.Open")
	if (cfg.DatabaseURL == "") == (cfg.AppDatabaseURL == "") {
		return nil, fault.E(fault.Invalid, "invalid_config", "Set exactly one of DatabaseURL (a minter) and AppDatabaseURL (business code).")
	}
	if cfg.ContextTTL == 0 {
		cfg.ContextTTL = DefaultContextTTL
	}
	if cfg.ContextTTL < time.Second || cfg.ContextTTL > MaxContextTTL {
		return nil, fault.Errorf(fault.Invalid, "invalid_config", "ContextTTL must be between 1s and %s.", MaxContextTTL)
	}
	if cfg.TenantCacheTTL == 0 {
		cfg.TenantCacheTTL = MaxTenantCacheTTL
	}
	if cfg.TenantCacheTTL < 0 || cfg.TenantCacheTTL > MaxTenantCacheTTL {
		return nil, fault.Errorf(fault.Invalid, "invalid_config", "TenantCacheTTL must be between 0 and %s: a move lets servers' tenant caches expire before it resumes the tenant in its new place, and waits no longer than that.", MaxTenantCacheTTL)
	}
	switch {
	case cfg.StatementTimeout == 0:
		cfg.StatementTimeout = DefaultStatementTimeout
	case cfg.StatementTimeout < 0:
		cfg.StatementTimeout = 0
	case cfg.StatementTimeout < time.Millisecond || cfg.StatementTimeout > MaxStatementTimeout:
		return nil, fault.Errorf(fault.Invalid, "invalid_config", "StatementTimeout must be between 1ms and %s (or negative, to leave the login role's statement_timeout).", MaxStatementTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	db = &DB{ttl: cfg.ContextTTL, timeout: cfg.StatementTimeout, log: cfg.Logger, now: cfg.Now}
	if cfg.DatabaseURL != "" {
		pg, err := postgres.Open(ctx, postgres.Config{AdminURL: cfg.DatabaseURL, Logger: cfg.Logger, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		db.pg, db.app, db.appRole = pg, pg.App(), pg.AppRole
		db.tenants = newTenantCache(pg, cfg.TenantCacheTTL, cfg.Now)
		db.policies.MaxAge, db.policies.Now, db.policies.Load = policiesAge, cfg.Now, db.loadPolicies
		db.parsed.Max = parsedPoliciesMax
		return db, nil
	}
	pcfg, err := postgres.AppPoolConfig(cfg.AppDatabaseURL)
	if err != nil {
		return nil, err
	}
	db.app, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	db.appRole = pcfg.ConnConfig.User
	return db, nil
}

// Close closes the connections.
func (db *DB) Close() {
	if db.pg != nil {
		db.pg.Close()
		return
	}
	db.app.Close()
}

// Postgres returns the control plane's store. It is nil for business code.
func (db *DB) Postgres() *postgres.DB { return db.pg }

// AppRole is the login role tenant work runs as.
func (db *DB) AppRole() string { return db.appRole }

// Tx runs fn in one transaction scoped to the tenant in ctx. It requires a
// tenant in ctx: a vended context put there with [WithSigned], or, in a
// minter, a [tenant.Principal] (from [Middleware]) for which it mints one.
// No tenant in ctx is an error, never "all tenants".
//
// Inside fn, name tables with [Table] (or [Schema]): a silo tenant's rows
// live in its own schema. Each statement is bounded by
// Config.StatementTimeout, or by ctx's [WithStatementTimeout], and by ctx's
// [WithParallelWorkers] if it has one. Whatever fn does to the session is
// reset before the connection serves anyone else: another tenant, user or
// role, or another login role's audience. A principal's consecutive
// transactions on one connection share its session, as they share this
// process, which keeps PostgreSQL's plans for them; the reset (DISCARD
// ALL) travels with the next principal's first statement.
//
// BEGIN and the context travel with fn's first statement, and COMMIT
// with the reset. fn must not end the transaction itself (that is an
// error), nor use the pgx.Tx after it returns (every method then fails
// with pgx.ErrTxClosed).
func (db *DB) Tx(ctx context.Context, fn func(pgx.Tx) error) error {
	s, ok := tenant.SignedFromContext(ctx)
	if !ok && db.pg == nil {
		return tenant.ErrNoTenant
	}
	pool := db.app
	if db.pg != nil {
		// In a minter, business code gets a pool of its own, as a login
		// role of its own: not the gateway's, whose statements are cached
		// and whose password and session defaults business code must not
		// be able to change (any role may change its own).
		var err error
		if pool, err = db.pg.Business(ctx); err != nil {
			return err
		}
	}
	if !ok {
		p, ok := tenant.FromContext(ctx)
		if !ok || p.Platform {
			return tenant.ErrNoTenant
		}
		var err error
		if s, err = db.Mint(ctx, p, MintOptions{Audience: pool.Config().ConnConfig.User}); err != nil {
			return err
		}
		ctx = tenant.WithSigned(ctx, s)
	}
	o := postgres.ScopeOptions{Untrusted: true, StatementTimeout: db.timeout, Principal: principalKey(s.Token)}
	if d, ok := ctx.Value(statementTimeoutKey{}).(time.Duration); ok {
		o.StatementTimeout = d
	}
	if n, ok := ctx.Value(parallelWorkersKey{}).(int); ok {
		o.ParallelWorkers = &n
	}
	return postgres.ScopedTx(ctx, pool, s.Token, o, fn)
}

// principalKey names whom a context serves, for the reset of business
// code's connections: one principal's consecutive transactions share a
// session, and the connection is reset before it serves any other. The
// claims are read as PostgreSQL reads them; PostgreSQL verifies them on
// every statement, so a context whose claims name another principal than
// it was minted for is refused there. A context that does not decode
// names none, and its connection is reset after it.
func principalKey(token string) string {
	c, err := ctxtoken.Decode(token)
	if err != nil {
		return ""
	}
	return strings.Join([]string{c.Audience, c.TenantID, c.Subject, c.Role}, "\x00")
}

type statementTimeoutKey struct{}

type parallelWorkersKey struct{}

// WithParallelWorkers returns a copy of ctx whose transactions run by
// [DB.Tx] let PostgreSQL start at most n parallel workers for one
// statement (max_parallel_workers_per_gather; a statement with n workers
// keeps n+1 CPUs busy): for one request, such as its tenant's plan allows
// (httpapi.PlanLimits puts it there). A negative n is taken as 0.
// Without it, the login role's setting applies (PostgreSQL's default is 2).
func WithParallelWorkers(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, parallelWorkersKey{}, min(max(n, 0), postgres.MaxParallelWorkers))
}

// WithStatementTimeout returns a copy of ctx whose transactions run by
// [DB.Tx] bound each statement by d instead of Config.StatementTimeout:
// for one request, such as its tenant's plan allows (httpapi.PlanLimits
// puts it there). d is whole milliseconds, at least one: a positive d
// under a millisecond is taken as 1ms, never as PostgreSQL's "none". A d
// of zero or less returns ctx as it is.
func WithStatementTimeout(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return ctx
	}
	return context.WithValue(ctx, statementTimeoutKey{}, max(d, time.Millisecond))
}

// WithSigned returns a copy of ctx carrying a context vended to this
// process (for example by POST /v1/auth/context or a Lambda authorizer),
// for [DB.Tx]. placement is the schema the vendor returned ("app" for the
// pool, or the silo's schema); "pool" is accepted too.
func WithSigned(ctx context.Context, token, placement string) (context.Context, error) {
	if _, err := ctxtoken.KeyID(token); err != nil {
		return ctx, fault.E(fault.Unauthenticated, "invalid_context", "The tenant context is malformed.")
	}
	if _, err := postgres.Schema(placement); err != nil {
		return ctx, fault.E(fault.Invalid, "invalid_placement", "The placement is not one bulkhead makes.")
	}
	return tenant.WithSigned(ctx, tenant.Signed{Token: token, Placement: placement}), nil
}

// Schema returns the schema holding the tenant tables of the tenant in ctx:
// "app" for pool tenants, the silo's schema otherwise.
func Schema(ctx context.Context) (string, error) {
	s, ok := tenant.SignedFromContext(ctx)
	if !ok {
		return "", tenant.ErrNoTenant
	}
	return postgres.Schema(s.Placement)
}

// Table returns the quoted, schema-qualified name of a tenant table for
// the tenant in ctx, for use in SQL inside [DB.Tx].
func Table(ctx context.Context, name string) (string, error) {
	s, err := Schema(ctx)
	if err != nil {
		return "", err
	}
	if !slices.Contains(postgres.TenantTableNames, name) {
		return "", fault.Errorf(fault.NotFound, "table_not_found", "No tenant table %q.", name)
	}
	return pgx.Identifier{s, name}.Sanitize(), nil
}

// Table returns the quoted, schema-qualified name of a tenant table for the
// tenant in ctx: from a vended context, or, in a minter, from the principal.
func (db *DB) Table(ctx context.Context, name string) (string, error) {
	if _, ok := tenant.SignedFromContext(ctx); ok || db.pg == nil {
		return Table(ctx, name)
	}
	p, ok := tenant.FromContext(ctx)
	if !ok || p.Platform {
		return "", tenant.ErrNoTenant
	}
	t, err := db.ResolveTenant(ctx, p)
	if err != nil {
		return "", err
	}
	return Table(tenant.WithSigned(ctx, tenant.Signed{Token: "-", Placement: t.Placement}), name)
}

// MintOptions tune Mint.
type MintOptions struct {
	Audience  string   // the login role that may use the context; default: this DB's app role
	Scope     []string // commands allowed; default: what the tenant's policies allow on every table (PolicyScope)
	RequestID string   // default: a new UUID
}

// ScopeFor returns the commands a tenant role may run on tenant tables
// without policies: admins all four, members all but DELETE. Minters use
// PolicyScope instead.
func ScopeFor(r tenant.Role) []string {
	if r == tenant.Admin {
		return []string{"select", "insert", "update", "delete"}
	}
	return []string{"select", "insert", "update"}
}

// Mint signs a tenant context for p. Only a minter can.
func (db *DB) Mint(ctx context.Context, p tenant.Principal, o MintOptions) (s tenant.Signed, err error) {
	if db.pg == nil {
		return s, ErrNotMinter
	}
	t, err := db.ResolveTenant(ctx, p)
	if err != nil {
		return s, err
	}
	k, err := db.pg.SigningKey(ctx, postgres.KeyContext)
	if err != nil {
		return s, err
	}
	if o.Audience == "" {
		o.Audience = db.appRole
	}
	if o.Scope == nil {
		if o.Scope, err = db.PolicyScope(ctx, p, t); err != nil {
			return s, err
		}
	}
	if o.RequestID == "" {
		o.RequestID = uuid.NewString()
	}
	now := db.now()
	exp := now.Add(db.ttl)
	tok, err := ctxtoken.Mint(ctxtoken.Key{ID: k.ID, Secret: k.Secret}, ctxtoken.Claims{
		Tenant: string(t.Slug), TenantID: string(t.ID), Subject: p.Subject, Role: string(p.Role),
		Scope: o.Scope, IssuedAt: now.Unix(), ExpiresAt: exp.Unix(), Audience: o.Audience, RequestID: o.RequestID,
	})
	if err != nil {
		return s, err
	}
	return tenant.Signed{Token: tok, TenantID: t.ID, Placement: t.Placement, Expires: exp}, nil
}

// ResolveTenant returns the active tenant of p, by UUID or slug, from a
// short-lived cache. A tenant that is not active, or absent, is
// Unauthenticated: its tokens stop working. A tenant that is moving
// between the pool and a silo is Unavailable (tenant_moving) for the
// move's few seconds.
func (db *DB) ResolveTenant(ctx context.Context, p tenant.Principal) (*tenant.Tenant, error) {
	if db.pg == nil {
		return nil, ErrNotMinter
	}
	t, err := db.tenants.get(ctx, p)
	if err != nil {
		if fault.KindOf(err) == fault.NotFound {
			return nil, fault.From(errTenantGone, err)
		}
		return nil, err
	}
	if t.Status == tenant.Moving {
		return nil, errTenantMoving
	}
	if t.Status != tenant.Active {
		return nil, errTenantGone
	}
	return t, nil
}

// errTenantMoving answers the tenant's own users while it moves between
// the pool and a silo: only a token already verified as the tenant's gets
// it, so it tells nobody else anything.
var errTenantMoving = tenant.ErrMoving

// errTenantGone answers for a token whose tenant is absent or not active,
// exactly as for any other invalid token.
var errTenantGone = identity.ErrInvalidToken

// ForgetTenant drops a tenant from the caches, after the control plane
// changed it or its policies.
func (db *DB) ForgetTenant(id tenant.ID) {
	if db.tenants != nil {
		db.tenants.forget(id)
	}
	db.ForgetPolicies(id)
}

// tenantCache holds tenants by UUID or slug for a couple of seconds,
// reloaded ahead of expiry while they are in use.
type tenantCache struct {
	cache fresh.Cache[tenantKey, *tenant.Tenant]
}

// tenantKey names a tenant by UUID or, when there is none, by slug.
type tenantKey struct {
	id   tenant.ID
	slug tenant.Slug
}

func newTenantCache(pg *postgres.DB, ttl time.Duration, now func() time.Time) *tenantCache {
	c := &tenantCache{}
	c.cache.MaxAge, c.cache.Now = ttl, now
	c.cache.Load = func(ctx context.Context, k tenantKey) (*tenant.Tenant, error) {
		if k.id != "" {
			return pg.FindTenantByID(ctx, k.id)
		}
		return pg.FindTenantBySlug(ctx, k.slug, false)
	}
	return c
}

func (c *tenantCache) get(ctx context.Context, p tenant.Principal) (*tenant.Tenant, error) {
	k := tenantKey{id: p.TenantID}
	if k.id == "" {
		if p.Tenant == "" {
			return nil, tenant.ErrNoTenant
		}
		k.slug = p.Tenant
	}
	t, err := c.cache.Get(ctx, k)
	if err != nil {
		return nil, err
	}
	return matchSlug(t, p)
}

// matchSlug refuses a principal whose slug and UUID name two tenants.
func matchSlug(t *tenant.Tenant, p tenant.Principal) (*tenant.Tenant, error) {
	if p.Tenant != "" && t.Slug != p.Tenant {
		return nil, tenant.ErrNotFound
	}
	return t, nil
}

func (c *tenantCache) forget(id tenant.ID) {
	c.cache.ForgetFunc(func(_ tenantKey, t *tenant.Tenant) bool { return t.ID == id })
}
