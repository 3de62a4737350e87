package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// idp is an external identity provider's JWKS endpoint on an httptest TLS
// server. It counts fetches and accepted TCP connections.
type idp struct {
	srv     *httptest.Server
	fetches atomic.Int32
	conns   atomic.Int32

	mu   sync.Mutex
	body []byte
	gate chan struct{} // if set, each answer waits until it closes (or the client gives up)
}

func newIdP(tb testing.TB, keys ...jwkset.JWK) *idp {
	tb.Helper()
	p := &idp{}
	p.setKeys(tb, keys...)
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		body, gate := p.body, p.gate
		p.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	p.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			p.conns.Add(1)
		}
	}
	p.srv.StartTLS()
	tb.Cleanup(p.srv.Close)
	return p
}

func (p *idp) setKeys(tb testing.TB, keys ...jwkset.JWK) {
	tb.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Marshal())
	}
	body, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	p.mu.Lock()
	p.body = body
	p.mu.Unlock()
}

func (p *idp) url() string { return p.srv.URL + "/.well-known/jwks.json" }

// trust returns a trust in p for tokens of iss, for tests on loopback.
func (p *idp) trust(iss, tenantClaim string) identity.Trust {
	return identity.Trust{
		Issuer: iss, Audience: "api", JWKSURL: p.url(), TenantClaim: tenantClaim,
		AllowPrivateJWKS: true, HTTPClient: p.srv.Client(),
	}
}

// idpKeys are an external provider's signing keys.
type idpKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

var (
	idpKeysOnce sync.Once
	idpKeysVal  idpKeys
)

func mustIdPKeys(tb testing.TB) idpKeys {
	tb.Helper()
	idpKeysOnce.Do(func() {
		r, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		idpKeysVal = idpKeys{rsa: r, ec: e}
	})
	return idpKeysVal
}

func mustJWK(tb testing.TB, pub any, kid string, alg jwkset.ALG) jwkset.JWK {
	tb.Helper()
	k, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig}})
	if err != nil {
		tb.Fatalf("NewJWKFromKey(%s) = %v", kid, err)
	}
	return k
}

// idpToken signs claims (with a valid iss-independent base) as the provider.
func idpToken(tb testing.TB, m jwt.SigningMethod, kid string, key any, iss string, extra jwt.MapClaims) string {
	tb.Helper()
	c := jwt.MapClaims{
		"iss": iss, "aud": []string{"api", "other"}, "sub": "idp|42", "email": "bo@example.com",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		c[k] = v
	}
	t := jwt.NewWithClaims(m, c)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("SignedString() = %v", err)
	}
	return s
}

func TestVerifyExternalIdP(t *testing.T) {
	t.Parallel()
	keys := mustIdPKeys(t)
	p := newIdP(t,
		mustJWK(t, &keys.rsa.PublicKey, "rsa-1", jwkset.AlgRS256),
		mustJWK(t, &keys.ec.PublicKey, "ec-1", ""), // no alg: pinned by key type
	)
	const (
		issFlat   = "https://flat.idp.test/"
		issNested = "https://nested.idp.test/"
		issCustom = "https://cognito.idp.test/pool"
	)
	nested := p.trust(issNested, "app_metadata.tenant_id")
	nested.RoleClaim = "app_metadata.role"
	v := &identity.Verifier{
		Now: clock,
		Trusted: []identity.Trust{
			p.trust(issFlat, "tenant_id"),
			nested,
			p.trust(issCustom, "custom:tenant_id"),
		},
	}
	t.Cleanup(func() { v.Close() })

	for _, tt := range []struct {
		name  string
		token string
		want  tenant.Principal // Token and Expires are filled in
	}{
		{
			name:  "RS256FlatClaim",
			token: idpToken(t, jwt.SigningMethodRS256, "rsa-1", keys.rsa, issFlat, jwt.MapClaims{"tenant_id": string(tenantA), "role": "admin"}),
			want:  tenant.Principal{Subject: "idp|42", Issuer: issFlat, Email: "bo@example.com", TenantID: tenantA, Role: tenant.Admin},
		},
		{
			name: "ES256NestedClaim",
			token: idpToken(t, jwt.SigningMethodES256, "ec-1", keys.ec, issNested, jwt.MapClaims{
				"app_metadata": map[string]any{"tenant_id": string(tenantB), "role": "admin"}, "role": "authenticated",
			}),
			want: tenant.Principal{Subject: "idp|42", Issuer: issNested, Email: "bo@example.com", TenantID: tenantB, Role: tenant.Admin},
		},
		{
			name:  "RS256ColonClaim",
			token: idpToken(t, jwt.SigningMethodRS256, "rsa-1", keys.rsa, issCustom, jwt.MapClaims{"custom:tenant_id": "acme"}),
			want:  tenant.Principal{Subject: "idp|42", Issuer: issCustom, Email: "bo@example.com", Tenant: "acme", Role: tenant.Member},
		},
		{
			name:  "UnknownRoleIsMember",
			token: idpToken(t, jwt.SigningMethodRS256, "rsa-1", keys.rsa, issFlat, jwt.MapClaims{"tenant_id": string(tenantA), "role": "authenticated"}),
			want:  tenant.Principal{Subject: "idp|42", Issuer: issFlat, Email: "bo@example.com", TenantID: tenantA, Role: tenant.Member},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), tt.token)
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			tt.want.Token, tt.want.Expires = tt.token, now.Add(time.Hour)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
			}
		})
	}

	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey))})
	for _, tt := range []struct {
		name  string
		token string
	}{
		{"RS256WithECKid", idpToken(t, jwt.SigningMethodRS256, "ec-1", keys.rsa, issFlat, jwt.MapClaims{"tenant_id": string(tenantA)})},
		{"ES256WithRSAKid", idpToken(t, jwt.SigningMethodES256, "rsa-1", keys.ec, issFlat, jwt.MapClaims{"tenant_id": string(tenantA)})},
		{"PS256NotPinned", idpToken(t, jwt.SigningMethodPS256, "rsa-1", keys.rsa, issFlat, jwt.MapClaims{"tenant_id": string(tenantA)})},
		{"HS256WithRSAPEM", idpToken(t, jwt.SigningMethodHS256, "rsa-1", rsaPEM, issFlat, jwt.MapClaims{"tenant_id": string(tenantA)})},
		{"WrongAudience", func() string {
			c := jwt.MapClaims{"aud": "someone-else", "tenant_id": string(tenantA)}
			return idpToken(t, jwt.SigningMethodRS256, "rsa-1", keys.rsa, issFlat, c)
		}()},
		{"ClaimAtWrongPath", idpToken(t, jwt.SigningMethodES256, "ec-1", keys.ec, issNested, jwt.MapClaims{"tenant_id": string(tenantA)})},
		{"ClaimParentNotObject", idpToken(t, jwt.SigningMethodES256, "ec-1", keys.ec, issNested, jwt.MapClaims{"app_metadata": "tenant_id"})},
		{"ColonPathIsOneKey", idpToken(t, jwt.SigningMethodRS256, "rsa-1", keys.rsa, issCustom, jwt.MapClaims{"custom": map[string]any{"tenant_id": "acme"}})},
		{"NestedCaseCollision", idpToken(t, jwt.SigningMethodES256, "ec-1", keys.ec, issNested, jwt.MapClaims{
			"app_metadata": map[string]any{"tenant_id": string(tenantA), "Tenant_ID": string(tenantB)},
		})},
		{"UnknownIssuer", idpToken(t, jwt.SigningMethodRS256, "rsa-1", keys.rsa, "https://evil.idp.test/", jwt.MapClaims{"tenant_id": string(tenantA)})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(t.Context(), tt.token)
			wantInvalidToken(t, p, err)
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestJWKSUnknownKID checks that a token with a new kid triggers one refetch
// (key rotation at the provider works) and that made-up kids after it cause
// no further traffic.
func TestJWKSUnknownKID(t *testing.T) {
	t.Parallel()
	keys := mustIdPKeys(t)
	p := newIdP(t, mustJWK(t, &keys.ec.PublicKey, "ec-1", jwkset.AlgES256))
	v := &identity.Verifier{Now: clock, Trusted: []identity.Trust{p.trust("https://idp.test/", "tenant_id")}}
	t.Cleanup(func() { v.Close() })
	ctx := t.Context()
	claims := jwt.MapClaims{"tenant_id": string(tenantA)}

	if _, err := v.Verify(ctx, idpToken(t, jwt.SigningMethodES256, "ec-1", keys.ec, "https://idp.test/", claims)); err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	if got := p.fetches.Load(); got != 1 {
		t.Fatalf("fetches after first token = %d, want 1", got)
	}

	// The provider rotates: a second key appears, and a token uses it.
	p.setKeys(t, mustJWK(t, &keys.ec.PublicKey, "ec-1", jwkset.AlgES256), mustJWK(t, &keys.rsa.PublicKey, "rsa-2", jwkset.AlgRS256))
	if _, err := v.Verify(ctx, idpToken(t, jwt.SigningMethodRS256, "rsa-2", keys.rsa, "https://idp.test/", claims)); err != nil {
		t.Fatalf("Verify(token of rotated-in key) = %v", err)
	}
	if got := p.fetches.Load(); got != 2 {
		t.Fatalf("fetches after rotated-in kid = %d, want 2", got)
	}

	// A stream of made-up kids: all rejected at once, no further fetches.
	for i := range 50 {
		kid := "made-up-" + string(rune('a'+i%26)) + strings.Repeat("x", i)
		p2, err := v.Verify(ctx, idpToken(t, jwt.SigningMethodES256, kid, keys.ec, "https://idp.test/", claims))
		wantInvalidToken(t, p2, err)
	}
	if got := p.fetches.Load(); got != 2 {
		t.Errorf("fetches after 50 unknown kids = %d, want still 2", got)
	}
}

// TestJWKSUnknownKIDCallerGivesUp: a caller with a short deadline whose
// token has an unknown kid starts a refetch and gives up before the
// provider answers. The refetch must go on without it, so that a token
// under a key the provider has just rotated in verifies right after,
// rather than waiting for the next slot (JWKSUnknownKIDInterval) or the
// hourly refresh.
func TestJWKSUnknownKIDCallerGivesUp(t *testing.T) {
	t.Parallel()
	keys := mustIdPKeys(t)
	p := newIdP(t, mustJWK(t, &keys.ec.PublicKey, "ec-1", jwkset.AlgES256))
	v := &identity.Verifier{Now: clock, Trusted: []identity.Trust{p.trust("https://idp.test/", "tenant_id")}}
	t.Cleanup(func() { v.Close() })
	claims := jwt.MapClaims{"tenant_id": string(tenantA)}
	if _, err := v.Verify(t.Context(), idpToken(t, jwt.SigningMethodES256, "ec-1", keys.ec, "https://idp.test/", claims)); err != nil {
		t.Fatalf("Verify() = %v", err)
	}

	// The provider rotates a key in, and answers only when released.
	p.setKeys(t, mustJWK(t, &keys.ec.PublicKey, "ec-1", jwkset.AlgES256), mustJWK(t, &keys.rsa.PublicKey, "rsa-2", jwkset.AlgRS256))
	gate := make(chan struct{})
	p.mu.Lock()
	p.gate = gate
	p.mu.Unlock()

	short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	p1, err := v.Verify(short, idpToken(t, jwt.SigningMethodES256, "made-up", keys.ec, "https://idp.test/", claims))
	wantInvalidToken(t, p1, err)
	close(gate) // the provider answers only once that caller has gone

	if _, err := v.Verify(t.Context(), idpToken(t, jwt.SigningMethodRS256, "rsa-2", keys.rsa, "https://idp.test/", claims)); err != nil {
		t.Fatalf("Verify(token of the rotated-in key) after a caller gave up on the refetch = %v", err)
	}
	if got := p.fetches.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2 (the first, and one refetch)", got)
	}
}

func TestJWKSAddressChecks(t *testing.T) {
	t.Parallel()
	keys := mustIdPKeys(t)
	p := newIdP(t, mustJWK(t, &keys.ec.PublicKey, "ec-1", jwkset.AlgES256))
	u, err := url.Parse(p.url())
	if err != nil {
		t.Fatal(err)
	}
	viaLocalhost := "https://localhost:" + u.Port() + u.Path
	tok := idpToken(t, jwt.SigningMethodES256, "ec-1", keys.ec, "https://idp.test/", jwt.MapClaims{"tenant_id": string(tenantA)})

	t.Run("ConfigRefused", func(t *testing.T) {
		for _, tt := range []struct{ name, url string }{
			{"HTTP", "http://idp.example.com/jwks"},
			{"HTTPLoopback", "http://127.0.0.1:" + u.Port() + u.Path},
			{"LoopbackLiteral", p.url()},
			{"LoopbackIPv6", "https://[::1]:" + u.Port() + u.Path},
			{"MappedLoopback", "https://[::ffff:127.0.0.1]/jwks"},
			{"Private", "https://10.1.2.3/jwks"},
			{"LinkLocalMetadata", "https://169.254.169.254/latest/meta-data"},
			{"CGNAT", "https://100.64.0.1/jwks"},
			{"Unspecified", "https://0.0.0.0/jwks"},
			{"Credentials", "https://user:pw@idp.example.com/jwks"},
			{"NoHost", "https:///jwks"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				v := &identity.Verifier{Trusted: []identity.Trust{{Issuer: "https://idp.test/", Audience: "api", JWKSURL: tt.url}}}
				defer v.Close()
				err := v.Validate()
				if !errors.Is(err, identity.ErrVerifierConfig) {
					t.Errorf("Validate() with JWKS URL %q = %v, want ErrVerifierConfig", tt.url, err)
				}
				t.Logf("cause: %v", err)
			})
		}
	})
	t.Run("HTTPRefusedEvenIfPrivateAllowed", func(t *testing.T) {
		v := &identity.Verifier{Trusted: []identity.Trust{{Issuer: "i", Audience: "a", JWKSURL: "http://127.0.0.1/jwks", AllowPrivateJWKS: true}}}
		defer v.Close()
		if err := v.Validate(); !errors.Is(err, identity.ErrVerifierConfig) {
			t.Errorf("Validate() = %v, want ErrVerifierConfig", err)
		}
	})
	t.Run("UnsupportedTransport", func(t *testing.T) {
		c := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("no") })}
		v := &identity.Verifier{Trusted: []identity.Trust{{Issuer: "i", Audience: "a", JWKSURL: "https://idp.example.com/jwks", HTTPClient: c}}}
		defer v.Close()
		if err := v.Validate(); !errors.Is(err, identity.ErrVerifierConfig) {
			t.Errorf("Validate() = %v, want ErrVerifierConfig", err)
		}
	})
	t.Run("NameResolvingToLoopbackRefusedAtDial", func(t *testing.T) {
		var logs syncBuffer
		v := &identity.Verifier{
			Now:    clock,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Trusted: []identity.Trust{{
				Issuer: "https://idp.test/", Audience: "api", JWKSURL: viaLocalhost, HTTPClient: p.srv.Client(),
			}},
		}
		defer v.Close()
		if err := v.Validate(); err != nil {
			t.Fatalf("Validate() = %v; a host name passes the static check", err)
		}
		before := p.conns.Load()
		pr, err := v.Verify(t.Context(), tok)
		wantInvalidToken(t, pr, err)
		if got := p.conns.Load() - before; got != 0 {
			t.Errorf("connections to the JWKS server = %d, want 0", got)
		}
		if !strings.Contains(logs.String(), "is not public") {
			t.Errorf("logs = %q, want the dial refusal", logs.String())
		}
	})
	t.Run("AllowPrivateJWKS", func(t *testing.T) {
		v := &identity.Verifier{Now: clock, Trusted: []identity.Trust{p.trust("https://idp.test/", "tenant_id")}}
		defer v.Close()
		if _, err := v.Verify(t.Context(), tok); err != nil {
			t.Errorf("Verify() with AllowPrivateJWKS = %v", err)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestJWKSResponseTooLarge(t *testing.T) {
	t.Parallel()
	keys := mustIdPKeys(t)
	p := newIdP(t, mustJWK(t, &keys.ec.PublicKey, "ec-1", jwkset.AlgES256))
	// A valid key set made too long by an unknown member read before it.
	p.mu.Lock()
	p.body = append([]byte(`{"pad":"`+strings.Repeat("x", 2<<20)+`",`), p.body[1:]...)
	p.mu.Unlock()
	var logs syncBuffer
	v := &identity.Verifier{Now: clock, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Trusted: []identity.Trust{p.trust("https://idp.test/", "tenant_id")}}
	defer v.Close()
	pr, err := v.Verify(t.Context(), idpToken(t, jwt.SigningMethodES256, "ec-1", keys.ec, "https://idp.test/", jwt.MapClaims{"tenant_id": string(tenantA)}))
	wantInvalidToken(t, pr, err)
	if !strings.Contains(logs.String(), "too large") {
		t.Errorf("logs = %q, want the size refusal", logs.String())
	}
}

// TestJWKSOfIssuer serves a built-in issuer's JWKS and verifies its tokens
// through a JWKS trust pinned to EdDSA, as another service would.
func TestJWKSOfIssuer(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	body, err := w.tenant.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.Write(body) }))
	t.Cleanup(srv.Close)
	v := &identity.Verifier{Now: clock, Trusted: []identity.Trust{{
		Issuer: tenantIss, Audience: tenantAud, JWKSURL: srv.URL, Algorithms: []string{"EdDSA"},
		AllowPrivateJWKS: true, HTTPClient: srv.Client(),
	}}}
	t.Cleanup(func() { v.Close() })
	got, err := v.Verify(t.Context(), MustIssue(t, w.tenant, tenantClaims))
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	if got.TenantID != tenantA || got.Role != tenant.Admin || got.Subject != "user-1" {
		t.Errorf("Verify() = %+v, want user-1, admin of %s", got, tenantA)
	}
}

// TestVerifyCacheFollowsKeys: a verifier with a cache still checks, on
// every Verify of a remembered token, that its trust holds the same key
// under that kid (a rotation that replaces or drops the key ends the
// token at once), that the token has not expired, and asks Revoked.
func TestVerifyCacheFollowsKeys(t *testing.T) {
	t.Parallel()
	keys := mustIdPKeys(t)
	oldEC, newEC := keys.ec, must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	p := newIdP(t, mustJWK(t, &keys.rsa.PublicKey, "rsa-1", jwkset.AlgRS256), mustJWK(t, &oldEC.PublicKey, "ec-1", jwkset.AlgES256))
	const iss = "https://idp.test/"
	var mu sync.Mutex
	at, revoked, asked := now, false, 0
	v := &identity.Verifier{
		Now:       func() time.Time { mu.Lock(); defer mu.Unlock(); return at },
		Trusted:   []identity.Trust{p.trust(iss, "tenant_id")},
		CacheSize: 10,
		Revoked: func(context.Context, identity.TokenInfo) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			asked++
			return revoked, nil
		},
	}
	t.Cleanup(func() { v.Close() })
	ctx := t.Context()
	claims := jwt.MapClaims{"tenant_id": string(tenantA)}
	tokRSA := idpToken(t, jwt.SigningMethodRS256, "rsa-1", keys.rsa, iss, claims)
	tokEC := idpToken(t, jwt.SigningMethodES256, "ec-1", oldEC, iss, claims)
	short := idpToken(t, jwt.SigningMethodES256, "ec-1", oldEC, iss, jwt.MapClaims{"tenant_id": string(tenantA), "exp": now.Add(time.Minute).Unix()})
	for _, tok := range []string{tokRSA, tokEC, short, tokRSA, tokEC, short} {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("Verify() = %v", err)
		}
	}
	if asked != 6 {
		t.Fatalf("Revoked asked %d times for 6 Verifies, want every time", asked)
	}
	set := func(b bool) { mu.Lock(); revoked = b; mu.Unlock() }
	set(true)
	p2, err := v.Verify(ctx, tokRSA)
	wantInvalidToken(t, p2, err)
	set(false)

	// Past its expiry and the leeway, a remembered token is refused.
	mu.Lock()
	at = now.Add(time.Minute + identity.MaxLeeway)
	mu.Unlock()
	p2, err = v.Verify(ctx, short)
	wantInvalidToken(t, p2, err)
	mu.Lock()
	at = now
	mu.Unlock()

	// The provider rotates: ec-1 now names another key, rsa-1 is gone, and
	// a token of a new kid makes the verifier refetch.
	p.setKeys(t, mustJWK(t, &newEC.PublicKey, "ec-1", jwkset.AlgES256), mustJWK(t, &newEC.PublicKey, "ec-2", jwkset.AlgES256))
	if _, err := v.Verify(ctx, idpToken(t, jwt.SigningMethodES256, "ec-2", newEC, iss, claims)); err != nil {
		t.Fatalf("Verify(token of the new kid) = %v", err)
	}
	for name, tok := range map[string]string{"a token of a key replaced under its kid": tokEC, "a token of a dropped key": tokRSA} {
		p2, err := v.Verify(ctx, tok)
		if err == nil {
			t.Fatalf("%s verified from the cache after the rotation", name)
		}
		wantInvalidToken(t, p2, err)
	}
	if _, err := v.Verify(ctx, idpToken(t, jwt.SigningMethodES256, "ec-1", newEC, iss, claims)); err != nil {
		t.Fatalf("Verify(token of the replacing key) = %v", err)
	}
}
