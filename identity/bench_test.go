package identity_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/bulkhead-dev/bulkhead/identity"
)

// BenchmarkVerify verifies a valid token, and tokens whose signature is
// broken (a new one each time, as a flood of forgeries sends them): what a
// token costs the server before any cache can help.
func BenchmarkVerify(b *testing.B) {
	w := newWorld(b)
	v := verifier(b, w.tenant, w.admin)
	tok := MustIssue(b, w.tenant, tenantClaims)
	ctx := context.Background()
	b.Run("valid", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The signature is R (its first 43 characters) then S. A forgery that
	// changes S's last bytes makes S too large, which Ed25519 refuses at
	// once; one that changes R costs the whole check.
	sig := strings.LastIndexByte(tok, '.') + 1
	for _, f := range []struct {
		name string
		at   int
	}{{"forged-R", sig + 8}, {"forged-S", len(tok) - 9}} {
		b.Run(f.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				forged := tok[:f.at] + fmt.Sprintf("%08x", i) + tok[f.at+8:]
				if _, err := v.Verify(ctx, forged); err == nil {
					b.Fatal("a forged token verified")
				}
			}
		})
	}
}

// BenchmarkVerifyExternal verifies an external provider's tokens, RS256
// and ES256, with fetched keys: what each request of a user signed in
// through Supabase, Auth0 or Cognito costs the server, without a cache and
// with one (Verifier.CacheSize), whose hit still checks the key.
func BenchmarkVerifyExternal(b *testing.B) {
	keys := mustIdPKeys(b)
	p := newIdP(b,
		mustJWK(b, &keys.rsa.PublicKey, "rsa-1", jwkset.AlgRS256),
		mustJWK(b, &keys.ec.PublicKey, "ec-1", jwkset.AlgES256),
	)
	const iss = "https://idp.test/"
	ctx := context.Background()
	for _, cache := range []int{0, 10000} {
		v := &identity.Verifier{Now: clock, Trusted: []identity.Trust{p.trust(iss, "tenant_id")}, CacheSize: cache}
		b.Cleanup(func() { v.Close() })
		for _, tt := range []struct {
			name string
			tok  string
		}{
			{"RS256", idpToken(b, jwt.SigningMethodRS256, "rsa-1", keys.rsa, iss, jwt.MapClaims{"tenant_id": string(tenantA)})},
			{"ES256", idpToken(b, jwt.SigningMethodES256, "ec-1", keys.ec, iss, jwt.MapClaims{"tenant_id": string(tenantA)})},
		} {
			b.Run(fmt.Sprintf("%s/cache=%d", tt.name, cache), func(b *testing.B) {
				for b.Loop() {
					if _, err := v.Verify(ctx, tt.tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
