package bulkhead_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestRejectedTokensRemembered: a token that fails for good (malformed, a
// signature that does not verify) is remembered and refused again without
// a signature check; one that could pass later (an unknown key) is not;
// and a valid token is untouched by either.
func TestRejectedTokensRemembered(t *testing.T) {
	// A database of its own, so that the test can run again (-count).
	databaseURL := pgtest.NewDB(t).AdminURL
	ctx := context.Background()
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: databaseURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	tn, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "rejects", Tier: tenant.Pool})
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.Postgres().CreateUser(ctx, tn.ID, "rejects@example.test", "x", tenant.Member)
	if err != nil {
		t.Fatal(err)
	}
	valid, _, err := auth.IssueUserToken(ctx, u, tn)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding.EncodeToString
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	unknownKid := func() string {
		in := enc([]byte(`{"alg":"EdDSA","kid":"not-a-kid-of-ours","typ":"JWT"}`)) + "." + parts[1]
		return in + "." + enc(ed25519.Sign(other, []byte(in)))
	}()
	for _, tt := range []struct {
		name, token string
		remembered  bool
	}{
		{"forged signature", parts[0] + "." + parts[1] + "." + enc(make([]byte, ed25519.SignatureSize)), true},
		{"signed with another key under our kid", parts[0] + "." + parts[1] + "." + enc(ed25519.Sign(other, []byte(parts[0]+"."+parts[1]))), true},
		{"malformed", "not.a.token", true},
		{"unknown kid", unknownKid, false},
	} {
		for try := 1; try <= 2; try++ {
			if _, err := auth.Verify(ctx, tt.token); !errors.Is(err, identity.ErrInvalidToken) {
				t.Fatalf("%s, try %d: %v; want invalid_token", tt.name, try, err)
			}
		}
		if got := bulkhead.Remembered(auth, tt.token); got != tt.remembered {
			t.Fatalf("%s: remembered %v, want %v", tt.name, got, tt.remembered)
		}
	}
	if p, err := auth.Verify(ctx, valid); err != nil || p.TenantID != tn.ID {
		t.Fatalf("the valid token after the rejects: %+v, %v", p, err)
	}
	if bulkhead.Remembered(auth, valid) {
		t.Fatal("the valid token is in the reject cache")
	}
}
