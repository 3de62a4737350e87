package bulkhead

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/fresh"
	"github.com/bulkhead-dev/bulkhead/internal/strictjson"
	"github.com/bulkhead-dev/bulkhead/internal/tokencache"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// The issuers and audiences of bulkhead's own tokens. Platform-admin tokens
// have their own issuer, audience and key.
const (
	TokenIssuer        = "bulkhead"
	TokenAudience      = "bulkhead-api"
	AdminTokenIssuer   = "bulkhead-admin"
	AdminTokenAudience = "bulkhead-admin"
)

// Default token lifetimes.
const (
	DefaultTokenTTL      = 15 * time.Minute
	DefaultAdminTokenTTL = identity.DefaultPlatformTTL
	MaxAdminTokenTTL     = identity.MaxPlatformTTL
)

// AuthConfig configures NewAuth.
type AuthConfig struct {
	// External are identity providers whose tokens are accepted besides
	// bulkhead's own (each with a JWKS URL, issuer, audience and the claim
	// path of the tenant).
	External []identity.Trust
	// TokenTTL is the lifetime of tenant users' tokens; zero means
	// DefaultTokenTTL. It is also the longest lifetime a tenant token of
	// bulkhead's own issuer may have (to the second) to verify, so every
	// replica must be given the same one, and lowering it ends longer
	// tokens already issued.
	TokenTTL time.Duration
	// AdminTokenTTL is the default lifetime of platform-admin tokens;
	// zero means DefaultAdminTokenTTL.
	AdminTokenTTL time.Duration
}

// Auth issues and verifies tokens with the keys in the database. It is
// safe for concurrent use; a key rotation made by any process is picked up
// within seconds.
type Auth struct {
	db       *DB
	cfg      AuthConfig
	external *identity.Verifier

	users    userCache
	verified tokencache.Cache[tenant.Principal] // built-in tenant tokens
	rejected digestCache                        // tokens that failed for good
	accepted digestCache                        // tokens that passed lately, for Recognized

	mu   sync.Mutex
	cur  issuers // the installed key set
	gen  uint64  // generation of cur; 0 before the first
	seq  uint64  // postgres.KeySet.Seq of cur's keys
	kids string  // what changes when cur's keys do
}

// NewAuth returns the minter's token service.
func (db *DB) NewAuth(ctx context.Context, cfg AuthConfig) (*Auth, error) {
	if db.pg == nil {
		return nil, ErrNotMinter
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.AdminTokenTTL == 0 {
		cfg.AdminTokenTTL = DefaultAdminTokenTTL
	}
	a := &Auth{db: db, cfg: cfg, verified: tokencache.Cache[tenant.Principal]{Max: tokenCacheMax},
		rejected: digestCache{max: rejectCacheMax, age: rejectCacheAge},
		accepted: digestCache{max: acceptedCacheMax, age: acceptedCacheAge}}
	a.users.MaxAge, a.users.Now, a.users.Load = userCacheAge, db.now, a.loadUser
	for _, t := range cfg.External {
		if t.Issuer == TokenIssuer || t.Issuer == AdminTokenIssuer {
			return nil, fault.Errorf(fault.Invalid, "invalid_config", "An external identity provider cannot use bulkhead's own issuer %q.", t.Issuer)
		}
		if t.Platform {
			return nil, fault.E(fault.Invalid, "invalid_config", "External identity providers cannot issue platform-admin tokens.")
		}
	}
	if len(cfg.External) > 0 {
		a.external = &identity.Verifier{Trusted: cfg.External, Now: db.now, Logger: db.log, CacheSize: externalCacheMax}
		if err := a.external.Validate(); err != nil {
			return nil, err
		}
	}
	if _, err := a.current(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// Close stops background JWKS refreshes.
func (a *Auth) Close() {
	if a.external != nil {
		a.external.Close()
	}
}

// issuers is one installed key set: the verifier of bulkhead's own tokens
// and each purpose's keys to sign with.
type issuers struct {
	gen      uint64             // Auth.gen when it was installed
	internal *identity.Verifier // nil when no key verifies either purpose
	user     keyring
	admin    keyring
}

// keyring is one purpose's verifying keys, ordered as postgres.DB.Keys
// orders them (the newest signer first), with their private halves.
type keyring struct {
	stored []postgres.Key
	keys   []identity.SigningKey
}

func newKeyring(ks []postgres.Key) keyring {
	r := keyring{stored: ks, keys: make([]identity.SigningKey, len(ks))}
	for i, k := range ks {
		r.keys[i] = identity.SigningKey{ID: k.ID, Private: ed25519.NewKeyFromSeed(k.Secret[:ed25519.SeedSize])}
		if k.NotAfter != nil {
			r.keys[i].NotAfter = *k.NotAfter
		}
	}
	return r
}

// signing returns the keys with the current signer (the first that may
// sign at now) first and the others after it, verify-only; nil if none
// may sign.
func (r keyring) signing(now time.Time) []identity.SigningKey {
	for i, k := range r.stored {
		if k.Signing(now) {
			out := make([]identity.SigningKey, 0, len(r.keys))
			out = append(out, r.keys[i])
			out = append(out, r.keys[:i]...)
			return append(out, r.keys[i+1:]...)
		}
	}
	return nil
}

// tokenLifetimeSlack is how much longer than AuthConfig.TokenTTL a
// built-in tenant token's lifetime may be: iat and exp are whole seconds.
const tokenLifetimeSlack = time.Second

// current returns the installed key set, first installing the keys now in
// the database if they changed. Each installation has a generation of its
// own; it empties the verified cache, and only a verification made under
// the installed generation may fill it again (see remember). A key set
// read before the installed one (by a caller that waited for a.mu) is
// never installed over it.
func (a *Auth) current(ctx context.Context) (issuers, error) {
	ks, err := a.db.pg.KeySet(ctx, postgres.KeyJWT, postgres.KeyAdminJWT)
	if err != nil {
		return issuers{}, err
	}
	uk, ak := ks.Keys[postgres.KeyJWT], ks.Keys[postgres.KeyAdminJWT]
	var sig strings.Builder
	for _, k := range append(append([]postgres.Key{}, uk...), ak...) {
		sig.WriteString(k.ID)
		sig.WriteByte(',')
		if k.NotAfter != nil {
			sig.WriteString(k.NotAfter.String())
		}
		sig.WriteByte(';')
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen > 0 && (ks.Seq < a.seq || sig.String() == a.kids) {
		// What is installed was read as late as ks, or later.
		a.seq = max(a.seq, ks.Seq)
		return a.cur, nil
	}
	cur := issuers{user: newKeyring(uk), admin: newKeyring(ak)}
	var trusts []identity.Trust
	if len(uk) > 0 {
		ut := (&identity.Issuer{Issuer: TokenIssuer, Audience: TokenAudience, Keys: cur.user.keys}).Trust()
		// A tenant token is refused if it lives longer than this
		// server issues them for (not merely longer than identity.MaxTTL).
		ut.MaxLifetime = a.cfg.TokenTTL + tokenLifetimeSlack
		trusts = append(trusts, ut)
	}
	if len(ak) > 0 {
		// Admin tokens are issued for up to MaxAdminTokenTTL each
		// (IssueAdminToken's ttl), which is the trust's own limit.
		trusts = append(trusts, (&identity.Issuer{Issuer: AdminTokenIssuer, Audience: AdminTokenAudience, Keys: cur.admin.keys, Platform: true}).Trust())
	}
	if len(trusts) > 0 {
		v := &identity.Verifier{Trusted: trusts, Now: a.db.now, Logger: a.db.log,
			Revoked: func(ctx context.Context, t identity.TokenInfo) (bool, error) {
				if !t.Platform {
					return false, nil
				}
				return a.db.pg.TokenRevoked(ctx, t.ID)
			}}
		if err := v.Validate(); err != nil {
			return issuers{}, err
		}
		cur.internal = v
	}
	a.gen++
	cur.gen = a.gen
	a.cur, a.kids, a.seq = cur, sig.String(), ks.Seq
	// A rotation or retirement changes what verifies: forget what did.
	a.verified.Clear()
	return cur, nil
}

// remember puts a built-in tenant token that verified under the key set of
// generation gen in the verified cache, unless another key set has been
// installed since: the cache was emptied then, and a token checked against
// the older keys (perhaps under a key now retired) must not return to it.
// It holds a.mu, as current does while it installs and empties the cache.
func (a *Auth) remember(gen uint64, token string, p tenant.Principal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if gen == a.gen {
		a.verified.Put(token, p, p.Expires, a.db.now())
	}
}

// errNoBuiltinKey answers a token of bulkhead's own issuers when no key of
// either purpose verifies any more (all retired).
var errNoBuiltinKey = fault.From(identity.ErrInvalidToken, errors.New("no key verifies bulkhead's own tokens"))

// noSigningKey is the error of issuing for a purpose with no key that may
// sign (its signer retired, or only published keys left): the other
// purpose, and the keys that still verify, are not affected.
func noSigningKey(purpose postgres.KeyPurpose) error {
	return fault.Errorf(fault.Unavailable, "no_signing_key",
		"No %s signing key is available; run `bulkhead keys rotate --purpose %s`.", purpose, purpose)
}

// Verify turns a bearer token into a principal: bulkhead's own tokens
// (tenant users and platform admins) or an external provider's. A tenant
// principal's tenant must exist and be active, and a built-in token's user
// must still exist: tokens of offboarded tenants and deleted users stop
// working at once.
func (a *Auth) Verify(ctx context.Context, token string) (tenant.Principal, error) {
	cur, err := a.current(ctx)
	if err != nil {
		return tenant.Principal{}, err
	}
	v := cur.internal
	builtin := true
	// This cache holds only built-in tokens, by their exact text: a hit
	// needs no issuer check (and no parse of the payload) at all. The
	// external verifier has a cache of its own, which checks each hit
	// against the provider's current keys.
	p, ok := a.verified.Get(token, a.db.now())
	// A token in the reject cache failed bulkhead's own verifier for good
	// (the same text always reads the same issuer): refused again at once.
	if !ok && a.rejected.has(token, a.db.now()) {
		return tenant.Principal{}, identity.ErrInvalidToken
	}
	if !ok && a.external != nil {
		// Only with an external provider is there a verifier to choose;
		// without one, every token goes to bulkhead's own, which reads the
		// issuer itself, so it is not parsed twice.
		// A token the external verifier remembers is its own: no need to
		// decode the payload again to read the issuer.
		if a.external.Remembers(token) {
			v, builtin = a.external, false
		} else if iss := unverifiedIssuer(token); iss != TokenIssuer && iss != AdminTokenIssuer {
			v, builtin = a.external, false
		}
	}
	if !ok && v == nil {
		// No key of either purpose verifies: none of bulkhead's own
		// tokens can pass (not permanent: a key may be published).
		return tenant.Principal{}, errNoBuiltinKey
	}
	if !ok {
		var err error
		if p, err = v.Verify(ctx, token); err != nil {
			if builtin && identity.Permanent(err) {
				a.rejected.put(token, a.db.now())
			}
			return tenant.Principal{}, err
		}
		if builtin && !p.Platform {
			// Isolation: only the signature and claims checks are cached,
			// keyed by the exact token text, until the token expires; the
			// tenant and user checks below run every time.
			a.remember(cur.gen, token, p)
		}
	}
	if p.Platform {
		a.accepted.put(token, a.db.now())
		return p, nil
	}
	t, err := a.db.ResolveTenant(ctx, p)
	if err != nil {
		return tenant.Principal{}, err
	}
	p.Tenant, p.TenantID = t.Slug, t.ID
	if builtin {
		ok, err := a.userActive(ctx, p.Subject, t.ID)
		if err != nil {
			return tenant.Principal{}, err
		}
		if !ok {
			return tenant.Principal{}, identity.ErrInvalidToken
		}
	}
	if !builtin {
		// Built-in tenant tokens are in the verified cache already.
		a.accepted.put(token, a.db.now())
	}
	return p, nil
}

// Recognized reports whether token passed Verify lately or was issued
// here: a tenant user's token in the verified cache, or a token this Auth
// issued, or a platform or external token Verify accepted, within the
// last hour. It never stands in for Verify. A server
// uses it to decide whether a token deserves a signature check at all
// when its sender is flooding (see httpapi's shares of denials): a token
// it has seen pass does; one it has not may wait.
func (a *Auth) Recognized(token string) bool {
	now := a.db.now()
	if _, ok := a.verified.Get(token, now); ok {
		return true
	}
	return a.accepted.has(token, now)
}

// unverifiedIssuer reads iss from a token's payload without verifying it,
// only to choose which verifier to ask.
func unverifiedIssuer(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > identity.MaxTokenLen {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || strictjson.Check(raw) != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c.Iss
}

// IssueUserToken issues a tenant user's access token. It fails with
// no_signing_key when no tenant-token key may sign (all retired or only
// published); tokens already issued still verify while their key does.
func (a *Auth) IssueUserToken(ctx context.Context, u *postgres.User, t *tenant.Tenant) (string, time.Time, error) {
	cur, err := a.current(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	keys := cur.user.signing(a.db.now())
	if keys == nil {
		return "", time.Time{}, noSigningKey(postgres.KeyJWT)
	}
	iss := identity.Issuer{Issuer: TokenIssuer, Audience: TokenAudience, Keys: keys, TTL: a.cfg.TokenTTL, Now: a.db.now}
	tok, exp, err := iss.Issue(identity.Claims{Subject: u.ID, Email: u.Email, Tenant: t.Slug, TenantID: t.ID, Role: u.Role})
	if err == nil {
		// Recognized: a token this server issued is checked even while
		// its sender's address floods (it is still verified in full).
		a.accepted.put(tok, a.db.now())
	}
	return tok, exp, err
}

// IssueAdminToken issues a platform-admin token for subject, living ttl
// (zero: the default; at most MaxAdminTokenTTL). It fails with
// no_signing_key when no admin-token key may sign.
func (a *Auth) IssueAdminToken(ctx context.Context, subject string, ttl time.Duration) (string, time.Time, error) {
	if ttl < 0 || ttl > MaxAdminTokenTTL {
		return "", time.Time{}, fault.Errorf(fault.Invalid, "invalid_ttl", "An admin token lives at most %s.", MaxAdminTokenTTL)
	}
	cur, err := a.current(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	keys := cur.admin.signing(a.db.now())
	if keys == nil {
		return "", time.Time{}, noSigningKey(postgres.KeyAdminJWT)
	}
	iss := identity.Issuer{Issuer: AdminTokenIssuer, Audience: AdminTokenAudience, Keys: keys,
		TTL: a.cfg.AdminTokenTTL, Platform: true, Now: a.db.now}
	if ttl > 0 {
		iss.TTL = ttl
	}
	tok, exp, err := iss.Issue(identity.Claims{Subject: subject, Platform: true})
	if err == nil {
		a.accepted.put(tok, a.db.now())
	}
	return tok, exp, err
}

// RevokeAdminToken revokes a platform-admin token before it expires. The
// token must verify; its id stays on the revocation list until it would
// have expired anyway.
func (a *Auth) RevokeAdminToken(ctx context.Context, token string) error {
	p, err := a.Verify(ctx, token)
	if err != nil {
		return err
	}
	if !p.Platform {
		return fault.E(fault.Invalid, "not_admin_token", "Only platform-admin tokens are revoked this way; tenant tokens stop with their user or tenant.")
	}
	var c struct {
		JTI string `json:"jti"`
		Exp int64  `json:"exp"`
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err := json.Unmarshal(raw, &c); err != nil || c.JTI == "" {
		return fault.E(fault.Invalid, "token_without_id", "The token has no id to revoke.")
	}
	return a.db.pg.RevokeToken(ctx, c.JTI, time.Unix(c.Exp, 0))
}

// JWKS returns the public keys of bulkhead's tenant-token issuer.
func (a *Auth) JWKS(ctx context.Context) ([]byte, error) {
	cur, err := a.current(ctx)
	if err != nil {
		return nil, err
	}
	keys := cur.user.signing(a.db.now())
	if keys == nil {
		keys = cur.user.keys // verify-only: still published while they verify
	}
	return (&identity.Issuer{Keys: keys, Now: a.db.now}).JWKS()
}

// TokenVerifier turns a bearer token into a principal. *Auth and
// *identity.Verifier are TokenVerifiers.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (tenant.Principal, error)
}

// Middleware verifies the request's bearer token with v and puts the
// principal in the request context, for [DB.Tx] and handlers. A request
// without a valid token gets onError (nil: a plain 401).
func Middleware(v TokenVerifier, onError func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	if onError == nil {
		onError = func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bulkhead"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := identity.ExtractBearer(r.Header)
			if err != nil {
				onError(w, r, err)
				return
			}
			p, err := v.Verify(r.Context(), tok)
			if err != nil {
				onError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(tenant.NewContext(r.Context(), p)))
		})
	}
}

// userCache remembers for a short while that a user exists in an active
// tenant, so a busy user's every request does not cost a catalog query; it
// is reloaded ahead of expiry while the user is busy. Deleting a user or
// offboarding its tenant reaches every replica within userCacheAge; the
// database refuses the tenant's contexts at once.
type userCache = fresh.Cache[userKey, struct{}]

type userKey struct {
	tenant tenant.ID
	user   string
}

const userCacheAge = 2 * time.Second

// errUserInactive is a load's answer for a user that is absent or not
// active: not an error for the caller, and not cached.
var errUserInactive = errors.New("user not active")

func (a *Auth) userActive(ctx context.Context, user string, tid tenant.ID) (bool, error) {
	_, err := a.users.Get(ctx, userKey{tid, user})
	if errors.Is(err, errUserInactive) {
		return false, nil
	}
	return err == nil, err
}

func (a *Auth) loadUser(ctx context.Context, k userKey) (struct{}, error) {
	ok, err := a.db.pg.UserActive(ctx, k.user, k.tenant)
	if err == nil && !ok {
		err = errUserInactive
	}
	return struct{}{}, err
}

// ForgetTenant drops cached facts about a tenant after the control plane
// changed it (offboarding, suspension).
func (a *Auth) ForgetTenant(id tenant.ID) {
	a.db.ForgetTenant(id)
	a.users.ForgetFunc(func(k userKey, _ struct{}) bool { return k.tenant == id })
}

// tokenCacheMax bounds the verified cache: bulkhead's own tenant tokens
// whose signature and claims verified, held until they expire or the keys
// change, so that a client's repeated requests (and a flood that a rate
// limit will refuse) do not each cost a signature check. Platform tokens
// are checked against the revocation list every time.
const tokenCacheMax = 50000

// externalCacheMax bounds the external verifier's cache of verified
// tokens (identity.Verifier.CacheSize), which checks each hit against the
// provider's current keys. External tokens can be large (up to 8 KiB), so
// it holds fewer.
const externalCacheMax = 10000

// digestCache remembers tokens by a hash of their text, each for age, at
// most max at once. As the reject cache it holds, for a minute, built-in
// tokens that failed for good (malformed, a signature that does not
// verify, expired: see identity.Permanent), so that a client that keeps
// sending one does not cost a signature check each time; a token that
// could pass later (an unknown key, not valid yet) is never in it. As the
// accepted cache it holds the tokens Verify accepted.
type digestCache struct {
	max int
	age time.Duration

	mu sync.Mutex
	m  map[[sha256.Size]byte]time.Time // until when
}

const (
	rejectCacheMax   = 10000
	rejectCacheAge   = time.Minute
	acceptedCacheMax = 50000
	acceptedCacheAge = time.Hour
)

func (c *digestCache) has(token string, now time.Time) bool {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.m[k]
	return ok && now.Before(until)
}

// put remembers token. A full cache first drops what has aged out; if
// that frees less than a quarter of it, it starts empty.
func (c *digestCache) put(token string, now time.Time) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[sha256.Size]byte]time.Time{}
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for t, until := range c.m {
			if !now.Before(until) {
				delete(c.m, t)
			}
		}
		if len(c.m) > c.max-c.max/4 {
			c.m = map[[sha256.Size]byte]time.Time{}
		}
	}
	c.m[k] = now.Add(c.age)
}
