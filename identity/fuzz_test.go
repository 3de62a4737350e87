package identity_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// FuzzVerify checks that no input panics, that every failure is the one
// generic error with a zero principal, and that the only tokens accepted are
// the ones the test's issuers signed: mutating a token never yields another
// valid one.
func FuzzVerify(f *testing.F) {
	w := newWorld(f)
	v := verifier(f, w.tenant, w.admin)
	k := w.tenant.Keys[0]
	issued := map[string]tenant.Principal{}
	for _, tok := range []string{
		MustIssue(f, w.tenant, tenantClaims),
		MustIssue(f, w.admin, identity.Claims{Subject: "ops-1", Platform: true}),
		signRaw(k, header(k), tenantPayload(`,"tenant_id":"acme"`)),
		signRaw(k, header(k), tenantPayload(`,"tenant_id":"`+string(tenantA)+`","app":{"x":[1,{"y":null}]}`)),
	} {
		p, err := v.Verify(f.Context(), tok)
		if err != nil {
			f.Fatalf("Verify(seed) = %v", err)
		}
		issued[tok] = p
		f.Add(tok)
		parts := strings.Split(tok, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + "." + parts[1])
		f.Add(strings.ToUpper(tok))
	}
	for _, s := range []string{
		"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
		signRaw(k, header(k), tenantPayload(`,"tenant_id":"acme","TENANT_ID":"beta"`)),
		signRaw(k, header(k), tenantPayload(`,"tenant_id":"acme","tenant_id":"beta"`)),
		signRaw(k, `{"alg":"EdDSA","kid":"`+k.ID+`","jku":"https://x"}`, tenantPayload("")),
		signRaw(k, header(k), `{"a":`+strings.Repeat("[", 100)),
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(t.Context(), token)
		if err == nil {
			want, ok := issued[token]
			if !ok {
				t.Fatalf("Verify(%q) accepted a token no issuer signed: %+v", token, p)
			}
			if p != want {
				t.Fatalf("Verify(%q) = %+v, want %+v", token, p, want)
			}
			return
		}
		if p != (tenant.Principal{}) {
			t.Fatalf("Verify(%q) = %+v with error %v", token, p, err)
		}
		if !errors.Is(err, identity.ErrInvalidToken) || fault.MessageOf(err) != identity.ErrInvalidToken.Message {
			t.Fatalf("Verify(%q) error = %v, want ErrInvalidToken", token, err)
		}
	})
}
