package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/bulkhead-dev/bulkhead/tenant"
)

// The claims bulkhead's own tokens carry besides the registered ones (iss,
// sub, aud, exp, nbf, iat, jti).
const (
	ClaimTenantID = "tenant_id" // the tenant's UUID; what a built-in trust reads
	ClaimTenant   = "tenant"    // the tenant's slug, for people reading logs
	ClaimRole     = "role"      // "admin" or "member"
	ClaimEmail    = "email"
	ClaimPlatform = "platform" // true in platform-administrator tokens only
)

// Token lifetimes.
const (
	DefaultTTL         = 15 * time.Minute // tenant tokens, when Issuer.TTL is zero
	MaxTTL             = 24 * time.Hour   // the longest tenant token Issue signs
	DefaultPlatformTTL = 5 * time.Minute  // platform tokens, when Issuer.TTL is zero
	MaxPlatformTTL     = 15 * time.Minute // the longest platform token Issue signs
)

// SigningKey is an Ed25519 key that signs bulkhead's tokens.
type SigningKey struct {
	ID       string // the kid; unique among an issuer's keys
	Private  ed25519.PrivateKey
	NotAfter time.Time // when the key retires: it neither signs nor verifies after; zero means never
}

// NewSigningKey generates an Ed25519 key with a random 128-bit kid, reading
// randomness from r (crypto/rand.Reader when r is nil).
func NewSigningKey(r io.Reader) (SigningKey, error) {
	if r == nil {
		r = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return SigningKey{}, internal("identity.NewSigningKey", err)
	}
	kid := make([]byte, 16)
	if _, err := io.ReadFull(r, kid); err != nil {
		return SigningKey{}, internal("identity.NewSigningKey", err)
	}
	return SigningKey{ID: base64.RawURLEncoding.EncodeToString(kid), Private: priv}, nil
}

// Public returns k's public half.
func (k SigningKey) Public() PublicKey {
	var pub ed25519.PublicKey
	if len(k.Private) == ed25519.PrivateKeySize {
		pub, _ = k.Private.Public().(ed25519.PublicKey)
	}
	return PublicKey{ID: k.ID, Key: pub, NotAfter: k.NotAfter}
}

// String describes k without its private half.
func (k SigningKey) String() string { return "identity.SigningKey{" + k.ID + "}" }

// GoString describes k without its private half.
func (k SigningKey) GoString() string { return k.String() }

// LogValue keeps the private key out of logs.
func (k SigningKey) LogValue() slog.Value { return slog.StringValue(k.ID) }

// PublicKey is the public half of a [SigningKey], as a built-in [Trust]
// holds it.
type PublicKey struct {
	ID       string
	Key      ed25519.PublicKey
	NotAfter time.Time // zero means never
}

// PublicKeys returns the public halves of keys.
func PublicKeys(keys []SigningKey) []PublicKey {
	pub := make([]PublicKey, len(keys))
	for i, k := range keys {
		pub[i] = k.Public()
	}
	return pub
}

// Claims are what an [Issuer] puts in a token about its subject.
type Claims struct {
	Subject  string      // the user's id; required
	Email    string      // optional
	Tenant   tenant.Slug // optional; informational only, never read back
	TenantID tenant.ID   // required in tenant tokens; empty in platform tokens
	Role     tenant.Role // required in tenant tokens; empty in platform tokens
	Platform bool        // must match the Issuer's Platform
}

// Issuer signs bulkhead's own access tokens with Ed25519 (alg EdDSA).
//
// Tenant tokens and platform-administrator tokens come from two separate
// Issuer values, each with its own Issuer string, Audience and keys; the
// platform one sets Platform and has a short TTL. See [Issuer.Trust] for the
// matching verification side.
type Issuer struct {
	Issuer   string       // the iss claim; required
	Audience string       // the aud claim; required
	Keys     []SigningKey // Keys[0] signs; the rest are published for verification only
	TTL      time.Duration
	Platform bool             // issues platform-administrator tokens
	Now      func() time.Time // nil means time.Now
	Rand     io.Reader        // for jti; nil means crypto/rand.Reader
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

func (i *Issuer) ttl() (time.Duration, error) {
	def, limit := DefaultTTL, MaxTTL
	if i.Platform {
		def, limit = DefaultPlatformTTL, MaxPlatformTTL
	}
	switch {
	case i.TTL == 0:
		return def, nil
	case i.TTL < time.Second || i.TTL > limit:
		return 0, fmt.Errorf("TTL %v outside 1s..%v", i.TTL, limit)
	}
	return i.TTL, nil
}

// Issue signs a token for c and returns it with its expiry. The token's
// header carries alg EdDSA, typ JWT and the signing key's kid; its payload
// carries iss, aud, sub, iat, nbf, exp, a random UUID jti, and the claims
// named by the Claim constants. The expiry is capped at the signing key's
// NotAfter.
//
// Issue returns [ErrInvalidClaims] for claims that do not fit the issuer (a
// tenant token without a valid tenant UUID and role, a platform token with a
// tenant or role, or c.Platform differing from i.Platform) and
// [ErrIssuerConfig] when the issuer is misconfigured or its signing key has
// retired.
func (i *Issuer) Issue(c Claims) (token string, expires time.Time, err error) {
	const op = "identity.Issuer.Issue"
	if err := i.validate(); err != nil {
		return "", time.Time{}, fail(ErrIssuerConfig, op, err)
	}
	if err := i.checkClaims(c); err != nil {
		return "", time.Time{}, fail(ErrInvalidClaims, op, err)
	}
	ttl, _ := i.ttl() // checked by validate
	key := i.Keys[0]
	now := i.now()
	if !key.NotAfter.IsZero() && !now.Before(key.NotAfter) {
		return "", time.Time{}, fail(ErrIssuerConfig, op, fmt.Errorf("signing key %q retired at %v", key.ID, key.NotAfter))
	}
	exp := now.Add(ttl)
	if !key.NotAfter.IsZero() && exp.After(key.NotAfter) {
		exp = key.NotAfter
	}
	iat, expUnix := now.Unix(), exp.Unix()
	if expUnix <= iat {
		return "", time.Time{}, fail(ErrIssuerConfig, op, fmt.Errorf("signing key %q retires within a second", key.ID))
	}
	r := i.Rand
	if r == nil {
		r = rand.Reader
	}
	jti, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return "", time.Time{}, internal(op, fmt.Errorf("making jti: %w", err))
	}

	claims := jwt.MapClaims{
		"iss": i.Issuer,
		"aud": i.Audience,
		"sub": c.Subject,
		"iat": iat,
		"nbf": iat,
		"exp": expUnix,
		"jti": jti.String(),
	}
	if c.Email != "" {
		claims[ClaimEmail] = c.Email
	}
	if i.Platform {
		claims[ClaimPlatform] = true
	} else {
		claims[ClaimTenantID] = string(c.TenantID)
		claims[ClaimRole] = string(c.Role)
		if c.Tenant != "" {
			claims[ClaimTenant] = string(c.Tenant)
		}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = key.ID
	token, err = t.SignedString(key.Private)
	if err != nil {
		return "", time.Time{}, fail(ErrIssuerConfig, op, err)
	}
	return token, time.Unix(expUnix, 0), nil
}

func (i *Issuer) validate() error {
	switch {
	case i.Issuer == "":
		return errors.New("no issuer")
	case i.Audience == "":
		return errors.New("no audience")
	case len(i.Keys) == 0:
		return errors.New("no signing key")
	}
	if _, err := i.ttl(); err != nil {
		return err
	}
	seen := make(map[string]bool, len(i.Keys))
	for _, k := range i.Keys {
		if k.ID == "" || len(k.ID) > maxKIDLen {
			return fmt.Errorf("key id of %d bytes", len(k.ID))
		}
		if len(k.Private) != ed25519.PrivateKeySize {
			return fmt.Errorf("key %q is not an Ed25519 private key", k.ID)
		}
		if seen[k.ID] {
			return fmt.Errorf("duplicate key id %q", k.ID)
		}
		seen[k.ID] = true
	}
	return nil
}

func (i *Issuer) checkClaims(c Claims) error {
	if c.Subject == "" || len(c.Subject) > 255 || !utf8.ValidString(c.Subject) {
		return errors.New("subject must be 1 to 255 bytes of UTF-8")
	}
	if len(c.Email) > 320 || !utf8.ValidString(c.Email) {
		return errors.New("email must be at most 320 bytes of UTF-8")
	}
	if c.Platform != i.Platform {
		return fmt.Errorf("claims for platform=%t given to an issuer with platform=%t", c.Platform, i.Platform)
	}
	if i.Platform {
		if c.Tenant != "" || c.TenantID != "" || c.Role != "" {
			return errors.New("a platform token names no tenant and no role")
		}
		return nil
	}
	if _, err := tenant.ParseID(string(c.TenantID)); err != nil {
		return fmt.Errorf("tenant id %q: %w", c.TenantID, err)
	}
	if c.Tenant != "" {
		if _, err := tenant.ParseSlug(string(c.Tenant)); err != nil {
			return fmt.Errorf("tenant slug %q: %w", c.Tenant, err)
		}
	}
	if !c.Role.Valid() {
		return fmt.Errorf("role %q", c.Role)
	}
	return nil
}

// Trust returns the [Trust] that verifies i's tokens: the same issuer and
// audience, the public halves of all of i's keys, EdDSA only, the tenant
// read from [ClaimTenantID], and Platform copied from i.
func (i *Issuer) Trust() Trust {
	t := Trust{
		Issuer:     i.Issuer,
		Audience:   i.Audience,
		Keys:       PublicKeys(i.Keys),
		Algorithms: []string{"EdDSA"},
		Platform:   i.Platform,
	}
	if !i.Platform {
		t.TenantClaim = ClaimTenantID
	}
	return t
}

// JWKS returns the JSON Web Key Set of i's keys that have not retired at
// i.Now, for serving at a well-known URL.
func (i *Issuer) JWKS() ([]byte, error) {
	now := i.now()
	var live []SigningKey
	for _, k := range i.Keys {
		if k.NotAfter.IsZero() || now.Before(k.NotAfter) {
			live = append(live, k)
		}
	}
	b, err := JWKS(live)
	if err != nil {
		return nil, fail(ErrIssuerConfig, "identity.Issuer.JWKS", err)
	}
	return b, nil
}

type jwk struct {
	KTY string `json:"kty"`
	CRV string `json:"crv"`
	X   string `json:"x"`
	KID string `json:"kid"`
	ALG string `json:"alg"`
	USE string `json:"use"`
}

// JWKS returns a JSON Web Key Set (RFC 7517, with OKP keys per RFC 8037)
// holding the public halves of all the keys given, in order:
//
//	{"keys":[{"kty":"OKP","crv":"Ed25519","x":"…","kid":"…","alg":"EdDSA","use":"sig"}]}
//
// It refuses a key without an id, a key that is not Ed25519, and a kid
// given twice.
func JWKS(keys ...[]SigningKey) ([]byte, error) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	seen := make(map[string]bool)
	for _, ks := range keys {
		for _, k := range ks {
			pub := k.Public()
			if k.ID == "" || len(pub.Key) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("identity.JWKS: key %q is not a usable Ed25519 key", k.ID)
			}
			if seen[k.ID] {
				return nil, fmt.Errorf("identity.JWKS: duplicate key id %q", k.ID)
			}
			seen[k.ID] = true
			set.Keys = append(set.Keys, jwk{
				KTY: "OKP", CRV: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub.Key),
				KID: k.ID, ALG: "EdDSA", USE: "sig",
			})
		}
	}
	return json.Marshal(set)
}
