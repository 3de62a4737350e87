package identity

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bulkhead-dev/bulkhead/internal/tokencache"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// MaxTokenLen is the longest bearer token accepted, in bytes.
const MaxTokenLen = 8 << 10

const maxKIDLen = 256

// Clock skew allowed when checking exp, nbf and iat.
const (
	DefaultLeeway = 30 * time.Second // when Verifier.Leeway is zero
	MaxLeeway     = 5 * time.Minute
)

// Trust is one issuer whose tokens a [Verifier] accepts.
//
// A trust has either Keys (bulkhead's own issuer; see [Issuer.Trust]) or a
// JWKSURL (an external identity provider), never both.
type Trust struct {
	Issuer   string // the exact iss; unique among a Verifier's trusts
	Audience string // aud must contain it

	Keys    []PublicKey // built-in: Ed25519 keys by kid
	JWKSURL string      // external: an https URL serving the provider's JWKS

	// MaxLifetime, for a built-in trust only, is the longest time from iat
	// to exp that a token may have: the lifetime its issuer actually gives
	// tokens, so that a token signed for longer (by a misconfigured issuer
	// or a leaked key) is refused. Zero, or anything longer than [MaxTTL]
	// ([MaxPlatformTTL] for a platform trust), means that limit. A token's
	// iat and exp are whole seconds: allow for that.
	MaxLifetime time.Duration

	// Algorithms pins the accepted alg values. Only asymmetric algorithms
	// (EdDSA, RS*, PS*, ES*) are allowed, and only EdDSA with Keys. The
	// default is EdDSA with Keys and RS256 and ES256 with a JWKSURL.
	Algorithms []string

	// TenantClaim is the [ClaimPath] of the claim naming the tenant, in text
	// form: "tenant_id", "app_metadata.tenant_id", "custom:tenant_id". It
	// defaults to "tenant_id" and must be empty for a platform trust.
	TenantClaim string

	// RoleClaim is the ClaimPath of the tenant role; default "role". A value
	// other than "admin" or "member", or none, gives [tenant.Member]. It is
	// unused for a platform trust.
	RoleClaim string

	// Platform marks tokens of this trust as platform-administrator tokens.
	// Such a principal has Platform set and no tenant or role. A platform
	// trust shares no issuer, audience, key or JWKS URL with a tenant trust.
	Platform bool

	// AllowPrivateJWKS lets JWKSURL resolve to loopback and private
	// addresses. It is for tests against httptest servers only.
	AllowPrivateJWKS bool

	// HTTPClient fetches the JWKS; nil means a default client. Its
	// Transport must be nil or an *http.Transport, which is cloned and
	// hardened (see the package documentation); its Jar and CheckRedirect
	// are not used.
	HTTPClient *http.Client
}

// TokenInfo describes a verified token to [Verifier.Revoked].
type TokenInfo struct {
	Issuer   string
	Subject  string
	ID       string // the jti; may be empty for external tokens
	IssuedAt time.Time
	Expires  time.Time
	Platform bool
}

// Verifier turns bearer tokens into principals. Set its fields, then call
// [Verifier.Verify] from any number of goroutines; the fields must not change
// after the first call. Call [Verifier.Close] when done with it if any trust
// has a JWKSURL.
//
// A JWKS trust fetches its key set on its first Verify, which waits for that
// fetch (at most ten seconds, whatever the caller's context) while other
// Verifies of the same trust wait with it. A failed first fetch is logged
// and retried as for an unknown kid.
type Verifier struct {
	Trusted []Trust
	Now     func() time.Time // nil means time.Now
	Leeway  time.Duration    // zero means DefaultLeeway; negative means none; at most MaxLeeway

	// Revoked, if set, is asked about every token that passed all other
	// checks; true rejects it. An error fails verification closed with
	// [ErrRevocationCheck]. It is how platform-administrator tokens are
	// revoked before they expire.
	Revoked func(ctx context.Context, t TokenInfo) (bool, error)

	// Logger receives JWKS refresh failures at Warn; nil discards them.
	Logger *slog.Logger

	// CacheSize, if positive, is how many verified tokens Verify remembers,
	// by their exact text, until they expire, so that a client's repeated
	// requests do not each cost a signature check (an RS256 or ES256 check
	// is 50 to 100 µs). A remembered token still has its key checked on
	// every Verify: the key that verified it must still be the one its
	// trust holds under that kid for that alg (a JWKS refresh that drops
	// or replaces the key, or a built-in key's retirement, ends it), and
	// Revoked is still asked. Zero remembers nothing.
	CacheSize int

	once  sync.Once
	state *verifierState
	err   error
}

type verifierState struct {
	trusts map[string]*trust
	cache  tokencache.Cache[verified] // Verifier.CacheSize
	leeway time.Duration
	logger *slog.Logger
	ctx    context.Context // the lifetime of background JWKS refreshes
	cancel context.CancelFunc
}

// trust is a validated copy of a Trust.
type trust struct {
	Trust
	tenantPath ClaimPath
	rolePath   ClaimPath
	keys       map[string]PublicKey

	mu     sync.Mutex
	remote *remoteKeys // created on first use
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) init() {
	v.once.Do(func() {
		v.state, v.err = v.build()
	})
}

// Validate checks the verifier's configuration without any network traffic
// and returns [ErrVerifierConfig] if it is wrong. Verify checks it too, on
// first use; Validate lets a server refuse to start instead.
func (v *Verifier) Validate() error {
	v.init()
	if v.err != nil {
		return fail(ErrVerifierConfig, "identity.Verifier.Validate", v.err)
	}
	return nil
}

// Close stops the background refresh of remote JWKS. Tokens of JWKS trusts
// still verify against the keys already fetched, and unknown kids still
// trigger rate-limited refetches.
func (v *Verifier) Close() error {
	v.init()
	if v.state != nil {
		v.state.cancel()
	}
	return nil
}

func (v *Verifier) build() (*verifierState, error) {
	if len(v.Trusted) == 0 {
		return nil, errors.New("no trusted issuers")
	}
	leeway := v.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	case leeway > MaxLeeway:
		return nil, fmt.Errorf("leeway %v over %v", leeway, MaxLeeway)
	}
	list := make([]*trust, 0, len(v.Trusted))
	byIssuer := make(map[string]*trust, len(v.Trusted))
	for i, t := range v.Trusted {
		tr, err := newTrust(t)
		if err != nil {
			return nil, fmt.Errorf("trust %d (%q): %w", i, t.Issuer, err)
		}
		if byIssuer[t.Issuer] != nil {
			return nil, fmt.Errorf("issuer %q is trusted twice", t.Issuer)
		}
		byIssuer[t.Issuer] = tr
		list = append(list, tr)
	}
	// Isolation: a platform trust and a tenant trust must not be able to
	// accept each other's tokens, so they share nothing that selects or
	// verifies a token.
	for _, a := range list {
		if !a.Platform {
			continue
		}
		for _, b := range list {
			if b.Platform {
				continue
			}
			if a.Audience == b.Audience {
				return nil, fmt.Errorf("platform issuer %q and tenant issuer %q share audience %q", a.Issuer, b.Issuer, a.Audience)
			}
			if a.JWKSURL != "" && a.JWKSURL == b.JWKSURL {
				return nil, fmt.Errorf("platform issuer %q and tenant issuer %q share a JWKS URL", a.Issuer, b.Issuer)
			}
			for _, ka := range a.Keys {
				for _, kb := range b.Keys {
					if bytes.Equal(ka.Key, kb.Key) {
						return nil, fmt.Errorf("platform issuer %q and tenant issuer %q share key %q", a.Issuer, b.Issuer, ka.ID)
					}
				}
			}
		}
	}
	logger := v.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &verifierState{trusts: byIssuer, leeway: leeway, logger: logger, ctx: ctx, cancel: cancel}
	st.cache.Max = v.CacheSize
	return st, nil
}

// verified is what a token verified to, and with which key.
type verified struct {
	p        tenant.Principal
	info     TokenInfo
	tr       *trust
	kid, alg string
	key      any
}

// sameKey reports whether a and b are the same public key.
func sameKey(a, b any) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// Remembers reports whether Verify remembers token as verified (see
// CacheSize), without checking it: a caller with several verifiers can
// send a token to the one that knows it without reading its issuer. Only
// Verify says whether the token is still good.
func (v *Verifier) Remembers(token string) bool {
	v.init()
	if v.state == nil {
		return false
	}
	_, ok := v.state.cache.Get(token, v.now())
	return ok
}

// remembered returns what token verified to, if the cache holds it and
// its trust still gives the same key for its kid and alg.
func (st *verifierState) remembered(ctx context.Context, token string, now time.Time) (verified, bool) {
	if st.cache.Max <= 0 {
		return verified{}, false
	}
	c, ok := st.cache.Get(token, now)
	if !ok {
		return verified{}, false
	}
	if k, err := c.tr.key(ctx, st, c.kid, c.alg, now); err != nil || !sameKey(k, c.key) {
		st.cache.Delete(token)
		return verified{}, false
	}
	return c, true
}

func newTrust(t Trust) (*trust, error) {
	if t.Issuer == "" {
		return nil, errors.New("no issuer")
	}
	if t.Audience == "" {
		return nil, errors.New("no audience")
	}
	tr := &trust{Trust: t}
	limit := MaxTTL
	if t.Platform {
		limit = MaxPlatformTTL
	}
	switch {
	case t.MaxLifetime < 0:
		return nil, fmt.Errorf("negative max lifetime %v", t.MaxLifetime)
	case t.MaxLifetime == 0 || t.MaxLifetime > limit:
		tr.MaxLifetime = limit
	}
	switch {
	case len(t.Keys) > 0 && t.JWKSURL != "":
		return nil, errors.New("both keys and a JWKS URL")
	case len(t.Keys) > 0:
		tr.keys = make(map[string]PublicKey, len(t.Keys))
		tr.Keys = make([]PublicKey, len(t.Keys))
		for i, k := range t.Keys {
			if k.ID == "" || len(k.ID) > maxKIDLen {
				return nil, fmt.Errorf("key id of %d bytes", len(k.ID))
			}
			if len(k.Key) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("key %q is not an Ed25519 public key", k.ID)
			}
			if _, dup := tr.keys[k.ID]; dup {
				return nil, fmt.Errorf("duplicate key id %q", k.ID)
			}
			k.Key = bytes.Clone(k.Key)
			tr.keys[k.ID] = k
			tr.Keys[i] = k
		}
		if len(t.Algorithms) == 0 {
			tr.Algorithms = []string{"EdDSA"}
		}
	case t.JWKSURL != "" && t.MaxLifetime != 0:
		return nil, errors.New("a max lifetime with a JWKS URL (it is for built-in trusts only)")
	case t.JWKSURL != "":
		if err := checkJWKSURL(t.JWKSURL, t.AllowPrivateJWKS); err != nil {
			return nil, err
		}
		if _, err := jwksClient(t.HTTPClient, t.AllowPrivateJWKS); err != nil {
			return nil, err
		}
		if len(t.Algorithms) == 0 {
			tr.Algorithms = []string{"RS256", "ES256"}
		}
	default:
		return nil, errors.New("neither keys nor a JWKS URL")
	}
	tr.Algorithms = slices.Clone(tr.Algorithms)
	for _, alg := range tr.Algorithms {
		if !asymmetricAlgs[alg] {
			return nil, fmt.Errorf("algorithm %q may not be pinned", alg)
		}
		if tr.keys != nil && alg != "EdDSA" {
			return nil, fmt.Errorf("algorithm %q does not fit Ed25519 keys", alg)
		}
	}
	if t.Platform {
		if t.TenantClaim != "" {
			return nil, errors.New("a platform trust reads no tenant claim")
		}
		return tr, nil
	}
	var err error
	if tr.tenantPath, err = ParseClaimPath(cmp.Or(t.TenantClaim, ClaimTenantID)); err != nil {
		return nil, fmt.Errorf("tenant claim: %w", err)
	}
	if tr.rolePath, err = ParseClaimPath(cmp.Or(t.RoleClaim, ClaimRole)); err != nil {
		return nil, fmt.Errorf("role claim: %w", err)
	}
	return tr, nil
}

// key returns the key that verifies a token with kid and alg.
func (t *trust) key(ctx context.Context, st *verifierState, kid, alg string, now time.Time) (any, error) {
	if t.keys == nil {
		store, err := t.store(st)
		if err != nil {
			return nil, err
		}
		return remoteKey(ctx, store, kid, alg)
	}
	k, ok := t.keys[kid]
	if !ok {
		return nil, fmt.Errorf("kid %q is not a key of issuer %q", kid, t.Issuer)
	}
	if !k.NotAfter.IsZero() && !now.Before(k.NotAfter) {
		return nil, fmt.Errorf("key %q retired at %v", kid, k.NotAfter)
	}
	if err := keyFitsAlg(k.Key, alg); err != nil {
		return nil, err
	}
	return k.Key, nil
}

func (t *trust) store(st *verifierState) (*remoteKeys, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.remote == nil {
		s, err := newRemoteKeys(st.ctx, t, st.logger)
		if err != nil {
			return nil, err
		}
		t.remote = s
	}
	return t.remote, nil
}

// compact is a token split and decoded, before any verification.
type compact struct {
	header map[string]any
	claims map[string]any
	alg    string
	kid    string
}

// forbiddenHeaders name keys that would come from the token rather than from
// configuration (jku, x5u, jwk, x5c), or that change how the token must be
// processed (crit, b64).
var forbiddenHeaders = []string{"jku", "x5u", "jwk", "x5c", "crit", "b64"}

var segment = base64.RawURLEncoding.Strict()

// parseCompact splits a JWS compact serialization and decodes its header and
// payload strictly. It verifies nothing.
func parseCompact(token string) (*compact, error) {
	if token == "" || len(token) > MaxTokenLen {
		return nil, fmt.Errorf("token of %d bytes", len(token))
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; !isBase64URL(c) && c != '.' {
			return nil, fmt.Errorf("byte %#x at %d is not base64url", c, i)
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("token has %d parts", len(parts))
	}
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("token part %d is empty", i)
		}
	}
	hb, err := segment.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	h, err := decodeObject(hb)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	for key := range h {
		for _, f := range forbiddenHeaders {
			if strings.EqualFold(key, f) {
				return nil, fmt.Errorf("header parameter %q is not accepted", key)
			}
		}
	}
	pb, err := segment.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	claims, err := decodeObject(pb)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	c := &compact{header: h, claims: claims}
	c.alg, _ = h["alg"].(string)
	if c.alg == "" {
		return nil, errors.New("no alg")
	}
	c.kid, _ = h["kid"].(string)
	if c.kid == "" || len(c.kid) > maxKIDLen {
		return nil, errors.New("no usable kid")
	}
	return c, nil
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// Verify checks token against the trusted issuers (see the package
// documentation for every check) and returns the principal it names.
//
// Every verification failure is [ErrInvalidToken], with the reason in Err
// for the logs only. A misconfigured verifier gives [ErrVerifierConfig], and
// a failing Revoked hook [ErrRevocationCheck].
//
// The principal names its tenant by UUID (TenantID) or slug (Tenant),
// whichever the claim held; the caller resolves it through the tenant
// catalog, which also says whether the tenant is active.
func (v *Verifier) Verify(ctx context.Context, token string) (tenant.Principal, error) {
	const op = "identity.Verifier.Verify"
	v.init()
	if v.err != nil {
		return tenant.Principal{}, fail(ErrVerifierConfig, op, v.err)
	}
	p, info, err := v.verify(ctx, token)
	if err != nil {
		return tenant.Principal{}, invalid(op, err)
	}
	if v.Revoked != nil {
		revoked, err := v.Revoked(ctx, info)
		switch {
		case err != nil && ctx.Err() != nil:
			return tenant.Principal{}, canceled(ctx, op)
		case err != nil:
			return tenant.Principal{}, fail(ErrRevocationCheck, op, err)
		case revoked:
			return tenant.Principal{}, invalid(op, errors.New("token revoked"))
		}
	}
	return p, nil
}

func (v *Verifier) verify(ctx context.Context, token string) (tenant.Principal, TokenInfo, error) {
	st := v.state
	now := v.now()
	if c, ok := st.remembered(ctx, token, now); ok {
		return c.p, c.info, nil
	}
	c, err := parseCompact(token)
	if err != nil {
		return tenant.Principal{}, TokenInfo{}, &malformedError{err}
	}
	// Isolation: the unverified iss only chooses which trust's keys may
	// verify the token; nothing else is read before the signature checks.
	iss, _ := c.claims["iss"].(string)
	tr := st.trusts[iss]
	if tr == nil {
		return tenant.Principal{}, TokenInfo{}, fmt.Errorf("issuer %q is not trusted", iss)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods(tr.Algorithms),
		jwt.WithIssuer(tr.Issuer),
		jwt.WithAudience(tr.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(st.leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithStrictDecoding(),
	)
	var key any
	parsed, err := parser.Parse(token, func(t *jwt.Token) (any, error) {
		k, err := tr.key(ctx, st, c.kid, t.Method.Alg(), now)
		key = k
		return k, err
	})
	if err != nil {
		return tenant.Principal{}, TokenInfo{}, err
	}
	if !parsed.Valid {
		return tenant.Principal{}, TokenInfo{}, errors.New("token not valid")
	}

	// From here on, claims come from the strictly decoded payload, which
	// is the very payload that was signed.
	claims := c.claims
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return tenant.Principal{}, TokenInfo{}, errors.New("no sub")
	}
	var email string
	if e, ok := claims[ClaimEmail]; ok {
		if email, ok = e.(string); !ok {
			return tenant.Principal{}, TokenInfo{}, errors.New("email is not a string")
		}
	}
	exp, err := parsed.Claims.GetExpirationTime()
	if err != nil || exp == nil {
		return tenant.Principal{}, TokenInfo{}, errors.New("no exp")
	}
	iat, err := parsed.Claims.GetIssuedAt()
	if err != nil {
		return tenant.Principal{}, TokenInfo{}, err
	}
	info := TokenInfo{Issuer: iss, Subject: sub, Expires: exp.Time, Platform: tr.Platform}
	info.ID, _ = claims["jti"].(string)
	if iat != nil {
		info.IssuedAt = iat.Time
	}

	if tr.keys != nil {
		if err := checkBuiltin(tr, claims, info); err != nil {
			return tenant.Principal{}, TokenInfo{}, err
		}
	}

	p := tenant.Principal{
		Subject: sub,
		Issuer:  iss,
		Email:   email,
		Token:   token,
		Expires: exp.Time,
	}
	if tr.Platform {
		p.Platform = true
		return st.remember(token, verified{p, info, tr, c.kid, parsed.Method.Alg(), key}, now)
	}
	tv, ok := tr.tenantPath.Lookup(claims)
	if !ok {
		return tenant.Principal{}, TokenInfo{}, fmt.Errorf("no tenant claim at %s", tr.tenantPath)
	}
	if p.Tenant, p.TenantID, err = parseTenantClaim(tv); err != nil {
		return tenant.Principal{}, TokenInfo{}, err
	}
	p.Role = tenant.Member
	if rv, ok := tr.rolePath.Lookup(claims); ok {
		if r, ok := rv.(string); ok && tenant.Role(r).Valid() {
			p.Role = tenant.Role(r)
		}
	}
	return st.remember(token, verified{p, info, tr, c.kid, parsed.Method.Alg(), key}, now)
}

// remember caches what token verified to, until it expires, and returns it.
func (st *verifierState) remember(token string, c verified, now time.Time) (tenant.Principal, TokenInfo, error) {
	st.cache.Put(token, c, c.info.Expires, now)
	return c.p, c.info, nil
}

// checkBuiltin applies the rules that hold for bulkhead's own tokens only.
func checkBuiltin(tr *trust, claims map[string]any, info TokenInfo) error {
	// Isolation: defence in depth behind the separate issuer, audience and
	// key. Platform tokens say so and tenant tokens do not, so even a
	// misconfiguration that let one verify under the other's trust would
	// not let it through.
	platform := false
	if pv, ok := claims[ClaimPlatform]; ok {
		b, isBool := pv.(bool)
		if !isBool {
			return errors.New("platform claim is not a boolean")
		}
		platform = b
	}
	if platform != tr.Platform {
		return fmt.Errorf("platform claim %t under a trust with platform %t", platform, tr.Platform)
	}
	if info.IssuedAt.IsZero() || info.Expires.Sub(info.IssuedAt) > tr.MaxLifetime {
		return fmt.Errorf("lifetime from iat %v to exp %v is longer than any this issuer signs", info.IssuedAt, info.Expires)
	}
	return nil
}

// parseTenantClaim reads a tenant claim: a UUID (in any letter case, as
// identity providers differ) becomes an ID in canonical lowercase, and a
// valid slug a Slug. Anything else is rejected, including a slug in the
// wrong case, which is never folded: it could name another tenant.
func parseTenantClaim(v any) (tenant.Slug, tenant.ID, error) {
	s, ok := v.(string)
	if !ok {
		return "", "", errors.New("tenant claim is not a string")
	}
	if len(s) == 36 {
		lower := make([]byte, len(s))
		ascii := true
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 0x80 {
				ascii = false
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
		if ascii {
			if id, err := tenant.ParseID(string(lower)); err == nil {
				return "", id, nil
			}
		}
	}
	slug, err := tenant.ParseSlug(s)
	if err != nil {
		return "", "", fmt.Errorf("tenant claim %q is neither a UUID nor a slug", s)
	}
	return slug, "", nil
}
