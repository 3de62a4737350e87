package lambda

import (
	"regexp"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/ctxtoken"
)

// FuzzDecodeClaims checks that the adapter's form check accepts exactly
// the tokens ctxtoken.Pattern accepts, and that decoding never panics.
func FuzzDecodeClaims(f *testing.F) {
	pattern := regexp.MustCompile(ctxtoken.Pattern)
	secret := []byte(strings.Repeat("k", 32))
	tok, err := ctxtoken.Mint(ctxtoken.Key{ID: "kid_1", Secret: secret}, ctxtoken.Claims{
		Tenant: "acme", TenantID: "6f1d3c1e-9a55-4a8e-b7a4-1f2f3e4d5c6b", Subject: "u", Role: "member",
		IssuedAt: 1, ExpiresAt: 2, Audience: "bulkhead_fn_x",
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{tok, "", "v1.", "v1..x." + strings.Repeat("a", 43), "v1.k.p." + strings.Repeat("a", 44),
		"v1.k.p.q." + strings.Repeat("a", 43), "v2.k.p." + strings.Repeat("a", 43), "v1." + strings.Repeat("k", 33) + ".p." + strings.Repeat("a", 43),
		"v1.k.p+." + strings.Repeat("a", 43), tok + "\n", "v1.k.e30." + strings.Repeat("a", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) <= ctxtoken.MaxLen && pattern.MatchString(s)
		if got := wellFormed(s); got != want {
			t.Fatalf("wellFormed(%q) = %v, pattern says %v", s, got, want)
		}
		if _, err := decodeClaims(s); err == nil && !want {
			t.Fatalf("decodeClaims(%q) accepted a malformed token", s)
		}
	})
}

func TestDecodeClaims(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	in := ctxtoken.Claims{Tenant: "acme", TenantID: "6f1d3c1e-9a55-4a8e-b7a4-1f2f3e4d5c6b", Subject: "u", Role: "member",
		Scope: []string{"select"}, IssuedAt: 1, ExpiresAt: 2, Audience: "bulkhead_fn_x", RequestID: "r"}
	tok, err := ctxtoken.Mint(ctxtoken.Key{ID: "kid_1", Secret: secret}, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeClaims(tok)
	if err != nil || got.TenantID != in.TenantID || got.Audience != in.Audience || got.ExpiresAt != 2 || got.Subject != "u" {
		t.Fatalf("decodeClaims = %+v, %v", got, err)
	}
	for _, bad := range []string{"v1.k.bm90IGpzb24." + strings.Repeat("a", 43), "v1.k.W10." + strings.Repeat("a", 43)} {
		if _, err := decodeClaims(bad); err == nil {
			t.Errorf("decodeClaims(%q) accepted a payload that is not a claims object", bad)
		}
	}
}
