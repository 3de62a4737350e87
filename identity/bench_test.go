package identity_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
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
