package identity

import (
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestVerifyCacheRemembers: with CacheSize, a verified token is
// remembered and served again; a built-in key's retirement ends it at
// once, and the refusal forgets it. Without CacheSize nothing is kept.
func TestVerifyCacheRemembers(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return at }
	k, err := NewSigningKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{Issuer: "https://auth.test", Audience: "api", Keys: []SigningKey{k}, Now: clock}
	tok, _, err := iss.Issue(Claims{Subject: "u-1", Tenant: "acme", TenantID: tenant.ID("0b6f1c3e-8a51-4d6a-9d8e-2f5b7c1a9e40"), Role: tenant.Member})
	if err != nil {
		t.Fatal(err)
	}
	tr := iss.Trust()
	tr.Keys[0].NotAfter = at.Add(time.Minute)
	for _, size := range []int{0, 4} {
		v := &Verifier{Trusted: []Trust{tr}, Now: clock, CacheSize: size}
		for range 2 {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("CacheSize %d: Verify() = %v", size, err)
			}
		}
		if n, want := v.state.cache.Len(), min(size, 1); n != want || v.Remembers(tok) != (want == 1) {
			t.Fatalf("CacheSize %d: %d tokens remembered (Remembers %v), want %d", size, n, v.Remembers(tok), want)
		}
		if v.Remembers(tok + "x") {
			t.Fatalf("CacheSize %d: Remembers a token it never saw", size)
		}
	}
	v := &Verifier{Trusted: []Trust{tr}, Now: clock, CacheSize: 4}
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	at = at.Add(2 * time.Minute) // the key retired; the token lives 15 minutes
	if _, err := v.Verify(t.Context(), tok); err == nil {
		t.Fatal("a remembered token verified after its key retired")
	}
	if n := v.state.cache.Len(); n != 0 {
		t.Fatalf("%d tokens remembered after the refusal, want 0", n)
	}
}
