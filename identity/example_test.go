package identity_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// A tenant issuer and a platform issuer, each with its own key, and one
// verifier that trusts both.
func ExampleVerifier() {
	tenantKey, _ := identity.NewSigningKey(nil)
	adminKey, _ := identity.NewSigningKey(nil)
	tenants := &identity.Issuer{Issuer: "https://bulkhead.example.com", Audience: "bulkhead", Keys: []identity.SigningKey{tenantKey}}
	admins := &identity.Issuer{Issuer: "https://bulkhead.example.com/admin", Audience: "bulkhead-admin",
		Keys: []identity.SigningKey{adminKey}, Platform: true}
	v := &identity.Verifier{Trusted: []identity.Trust{tenants.Trust(), admins.Trust()}}
	defer v.Close()

	token, _, err := tenants.Issue(identity.Claims{
		Subject: "user-1", TenantID: "0b6f1c3e-8a51-4d6a-9d8e-2f5b7c1a9e40", Role: tenant.Member,
	})
	if err != nil {
		panic(err)
	}
	req, _ := http.NewRequest("GET", "/v1/things", nil)
	req.Header.Set("Authorization", "Bearer "+token)

	bearer, err := identity.ExtractBearer(req.Header)
	if err != nil {
		panic(err)
	}
	p, err := v.Verify(context.Background(), bearer)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Subject, p.TenantID, p.Role, p.Platform)
	// Output: user-1 0b6f1c3e-8a51-4d6a-9d8e-2f5b7c1a9e40 member false
}

// A login handler checks the password the same way whether or not the user
// exists, so that neither its answer nor its timing tells them apart.
func ExampleHasher_Check() {
	h := &identity.Hasher{Params: identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	ctx := context.Background()
	stored, _ := h.Hash(ctx, "correct horse")
	users := map[string]string{"ann": stored}

	login := func(user, pw string) bool {
		ok, err := h.Check(ctx, users[user], pw) // "" for an unknown user: same work, false
		return err == nil && ok
	}
	fmt.Println(login("ann", "correct horse"), login("ann", "wrong"), login("bob", "correct horse"))
	// Output: true false false
}
