package httpapi_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/ctxtoken"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	a := seed(t, s, "acme", "pool")
	ctx := context.Background()
	pg := s.DB.Postgres()
	oldCtx, err := s.DB.Mint(ctx, tenant.Principal{TenantID: tenant.ID(a.UUID), Role: tenant.Admin}, bulkhead.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldKid, _ := ctxtoken.KeyID(oldCtx.Token)
	oldJWT := a.AdminToken
	for _, p := range []postgres.KeyPurpose{postgres.KeyContext, postgres.KeyJWT} {
		if _, err := pg.RotateKey(ctx, p, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	sees := func(token string) int {
		var n int
		err := postgres.ScopedTx(ctx, pg.App(), token, postgres.ScopeOptions{}, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM app.projects`).Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Old contexts and tokens keep working through the grace period.
	if n := sees(oldCtx.Token); n != 1 {
		t.Fatalf("old context after rotation sees %d rows, want 1", n)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects", oldJWT, nil); r.Status != http.StatusOK {
		t.Fatalf("old JWT after rotation: %s", r)
	}
	// New ones are signed with the new keys.
	newJWT := s.Login(t, "acme", "admin@acme.test", "pw-admin@acme.test")
	if kidOf(newJWT) == kidOf(oldJWT) {
		t.Fatalf("after rotation, a new token is still signed by %s", kidOf(oldJWT))
	}
	newCtx, err := s.DB.Mint(ctx, tenant.Principal{TenantID: tenant.ID(a.UUID), Role: tenant.Admin}, bulkhead.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := ctxtoken.KeyID(newCtx.Token); kid == oldKid {
		t.Fatalf("after rotation, a new context is still signed by %s", oldKid)
	}
	// Retiring the old keys stops what they signed at once.
	if err := pg.RetireKey(ctx, oldKid); err != nil {
		t.Fatal(err)
	}
	if n := sees(oldCtx.Token); n != 0 {
		t.Fatalf("context under a retired key sees %d rows", n)
	}
	if err := pg.RetireKey(ctx, kidOf(oldJWT)); err != nil {
		t.Fatal(err)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects", oldJWT, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("JWT under a retired key: %s", r)
	}
	if r := s.Do(t, "GET", "/rest/v1/projects", newJWT, nil); r.Status != http.StatusOK {
		t.Fatalf("JWT under the new key: %s", r)
	}
}

func kidOf(tok string) string {
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(b, &h)
	return h.Kid
}

func TestExternalIdentityProvider(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "idp-1", "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}}
	idp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jwks)
	}))
	defer idp.Close()
	s := apitest.Start(t, apitest.Options{External: []identity.Trust{{
		Issuer: idp.URL, JWKSURL: idp.URL + "/jwks.json", Audience: "my-app",
		TenantClaim: "app_metadata.tenant_id", AllowPrivateJWKS: true, HTTPClient: idp.Client(),
	}}})
	a := seed(t, s, "acme", "pool")
	g := seed(t, s, "globex", "silo")
	sign := func(claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = "idp-1"
		out, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	now := time.Now()
	claims := func(tenantClaim any) jwt.MapClaims {
		return jwt.MapClaims{"iss": idp.URL, "aud": "my-app", "sub": "ext-user-1", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
			"app_metadata": map[string]any{"tenant_id": tenantClaim}, "user_metadata": map[string]any{"tenant_id": "globex"}}
	}
	r := s.Do(t, "GET", "/rest/v1/projects", sign(claims("acme")), nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), a.ProjectName) || strings.Contains(string(r.Body), g.ProjectName) {
		t.Fatalf("external token for acme: %s", r)
	}
	r = s.Do(t, "GET", "/rest/v1/projects", sign(claims(g.UUID)), nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), g.ProjectName) || strings.Contains(string(r.Body), a.ProjectName) {
		t.Fatalf("external token for globex by UUID: %s", r)
	}
	for name, c := range map[string]jwt.MapClaims{
		"unknown tenant":    claims("initech"),
		"no tenant":         {"iss": idp.URL, "aud": "my-app", "sub": "x", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()},
		"wrong audience":    func() jwt.MapClaims { c := claims("acme"); c["aud"] = "other"; return c }(),
		"expired":           func() jwt.MapClaims { c := claims("acme"); c["exp"] = now.Add(-time.Hour).Unix(); return c }(),
		"claims a platform": func() jwt.MapClaims { c := claims("acme"); c["platform"] = true; return c }(),
		"our issuer":        func() jwt.MapClaims { c := claims("acme"); c["iss"] = bulkhead.TokenIssuer; return c }(),
	} {
		t.Run(name, func(t *testing.T) {
			r := s.Do(t, "GET", "/v1/tenants", sign(c), nil)
			if name == "claims a platform" {
				// A tenant IdP's claim cannot make a platform admin: the
				// token stays a tenant token.
				if r.Status != http.StatusOK || strings.Contains(string(r.Body), "globex") {
					t.Fatalf("%s: %s", name, r)
				}
				return
			}
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("%s: %s, want 401", name, r)
			}
		})
	}
}
