package identity_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// now is the fixed clock of every token test.
var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func clock() time.Time { return now }

const (
	tenantA   = tenant.ID("0b6f1c3e-8a51-4d6a-9d8e-2f5b7c1a9e40")
	tenantB   = tenant.ID("7d2c9a14-3e6b-4f80-b1c5-9a8e7f6d5c4b")
	tenantIss = "https://auth.bulkhead.test"
	tenantAud = "bulkhead"
	adminIss  = "https://auth.bulkhead.test/admin"
	adminAud  = "bulkhead-admin"
)

// MustSigningKey returns a fresh Ed25519 signing key.
func MustSigningKey(tb testing.TB) identity.SigningKey {
	tb.Helper()
	k, err := identity.NewSigningKey(nil)
	if err != nil {
		tb.Fatalf("NewSigningKey(nil) = %v", err)
	}
	return k
}

// world holds a tenant issuer, a platform issuer and a second, unrelated
// tenant issuer, each with its own key.
type world struct {
	tenant *identity.Issuer
	admin  *identity.Issuer
	other  *identity.Issuer
}

func newWorld(tb testing.TB) *world {
	tb.Helper()
	return &world{
		tenant: &identity.Issuer{Issuer: tenantIss, Audience: tenantAud, Keys: []identity.SigningKey{MustSigningKey(tb)}, Now: clock},
		admin:  &identity.Issuer{Issuer: adminIss, Audience: adminAud, Keys: []identity.SigningKey{MustSigningKey(tb)}, Platform: true, Now: clock},
		other:  &identity.Issuer{Issuer: "https://other.test", Audience: "other", Keys: []identity.SigningKey{MustSigningKey(tb)}, Now: clock},
	}
}

// verifier returns a verifier that trusts the given issuers.
func verifier(tb testing.TB, issuers ...*identity.Issuer) *identity.Verifier {
	tb.Helper()
	v := &identity.Verifier{Now: clock}
	for _, i := range issuers {
		v.Trusted = append(v.Trusted, i.Trust())
	}
	if err := v.Validate(); err != nil {
		tb.Fatalf("Validate() = %v", err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

var tenantClaims = identity.Claims{
	Subject:  "user-1",
	Email:    "ann@example.com",
	Tenant:   "acme",
	TenantID: tenantA,
	Role:     tenant.Admin,
}

// MustIssue issues a token or fails the test.
func MustIssue(tb testing.TB, i *identity.Issuer, c identity.Claims) string {
	tb.Helper()
	tok, _, err := i.Issue(c)
	if err != nil {
		tb.Fatalf("Issue(%+v) = %v", c, err)
	}
	return tok
}

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signRaw builds a compact JWS from literal header and payload JSON and signs
// it with k, so that tests can send exactly the bytes they mean.
func signRaw(k identity.SigningKey, header, payload string) string {
	in := enc([]byte(header)) + "." + enc([]byte(payload))
	return in + "." + enc(ed25519.Sign(k.Private, []byte(in)))
}

// header returns the JSON header of an EdDSA token signed by k.
func header(k identity.SigningKey) string {
	return `{"alg":"EdDSA","kid":"` + k.ID + `","typ":"JWT"}`
}

// tenantPayload returns a valid payload for the tenant issuer at now, with
// extra JSON members (each starting with a comma) spliced in before the end.
func tenantPayload(extra string) string {
	return `{"iss":"` + tenantIss + `","aud":"` + tenantAud + `","sub":"user-1",` +
		`"iat":` + unix(now) + `,"nbf":` + unix(now) + `,"exp":` + unix(now.Add(10*time.Minute)) +
		`,"role":"member"` + extra + `}`
}

func unix(t time.Time) string {
	b, _ := json.Marshal(t.Unix())
	return string(b)
}

// wantInvalidToken fails unless err is the one generic verification error.
func wantInvalidToken(tb testing.TB, p tenant.Principal, err error) {
	tb.Helper()
	if !errors.Is(err, identity.ErrInvalidToken) {
		tb.Fatalf("Verify() error = %v, want ErrInvalidToken", err)
	}
	if got, want := fault.MessageOf(err), identity.ErrInvalidToken.Message; got != want {
		tb.Errorf("MessageOf(err) = %q, want %q", got, want)
	}
	if got := fault.KindOf(err); got != fault.Unauthenticated {
		tb.Errorf("KindOf(err) = %v, want %v", got, fault.Unauthenticated)
	}
	var fe *fault.Error
	if errors.As(err, &fe) && fe.Err == nil {
		tb.Errorf("Verify() error %v has no cause for the logs", err)
	}
	tb.Logf("cause: %v", err)
	if p != (tenant.Principal{}) {
		tb.Errorf("Verify() principal = %+v with an error, want zero", p)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
