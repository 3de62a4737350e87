package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func TestVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	v := verifier(t, w.tenant, w.admin)

	t.Run("Tenant", func(t *testing.T) {
		tok, exp, err := w.tenant.Issue(tenantClaims)
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatalf("Verify() = %v", err)
		}
		want := tenant.Principal{
			Subject: "user-1", Issuer: tenantIss, Email: "ann@example.com",
			TenantID: tenantA, Role: tenant.Admin, Token: tok, Expires: exp,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("Platform", func(t *testing.T) {
		tok, exp, err := w.admin.Issue(identity.Claims{Subject: "ops-1", Email: "ops@bulkhead.test", Platform: true})
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatalf("Verify() = %v", err)
		}
		want := tenant.Principal{
			Subject: "ops-1", Issuer: adminIss, Email: "ops@bulkhead.test",
			Platform: true, Token: tok, Expires: exp,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("VerifyOnlyKey", func(t *testing.T) {
		// Rotation: a token signed by the old key, now verify-only, still
		// verifies while the key has not retired.
		old := *w.tenant
		signer := old
		signer.Keys = []identity.SigningKey{old.Keys[0]}
		tok := MustIssue(t, &signer, tenantClaims)
		rotated := old
		rotated.Keys = []identity.SigningKey{MustSigningKey(t), old.Keys[0]}
		if _, err := verifier(t, &rotated).Verify(t.Context(), tok); err != nil {
			t.Errorf("Verify(token of verify-only key) = %v", err)
		}
	})
	t.Run("WithinLeeway", func(t *testing.T) {
		past := *w.tenant
		past.Now = func() time.Time { return now.Add(-identity.DefaultTTL - 10*time.Second) }
		if _, err := v.Verify(t.Context(), MustIssue(t, &past, tenantClaims)); err != nil {
			t.Errorf("Verify(token expired 10s ago) = %v, want accepted within the default leeway", err)
		}
	})
	t.Run("HandBuilt", func(t *testing.T) {
		// The control for the hand-built cases in TestVerifyRejects: the
		// same construction, without the defect, verifies.
		tok := signRaw(w.tenant.Keys[0], header(w.tenant.Keys[0]), tenantPayload(`,"tenant_id":"`+string(tenantA)+`"`))
		got, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatalf("Verify() = %v", err)
		}
		if got.TenantID != tenantA || got.Role != tenant.Member {
			t.Errorf("Verify() = %+v, want tenant %s, role member", got, tenantA)
		}
	})
}

func TestVerifyTenantClaim(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	v := verifier(t, w.tenant)
	k := w.tenant.Keys[0]
	for _, tt := range []struct {
		name    string
		claim   string
		want    tenant.Principal
		wantErr bool
	}{
		{name: "UUID", claim: `"` + string(tenantA) + `"`, want: tenant.Principal{TenantID: tenantA}},
		{name: "UppercaseUUID", claim: `"` + strings.ToUpper(string(tenantA)) + `"`, want: tenant.Principal{TenantID: tenantA}},
		{name: "Slug", claim: `"acme"`, want: tenant.Principal{Tenant: "acme"}},
		{name: "UppercaseSlug", claim: `"ACME"`, wantErr: true},
		{name: "ReservedSlug", claim: `"admin"`, wantErr: true},
		{name: "Empty", claim: `""`, wantErr: true},
		{name: "Number", claim: `42`, wantErr: true},
		{name: "Array", claim: `["acme"]`, wantErr: true},
		{name: "Null", claim: `null`, wantErr: true},
		{name: "BracedUUID", claim: `"{` + string(tenantA) + `}"`, wantErr: true},
		{name: "KelvinSlug", claim: `"\u212acme"`, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), signRaw(k, header(k), tenantPayload(`,"tenant_id":`+tt.claim)))
			if tt.wantErr {
				wantInvalidToken(t, got, err)
				return
			}
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			if diff := cmp.Diff(tt.want, tenant.Principal{Tenant: got.Tenant, TenantID: got.TenantID}); diff != "" {
				t.Errorf("Verify() tenant mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("Missing", func(t *testing.T) {
		p, err := v.Verify(t.Context(), signRaw(k, header(k), tenantPayload("")))
		wantInvalidToken(t, p, err)
	})
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	k := w.tenant.Keys[0]
	pub := k.Private.Public().(ed25519.PublicKey)
	valid := MustIssue(t, w.tenant, tenantClaims)
	validParts := strings.Split(valid, ".")
	tid := `,"tenant_id":"` + string(tenantA) + `"`

	issueAt := func(at time.Time, edit func(*identity.Issuer)) string {
		i := *w.tenant
		i.Now = func() time.Time { return at }
		if edit != nil {
			edit(&i)
		}
		return MustIssue(t, &i, tenantClaims)
	}
	retiredKey := func() *identity.Issuer {
		i := *w.tenant
		k := i.Keys[0]
		k.NotAfter = now.Add(-time.Second)
		i.Keys = []identity.SigningKey{k}
		return &i
	}()

	for _, tt := range []struct {
		name  string
		token string
		v     *identity.Verifier // nil means one trusting w.tenant
	}{
		{name: "Empty", token: ""},
		{name: "Garbage", token: "not a token"},
		{name: "TwoParts", token: validParts[0] + "." + validParts[1]},
		{name: "FourParts", token: valid + ".AAAA"},
		{name: "TooLong", token: valid + strings.Repeat("A", identity.MaxTokenLen)},
		{name: "Padded", token: validParts[0] + "." + validParts[1] + "." + validParts[2] + "=="},
		{name: "Expired", token: issueAt(now.Add(-time.Hour), nil)},
		{name: "NotYetValid", token: issueAt(now.Add(10*time.Minute), nil)},
		{name: "WrongAudience", token: issueAt(now, func(i *identity.Issuer) { i.Audience = "someone-else" })},
		{name: "WrongIssuer", token: issueAt(now, func(i *identity.Issuer) { i.Issuer = "https://evil.test" })},
		{name: "IssuerDiffersInCase", token: issueAt(now, func(i *identity.Issuer) { i.Issuer = strings.ToUpper(tenantIss) })},
		{name: "RetiredKey", token: MustIssue(t, &identity.Issuer{Issuer: tenantIss, Audience: tenantAud, Keys: []identity.SigningKey{k}, Now: clock}, tenantClaims),
			v: verifier(t, retiredKey)},
		{name: "TamperedTenant", token: func() string {
			var c map[string]any
			decodePart(t, validParts[1], &c)
			payload := strings.Replace(string(mustJSON(t, c)), string(tenantA), string(tenantB), 1)
			return validParts[0] + "." + enc([]byte(payload)) + "." + validParts[2]
		}()},
		{name: "StrippedSignature", token: validParts[0] + "." + validParts[1] + "."},
		{name: "ZeroSignature", token: validParts[0] + "." + validParts[1] + "." + enc(make([]byte, ed25519.SignatureSize))},
		{name: "AlgNone", token: enc([]byte(`{"alg":"none","kid":"`+k.ID+`"}`)) + "." + validParts[1] + "."},
		{name: "AlgNoneWithSignature", token: enc([]byte(`{"alg":"none","kid":"`+k.ID+`"}`)) + "." + validParts[1] + "." + validParts[2]},
		{name: "AlgNoneCased", token: enc([]byte(`{"alg":"None","kid":"`+k.ID+`"}`)) + "." + validParts[1] + ".AA"},
		{name: "HS256WithPublicKey", token: func() string {
			in := enc([]byte(`{"alg":"HS256","kid":"`+k.ID+`","typ":"JWT"}`)) + "." + validParts[1]
			mac := hmac.New(sha256.New, pub)
			mac.Write([]byte(in))
			return in + "." + enc(mac.Sum(nil))
		}()},
		{name: "HS256ViaLibrary", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"iss": tenantIss, "aud": tenantAud, "sub": "u", "exp": now.Add(time.Minute).Unix(), "tenant_id": string(tenantA),
			})
			tok.Header["kid"] = k.ID
			s, err := tok.SignedString([]byte(pub))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}()},
		{name: "NoKid", token: signRaw(k, `{"alg":"EdDSA"}`, tenantPayload(tid))},
		{name: "UnknownKid", token: signRaw(k, `{"alg":"EdDSA","kid":"nope"}`, tenantPayload(tid))},
		{name: "KidOfAnotherTrust", token: signRaw(w.other.Keys[0], header(w.other.Keys[0]), tenantPayload(tid)),
			v: verifier(t, w.tenant, w.other)},
		{name: "KidOfAnotherTrustSignedHere", token: signRaw(k, header(w.other.Keys[0]), tenantPayload(tid)),
			v: verifier(t, w.tenant, w.other)},
		{name: "KidNumber", token: signRaw(k, `{"alg":"EdDSA","kid":7}`, tenantPayload(tid))},
		{name: "HeaderJKU", token: signRaw(k, `{"alg":"EdDSA","kid":"`+k.ID+`","jku":"https://evil.test/jwks"}`, tenantPayload(tid))},
		{name: "HeaderX5U", token: signRaw(k, `{"alg":"EdDSA","kid":"`+k.ID+`","x5u":"https://evil.test/cert"}`, tenantPayload(tid))},
		{name: "HeaderJWK", token: signRaw(k, `{"alg":"EdDSA","kid":"`+k.ID+`","jwk":{"kty":"OKP","crv":"Ed25519","x":"`+enc(pub)+`"}}`, tenantPayload(tid))},
		{name: "HeaderX5C", token: signRaw(k, `{"alg":"EdDSA","kid":"`+k.ID+`","x5c":["AAAA"]}`, tenantPayload(tid))},
		{name: "HeaderCrit", token: signRaw(k, `{"alg":"EdDSA","kid":"`+k.ID+`","crit":["exp"]}`, tenantPayload(tid))},
		{name: "HeaderJKUCased", token: signRaw(k, `{"alg":"EdDSA","kid":"`+k.ID+`","JKU":"https://evil.test/jwks"}`, tenantPayload(tid))},
		{name: "HeaderDuplicateAlg", token: signRaw(k, `{"alg":"EdDSA","kid":"`+k.ID+`","alg":"none"}`, tenantPayload(tid))},

		// Hand-built payloads signed with the trusted key: only the exact
		// key matching can reject them (see HandBuilt in
		// TestVerifyRoundTrip for the control).
		{name: "DuplicateTenant", token: signRaw(k, header(k), tenantPayload(tid+`,"tenant_id":"`+string(tenantB)+`"`))},
		{name: "CaseCollidingTenant", token: signRaw(k, header(k), tenantPayload(tid+`,"TENANT_ID":"`+string(tenantB)+`"`))},
		{name: "CaseCollidingTenantFirst", token: signRaw(k, header(k), tenantPayload(`,"Tenant_Id":"`+string(tenantB)+`"`+tid))},
		{name: "KelvinCollision", token: signRaw(k, header(k), tenantPayload(tid+`,"\u212aey":1,"key":2`))},
		{name: "EscapedDuplicate", token: signRaw(k, header(k), tenantPayload(tid+`,"tenant\u005fid":"`+string(tenantB)+`"`))},
		{name: "DuplicateIssuer", token: signRaw(k, header(k), `{"iss":"https://evil.test",`+tenantPayload(tid)[1:])},
		{name: "DuplicateExp", token: signRaw(k, header(k), tenantPayload(tid+`,"exp":`+unix(now.Add(100*time.Hour))))},
		{name: "NestedCaseCollision", token: signRaw(k, header(k), tenantPayload(tid+`,"app_metadata":{"org":"a","ORG":"b"}`))},
		{name: "NestedInArray", token: signRaw(k, header(k), tenantPayload(tid+`,"groups":[{"id":1,"id":2}]`))},
		{name: "TrailingData", token: signRaw(k, header(k), tenantPayload(tid)+`{}`)},
		{name: "NotAnObject", token: signRaw(k, header(k), `["iss"]`)},
		{name: "InvalidUTF8", token: signRaw(k, header(k), tenantPayload(tid+`,"name":"`+"\xff"+`"`))},
		{name: "TooDeep", token: signRaw(k, header(k), tenantPayload(tid+`,"x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)))},

		{name: "NoExp", token: signRaw(k, header(k), `{"iss":"`+tenantIss+`","aud":"`+tenantAud+`","sub":"u","iat":`+unix(now)+tid+`}`)},
		{name: "ExpString", token: signRaw(k, header(k), `{"iss":"`+tenantIss+`","aud":"`+tenantAud+`","sub":"u","iat":`+unix(now)+`,"exp":"`+unix(now.Add(time.Minute))+`"`+tid+`}`)},
		{name: "NoAudience", token: signRaw(k, header(k), `{"iss":"`+tenantIss+`","sub":"u","iat":`+unix(now)+`,"exp":`+unix(now.Add(time.Minute))+tid+`}`)},
		{name: "AudienceList", token: signRaw(k, header(k), `{"iss":"`+tenantIss+`","aud":["x","y"],"sub":"u","iat":`+unix(now)+`,"exp":`+unix(now.Add(time.Minute))+tid+`}`)},
		{name: "NoSubject", token: signRaw(k, header(k), `{"iss":"`+tenantIss+`","aud":"`+tenantAud+`","iat":`+unix(now)+`,"exp":`+unix(now.Add(time.Minute))+tid+`}`)},
		{name: "EmailNotString", token: signRaw(k, header(k), tenantPayload(tid+`,"email":["a@b.c"]`))},
		{name: "IssuedInFuture", token: signRaw(k, header(k), `{"iss":"`+tenantIss+`","aud":"`+tenantAud+`","sub":"u","iat":`+unix(now.Add(time.Hour))+`,"exp":`+unix(now.Add(2*time.Hour))+tid+`}`)},
		{name: "NoIssuedAt", token: signRaw(k, header(k), `{"iss":"`+tenantIss+`","aud":"`+tenantAud+`","sub":"u","exp":`+unix(now.Add(time.Minute))+tid+`}`)},
		{name: "LifetimeTooLong", token: signRaw(k, header(k), `{"iss":"`+tenantIss+`","aud":"`+tenantAud+`","sub":"u","iat":`+unix(now)+`,"exp":`+unix(now.Add(30*24*time.Hour))+tid+`}`)},
		{name: "PlatformClaimInTenantToken", token: signRaw(k, header(k), tenantPayload(tid+`,"platform":true`))},
		{name: "PlatformClaimNotBool", token: signRaw(k, header(k), tenantPayload(tid+`,"platform":"false"`))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v
			if v == nil {
				v = verifier(t, w.tenant)
			}
			p, err := v.Verify(t.Context(), tt.token)
			wantInvalidToken(t, p, err)
		})
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := jsonMarshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestPlatformSeparation checks that tenant and platform-administrator tokens
// never verify under each other's trust.
func TestPlatformSeparation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tenantTok := MustIssue(t, w.tenant, tenantClaims)
	adminTok := MustIssue(t, w.admin, identity.Claims{Subject: "ops-1", Platform: true})
	ka, kt := w.admin.Keys[0], w.tenant.Keys[0]
	adminPayload := func(extra string) string {
		return `{"iss":"` + adminIss + `","aud":"` + adminAud + `","sub":"ops-1","iat":` + unix(now) +
			`,"exp":` + unix(now.Add(time.Minute)) + extra + `}`
	}

	for _, tt := range []struct {
		name  string
		v     *identity.Verifier
		token string
	}{
		{"AdminTokenAtTenantTrust", verifier(t, w.tenant), adminTok},
		{"TenantTokenAtAdminTrust", verifier(t, w.admin), tenantTok},
		{"AdminIssuerTenantKey", verifier(t, w.tenant, w.admin), signRaw(kt, header(kt), adminPayload(`,"platform":true`))},
		{"AdminIssuerTenantKeyAdminKid", verifier(t, w.tenant, w.admin), signRaw(kt, header(ka), adminPayload(`,"platform":true`))},
		{"AdminAudienceAtTenantIssuer", verifier(t, w.tenant, w.admin),
			signRaw(kt, header(kt), `{"iss":"`+tenantIss+`","aud":"`+adminAud+`","sub":"u","iat":`+unix(now)+`,"exp":`+unix(now.Add(time.Minute))+`,"platform":true}`)},
		{"AdminTokenWithoutPlatformClaim", verifier(t, w.admin), signRaw(ka, header(ka), adminPayload(""))},
		{"AdminTokenPlatformFalse", verifier(t, w.admin), signRaw(ka, header(ka), adminPayload(`,"platform":false`))},
		{"AdminTokenTooLong", verifier(t, w.admin),
			signRaw(ka, header(ka), `{"iss":"`+adminIss+`","aud":"`+adminAud+`","sub":"ops-1","iat":`+unix(now)+`,"exp":`+unix(now.Add(time.Hour))+`,"platform":true}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.v.Verify(t.Context(), tt.token)
			wantInvalidToken(t, p, err)
		})
	}

	t.Run("BothTrusted", func(t *testing.T) {
		v := verifier(t, w.tenant, w.admin)
		p, err := v.Verify(t.Context(), adminTok)
		if err != nil || !p.Platform || p.TenantID != "" || p.Tenant != "" || p.Role != "" {
			t.Errorf("Verify(admin token) = %+v, %v, want a platform principal without tenant", p, err)
		}
		p, err = v.Verify(t.Context(), tenantTok)
		if err != nil || p.Platform || p.TenantID != tenantA {
			t.Errorf("Verify(tenant token) = %+v, %v, want a tenant principal", p, err)
		}
	})
}

func TestVerifierConfig(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	shared := *w.admin
	shared.Keys = w.tenant.Keys
	sameAud := *w.admin
	sameAud.Audience = tenantAud
	sameIss := *w.other
	sameIss.Issuer = tenantIss
	tr := func(edit func(*identity.Trust)) identity.Trust {
		t := w.tenant.Trust()
		edit(&t)
		return t
	}

	for _, tt := range []struct {
		name string
		v    *identity.Verifier
	}{
		{"NoTrusts", &identity.Verifier{}},
		{"DuplicateIssuer", &identity.Verifier{Trusted: []identity.Trust{w.tenant.Trust(), sameIss.Trust()}}},
		{"PlatformSharesKey", &identity.Verifier{Trusted: []identity.Trust{w.tenant.Trust(), shared.Trust()}}},
		{"PlatformSharesAudience", &identity.Verifier{Trusted: []identity.Trust{w.tenant.Trust(), sameAud.Trust()}}},
		{"PlatformSharesJWKSURL", &identity.Verifier{Trusted: []identity.Trust{
			{Issuer: "a", Audience: "a", JWKSURL: "https://idp.example.com/jwks"},
			{Issuer: "b", Audience: "b", JWKSURL: "https://idp.example.com/jwks", Platform: true},
		}}},
		{"PlatformTenantClaim", &identity.Verifier{Trusted: []identity.Trust{func() identity.Trust {
			t := w.admin.Trust()
			t.TenantClaim = "tenant_id"
			return t
		}()}}},
		{"NoIssuer", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.Issuer = "" })}}},
		{"NoAudience", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.Audience = "" })}}},
		{"NoKeys", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.Keys = nil })}}},
		{"KeysAndJWKS", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.JWKSURL = "https://idp.example.com/jwks" })}}},
		{"BadKey", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.Keys = []identity.PublicKey{{ID: "k", Key: []byte("short")}} })}}},
		{"DuplicateKid", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.Keys = append(t.Keys, t.Keys[0]) })}}},
		{"AlgNone", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.Algorithms = []string{"none"} })}}},
		{"AlgHS256", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.Algorithms = []string{"EdDSA", "HS256"} })}}},
		{"AlgRS256WithEd25519Keys", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.Algorithms = []string{"RS256"} })}}},
		{"BadTenantClaim", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.TenantClaim = "app_metadata..tenant" })}}},
		{"BadRoleClaim", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.RoleClaim = "role\\" })}}},
		{"LeewayTooLarge", &identity.Verifier{Trusted: []identity.Trust{w.tenant.Trust()}, Leeway: time.Hour}},
		{"NegativeMaxLifetime", &identity.Verifier{Trusted: []identity.Trust{tr(func(t *identity.Trust) { t.MaxLifetime = -time.Second })}}},
		{"MaxLifetimeWithJWKS", &identity.Verifier{Trusted: []identity.Trust{
			{Issuer: "a", Audience: "a", JWKSURL: "https://idp.example.com/jwks", MaxLifetime: time.Hour},
		}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v
			defer v.Close()
			err := v.Validate()
			if !errors.Is(err, identity.ErrVerifierConfig) {
				t.Fatalf("Validate() = %v, want ErrVerifierConfig", err)
			}
			t.Logf("cause: %v", err)
			_, err = v.Verify(t.Context(), MustIssue(t, w.tenant, tenantClaims))
			if !errors.Is(err, identity.ErrVerifierConfig) || fault.KindOf(err) != fault.Internal {
				t.Errorf("Verify() = %v, want ErrVerifierConfig", err)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	i := *w.tenant
	i.Now = func() time.Time { return now.Add(-identity.DefaultTTL - 10*time.Second) } // expired 10s ago
	tok := MustIssue(t, &i, tenantClaims)
	for _, tt := range []struct {
		name   string
		leeway time.Duration
		ok     bool
	}{
		{"Default", 0, true},
		{"None", -1, false},
		{"Five", 5 * time.Second, false},
		{"Twenty", 20 * time.Second, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := &identity.Verifier{Trusted: []identity.Trust{w.tenant.Trust()}, Now: clock, Leeway: tt.leeway}
			p, err := v.Verify(t.Context(), tok)
			if tt.ok {
				if err != nil {
					t.Errorf("Verify() with leeway %v = %v, want accepted", tt.leeway, err)
				}
				return
			}
			wantInvalidToken(t, p, err)
		})
	}
}

func TestVerifyRevoked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tok := MustIssue(t, w.admin, identity.Claims{Subject: "ops-1", Platform: true})
	var seen identity.TokenInfo
	for _, tt := range []struct {
		name    string
		revoked func(context.Context, identity.TokenInfo) (bool, error)
		want    error
	}{
		{"NotRevoked", func(_ context.Context, ti identity.TokenInfo) (bool, error) { seen = ti; return false, nil }, nil},
		{"Revoked", func(context.Context, identity.TokenInfo) (bool, error) { return true, nil }, identity.ErrInvalidToken},
		{"HookFails", func(context.Context, identity.TokenInfo) (bool, error) { return false, errors.New("store down") }, identity.ErrRevocationCheck},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := &identity.Verifier{Trusted: []identity.Trust{w.admin.Trust()}, Now: clock, Revoked: tt.revoked}
			p, err := v.Verify(t.Context(), tok)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify() = %v, want %v", err, tt.want)
			}
			if tt.want != nil && p != (tenant.Principal{}) {
				t.Errorf("Verify() = %+v with an error", p)
			}
		})
	}
	if seen.ID == "" || seen.Subject != "ops-1" || !seen.Platform || !seen.IssuedAt.Equal(now) || seen.Issuer != adminIss {
		t.Errorf("Revoked saw %+v, want the admin token's jti, sub, iat, issuer and platform", seen)
	}
}

// TestPermanent: only failures that hold for the same token text forever
// (its shape, its signature, its expiry) may be remembered and refused
// again without verifying; anything that can pass later may not.
func TestPermanent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	v := verifier(t, w.tenant)
	valid := MustIssue(t, w.tenant, tenantClaims)
	parts := strings.Split(valid, ".")
	issueAt := func(at time.Time) string {
		i := *w.tenant
		i.Now = func() time.Time { return at }
		return MustIssue(t, &i, tenantClaims)
	}
	k := w.tenant.Keys[0]
	for _, tt := range []struct {
		name, token string
		permanent   bool
	}{
		{"Garbage", "not a token", true},
		{"TwoParts", parts[0] + "." + parts[1], true},
		{"BadSignature", parts[0] + "." + parts[1] + "." + enc(make([]byte, ed25519.SignatureSize)), true},
		{"Expired", issueAt(now.Add(-time.Hour)), true},
		{"NotYetValid", issueAt(now.Add(10 * time.Minute)), false},
		{"UnknownKid", signRaw(MustSigningKey(t), header(MustSigningKey(t)), tenantPayload(`,"tenant_id":"`+string(tenantA)+`"`)), false},
		{"UntrustedIssuer", MustIssue(t, w.other, tenantClaims), false},
		{"KnownKidOtherKey", signRaw(MustSigningKey(t), header(k), tenantPayload(`,"tenant_id":"`+string(tenantA)+`"`)), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tt.token)
			if err == nil {
				t.Fatal("Verify accepted it")
			}
			if got := identity.Permanent(err); got != tt.permanent {
				t.Fatalf("Permanent(%v) = %v, want %v", err, got, tt.permanent)
			}
		})
	}
	if _, err := v.Verify(t.Context(), valid); err != nil || identity.Permanent(err) {
		t.Fatalf("a valid token: %v, Permanent %v", err, identity.Permanent(err))
	}
	if identity.Permanent(errors.New("token signature is invalid")) || identity.Permanent(context.Canceled) {
		t.Fatal("an error that is not ErrInvalidToken counted as permanent")
	}
}

// TestVerifyMaxLifetime: a built-in trust with MaxLifetime refuses a token
// that lives longer, however well signed; zero keeps MaxTTL.
func TestVerifyMaxLifetime(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	long := *w.tenant
	long.TTL = time.Hour
	short := *w.tenant
	short.TTL = 10 * time.Minute
	limited := w.tenant.Trust()
	limited.MaxLifetime = 10*time.Minute + time.Second
	v := &identity.Verifier{Trusted: []identity.Trust{limited}, Now: clock}
	if _, err := v.Verify(t.Context(), MustIssue(t, &short, tenantClaims)); err != nil {
		t.Fatalf("a token of the trust's lifetime: %v", err)
	}
	if _, err := v.Verify(t.Context(), MustIssue(t, &long, tenantClaims)); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("a token living longer than MaxLifetime: %v; want ErrInvalidToken", err)
	}
	if _, err := verifier(t, w.tenant).Verify(t.Context(), MustIssue(t, &long, tenantClaims)); err != nil {
		t.Fatalf("a token of an hour with no MaxLifetime: %v", err)
	}
}
