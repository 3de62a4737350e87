package identity_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func TestNewSigningKey(t *testing.T) {
	t.Parallel()
	a, b := MustSigningKey(t), MustSigningKey(t)
	if a.ID == "" || a.ID == b.ID {
		t.Errorf("NewSigningKey() kids %q and %q, want distinct non-empty", a.ID, b.ID)
	}
	if len(a.Private) != ed25519.PrivateKeySize {
		t.Errorf("NewSigningKey() private key of %d bytes", len(a.Private))
	}
	secret := base64.StdEncoding.EncodeToString(a.Private)
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), fmt.Sprint([]identity.SigningKey{a})} {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprint([]byte(a.Private))) {
			t.Errorf("formatting a SigningKey leaks the private key: %s", s)
		}
	}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("key", "key", a)
	if strings.Contains(buf.String(), secret) || !strings.Contains(buf.String(), a.ID) {
		t.Errorf("logging a SigningKey = %q, want its kid only", buf.String())
	}
}

func TestIssue(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok, exp, err := w.tenant.Issue(tenantClaims)
	if err != nil {
		t.Fatalf("Issue() = %v", err)
	}
	if want := now.Add(identity.DefaultTTL); !exp.Equal(want) {
		t.Errorf("Issue() expires = %v, want %v", exp, want)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("Issue() = %q, want three parts", tok)
	}
	var h map[string]any
	decodePart(t, parts[0], &h)
	if diff := cmp.Diff(map[string]any{"alg": "EdDSA", "kid": w.tenant.Keys[0].ID, "typ": "JWT"}, h); diff != "" {
		t.Errorf("header mismatch (-want +got):\n%s", diff)
	}
	var c map[string]any
	decodePart(t, parts[1], &c)
	jti, _ := c["jti"].(string)
	if len(jti) != 36 {
		t.Errorf("jti = %q, want a UUID", jti)
	}
	delete(c, "jti")
	want := map[string]any{
		"iss": tenantIss, "aud": tenantAud, "sub": "user-1", "email": "ann@example.com",
		"tenant": "acme", "tenant_id": string(tenantA), "role": "admin",
		"iat": float64(now.Unix()), "nbf": float64(now.Unix()), "exp": float64(exp.Unix()),
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("payload mismatch (-want +got):\n%s", diff)
	}

	t.Run("Platform", func(t *testing.T) {
		tok, exp, err := w.admin.Issue(identity.Claims{Subject: "ops-1", Platform: true})
		if err != nil {
			t.Fatalf("Issue() = %v", err)
		}
		if want := now.Add(identity.DefaultPlatformTTL); !exp.Equal(want) {
			t.Errorf("Issue() expires = %v, want %v", exp, want)
		}
		var c map[string]any
		decodePart(t, strings.Split(tok, ".")[1], &c)
		if c["platform"] != true || c["aud"] != adminAud || c["tenant_id"] != nil || c["role"] != nil {
			t.Errorf("platform payload = %v, want platform true, aud %q, no tenant or role", c, adminAud)
		}
	})
	t.Run("CappedAtKeyNotAfter", func(t *testing.T) {
		k := w.tenant.Keys[0]
		k.NotAfter = now.Add(time.Minute)
		i := *w.tenant
		i.Keys = []identity.SigningKey{k}
		_, exp, err := i.Issue(tenantClaims)
		if err != nil || !exp.Equal(k.NotAfter) {
			t.Errorf("Issue() = %v, %v, want expiry %v", exp, err, k.NotAfter)
		}
	})
}

func decodePart(tb testing.TB, part string, v any) {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatal(err)
	}
}

func TestIssueRefuses(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	retired := w.tenant.Keys[0]
	retired.NotAfter = now
	for _, tt := range []struct {
		name   string
		issuer func() identity.Issuer
		claims identity.Claims
		want   error
	}{
		{"NoSubject", func() identity.Issuer { return *w.tenant }, identity.Claims{TenantID: tenantA, Role: tenant.Member}, identity.ErrInvalidClaims},
		{"NoTenantID", func() identity.Issuer { return *w.tenant }, identity.Claims{Subject: "u", Tenant: "acme", Role: tenant.Member}, identity.ErrInvalidClaims},
		{"UppercaseTenantID", func() identity.Issuer { return *w.tenant },
			identity.Claims{Subject: "u", TenantID: tenant.ID(strings.ToUpper(string(tenantA))), Role: tenant.Member}, identity.ErrInvalidClaims},
		{"BadSlug", func() identity.Issuer { return *w.tenant }, identity.Claims{Subject: "u", Tenant: "Admin", TenantID: tenantA, Role: tenant.Member}, identity.ErrInvalidClaims},
		{"NoRole", func() identity.Issuer { return *w.tenant }, identity.Claims{Subject: "u", TenantID: tenantA}, identity.ErrInvalidClaims},
		{"UnknownRole", func() identity.Issuer { return *w.tenant }, identity.Claims{Subject: "u", TenantID: tenantA, Role: "owner"}, identity.ErrInvalidClaims},
		{"PlatformClaimsToTenantIssuer", func() identity.Issuer { return *w.tenant }, identity.Claims{Subject: "u", Platform: true}, identity.ErrInvalidClaims},
		{"TenantClaimsToPlatformIssuer", func() identity.Issuer { return *w.admin }, tenantClaims, identity.ErrInvalidClaims},
		{"PlatformWithTenant", func() identity.Issuer { return *w.admin }, identity.Claims{Subject: "u", TenantID: tenantA, Platform: true}, identity.ErrInvalidClaims},
		{"PlatformWithRole", func() identity.Issuer { return *w.admin }, identity.Claims{Subject: "u", Role: tenant.Admin, Platform: true}, identity.ErrInvalidClaims},
		{"NoKeys", func() identity.Issuer { i := *w.tenant; i.Keys = nil; return i }, tenantClaims, identity.ErrIssuerConfig},
		{"NoAudience", func() identity.Issuer { i := *w.tenant; i.Audience = ""; return i }, tenantClaims, identity.ErrIssuerConfig},
		{"NoIssuer", func() identity.Issuer { i := *w.tenant; i.Issuer = ""; return i }, tenantClaims, identity.ErrIssuerConfig},
		{"RetiredKey", func() identity.Issuer { i := *w.tenant; i.Keys = []identity.SigningKey{retired}; return i }, tenantClaims, identity.ErrIssuerConfig},
		{"DuplicateKid", func() identity.Issuer { i := *w.tenant; i.Keys = []identity.SigningKey{i.Keys[0], i.Keys[0]}; return i }, tenantClaims, identity.ErrIssuerConfig},
		{"PlatformTTLTooLong", func() identity.Issuer { i := *w.admin; i.TTL = time.Hour; return i }, identity.Claims{Subject: "u", Platform: true}, identity.ErrIssuerConfig},
		{"TenantTTLTooLong", func() identity.Issuer { i := *w.tenant; i.TTL = 48 * time.Hour; return i }, tenantClaims, identity.ErrIssuerConfig},
		{"NegativeTTL", func() identity.Issuer { i := *w.tenant; i.TTL = -time.Minute; return i }, tenantClaims, identity.ErrIssuerConfig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			i := tt.issuer()
			tok, _, err := i.Issue(tt.claims)
			if !errors.Is(err, tt.want) || tok != "" {
				t.Errorf("Issue(%+v) = %q, %v, want %v", tt.claims, tok, err, tt.want)
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	a, b := MustSigningKey(t), MustSigningKey(t)
	got, err := identity.JWKS([]identity.SigningKey{a}, []identity.SigningKey{b})
	if err != nil {
		t.Fatalf("JWKS() = %v", err)
	}
	jwk := func(k identity.SigningKey) string {
		x := base64.RawURLEncoding.EncodeToString(k.Private.Public().(ed25519.PublicKey))
		return `{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"` + k.ID + `","alg":"EdDSA","use":"sig"}`
	}
	want := `{"keys":[` + jwk(a) + `,` + jwk(b) + `]}`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("JWKS() mismatch (-want +got):\n%s", diff)
	}
	if strings.Contains(string(got), `"d"`) {
		t.Errorf("JWKS() publishes a private key: %s", got)
	}

	t.Run("Empty", func(t *testing.T) {
		got, err := identity.JWKS()
		if err != nil || string(got) != `{"keys":[]}` {
			t.Errorf("JWKS() = %s, %v, want an empty set", got, err)
		}
	})
	t.Run("DuplicateKid", func(t *testing.T) {
		if _, err := identity.JWKS([]identity.SigningKey{a}, []identity.SigningKey{a}); err == nil {
			t.Errorf("JWKS(a, a) succeeded, want an error")
		}
	})
	t.Run("IssuerOmitsRetired", func(t *testing.T) {
		old := b
		old.NotAfter = now
		i := &identity.Issuer{Issuer: tenantIss, Audience: tenantAud, Keys: []identity.SigningKey{a, old}, Now: clock}
		got, err := i.JWKS()
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"keys":[` + jwk(a) + `]}`; string(got) != want {
			t.Errorf("Issuer.JWKS() = %s, want %s", got, want)
		}
	})
}
