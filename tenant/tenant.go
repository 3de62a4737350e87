// Package tenant is bulkhead's vocabulary: tenants, tiers, principals, and
// how they travel in a context.Context.
//
// # Trust model
//
// A tenant has two names. Its slug ([Slug], such as "acme") is chosen by a
// person, appears in URLs and logs, and is never handed out again once the
// tenant is gone. Its [ID] is a random UUID made at onboarding that never
// changes; it is what rows, signed contexts, caches and audit events carry,
// so a re-created slug can never inherit an old tenant's data or tokens.
//
// A [Principal] is who is calling, as established by a verified token. It is
// put in the request context by trusted code only (the HTTP middleware, the
// Lambda authorizer adapter) and read by the one place that scopes database
// work to a tenant. Business code never chooses its tenant: it receives a
// context that already carries one.
package tenant

import (
	"context"
	"errors"
	"regexp"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// ID is a tenant's immutable UUID in its canonical lowercase text form.
type ID string

// Slug is a tenant's human-chosen name, unique forever.
type Slug string

// Tier says where a tenant's data lives.
type Tier string

// The tiers.
const (
	Pool Tier = "pool" // shared tables, rows carry tenant_id
	Silo Tier = "silo" // the tenant's own schema
)

// Valid reports whether t is a known tier.
func (t Tier) Valid() bool { return t == Pool || t == Silo }

// Status is a tenant's lifecycle state.
type Status string

// The statuses. Only Active tenants' contexts verify in the database.
const (
	Active      Status = "active"
	Suspended   Status = "suspended"
	Moving      Status = "moving" // between the pool and a silo; see postgres.DB.MoveTenant
	Offboarding Status = "offboarding"
	Offboarded  Status = "offboarded"
)

// Role is a principal's role inside its tenant.
type Role string

// The roles.
const (
	Admin  Role = "admin"  // tenant administrator
	Member Role = "member" // ordinary user
)

// Valid reports whether r is a known tenant role.
func (r Role) Valid() bool { return r == Admin || r == Member }

// Tenant is one entry of the tenant catalog.
type Tenant struct {
	ID        ID        `json:"uuid"`
	Slug      Slug      `json:"id"` // the API calls the slug "id"
	Name      string    `json:"name"`
	Tier      Tier      `json:"tier"`
	Status    Status    `json:"status"`
	Placement string    `json:"placement"` // "pool", or the silo's schema name
	Plan      string    `json:"plan"`      // the policy tier template that bounds it: "basic" or "premium"
	CreatedAt time.Time `json:"created_at"`
}

// Principal is an authenticated caller.
type Principal struct {
	Subject  string // the user's id, or the external IdP's sub
	Issuer   string // the token's iss
	Email    string
	Tenant   Slug // empty for platform admins
	TenantID ID   // empty for platform admins
	Role     Role
	Platform bool // a platform administrator (its own issuer, key and audience)
	Token    string
	Expires  time.Time
}

var slugPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,39}$`)

var reservedSlugs = map[Slug]bool{
	"admin": true, "administrator": true, "api": true, "app": true, "auth": true,
	"bulkhead": true, "control": true, "default": true, "information-schema": true,
	"internal": true, "null": true, "pg-catalog": true, "platform": true, "pool": true,
	"postgres": true, "public": true, "rest": true, "root": true, "silo": true,
	"system": true, "template": true, "tenant": true, "tenants": true, "test": true,
	"www": true, "metrics": true, "batch": true, "health": true, "static": true, "well-known": true,
}

// ErrInvalidSlug is returned for a slug outside the grammar or on the
// reserved list.
var ErrInvalidSlug = fault.E(fault.Invalid, "invalid_tenant_id",
	"A tenant id must be 2 to 40 characters of lowercase ASCII letters, digits and hyphens, start with a letter, and not be a reserved name.")

// ErrNotFound is returned for a tenant that does not exist or that the caller
// cannot see.
var ErrNotFound = fault.E(fault.NotFound, "tenant_not_found", "The tenant does not exist.")

// ErrMoving answers a tenant's own users while it moves between the pool
// and a silo. Isolation: it is returned only once a token has verified as
// the tenant's, so it tells nobody else that the tenant moves.
var ErrMoving = fault.E(fault.Unavailable, "tenant_moving", "The tenant is being moved; try again in a few seconds.")

// ErrNoTenant is returned when work that must be scoped to a tenant finds no
// tenant in its context.
var ErrNoTenant = fault.E(fault.Unauthenticated, "no_tenant", "No tenant is associated with this request.")

// ParseSlug checks s against the slug grammar and the reserved list.
func ParseSlug(s string) (Slug, error) {
	if !slugPattern.MatchString(s) || reservedSlugs[Slug(s)] || endsWithHyphen(s) {
		return "", ErrInvalidSlug
	}
	return Slug(s), nil
}

func endsWithHyphen(s string) bool {
	return s[len(s)-1] == '-'
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ErrInvalidID is returned for a malformed tenant UUID.
var ErrInvalidID = fault.E(fault.Invalid, "invalid_tenant_uuid", "A tenant UUID must be in lowercase canonical form.")

// ParseID checks that s is a canonical lowercase UUID.
func ParseID(s string) (ID, error) {
	if !uuidPattern.MatchString(s) {
		return "", ErrInvalidID
	}
	return ID(s), nil
}

// SchemaName returns the opaque silo schema name for a tenant: "t_" and the
// 32 hex digits of its UUID. It never derives from the slug, so it cannot be
// truncated into another tenant's name or collide with a system schema.
func (id ID) SchemaName() string {
	b := make([]byte, 0, 34)
	b = append(b, 't', '_')
	for i := 0; i < len(id); i++ {
		if id[i] != '-' {
			b = append(b, id[i])
		}
	}
	return string(b)
}

type principalKey struct{}

// NewContext returns a copy of ctx that carries p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal in ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

type signedKey struct{}

// Signed is a signed tenant context (a "v1.<kid>.<payload>.<mac>" token)
// ready to be set as bulkhead.context, with the tenant it was minted for.
type Signed struct {
	Token     string
	TenantID  ID
	Placement string // "pool" or the silo schema name
	Expires   time.Time
}

// LogValue keeps the token out of logs.
func (s Signed) String() string { return "tenant.Signed{" + string(s.TenantID) + "}" }

// WithSigned returns a copy of ctx that carries a signed tenant context.
// Only trusted code (a minter, or an adapter handing over a vended context)
// calls it.
func WithSigned(ctx context.Context, s Signed) context.Context {
	return context.WithValue(ctx, signedKey{}, s)
}

// SignedFromContext returns the signed tenant context in ctx, if any.
func SignedFromContext(ctx context.Context) (Signed, bool) {
	s, ok := ctx.Value(signedKey{}).(Signed)
	return s, ok && s.Token != ""
}

// IsNotFound reports whether err is a tenant-not-found error.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
