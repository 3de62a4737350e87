package bulkhead_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// authEnv is a minter with an Auth, one tenant and one user of it, on a
// database of its own (a test may rotate and retire keys).
type authEnv struct {
	db     *bulkhead.DB
	auth   *bulkhead.Auth
	tenant *tenant.Tenant
	user   *postgres.User
}

func newAuthEnv(t *testing.T, cfg bulkhead.AuthConfig) authEnv {
	t.Helper()
	ctx := context.Background()
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: pgtest.NewDB(t).AdminURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	auth, err := db.NewAuth(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	tn, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: "keys", Tier: tenant.Pool})
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.Postgres().CreateUser(ctx, tn.ID, "keys@example.test", "x", tenant.Member)
	if err != nil {
		t.Fatal(err)
	}
	return authEnv{db, auth, tn, u}
}

// TestRetiredKeyNotCached: tokens verified while their key is being
// retired must not stay in the verified cache. Each round issues tokens,
// verifies them from two goroutines while the tenant-token key is rotated
// with no grace (the older key retires at once), then verifies them all
// again: none may pass. A verification that began with the old key set
// used to store its token after the rotation had emptied the cache, and
// then every later request hit the cache and never looked at the keys.
func TestRetiredKeyNotCached(t *testing.T) {
	env := newAuthEnv(t, bulkhead.AuthConfig{})
	ctx := context.Background()
	const n = 4000
	for round := range 10 {
		toks := make([]string, n)
		for i := range toks {
			tok, _, err := env.auth.IssueUserToken(ctx, env.user, env.tenant)
			if err != nil {
				t.Fatal(err)
			}
			toks[i] = tok
		}
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Go(func() {
				for i := g; i < n; i += 2 {
					env.auth.Verify(ctx, toks[i]) // either answer is right while the key retires
				}
			})
		}
		if _, err := env.db.Postgres().RotateKey(ctx, postgres.KeyJWT, 0); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		passed := 0
		for _, tok := range toks {
			if _, err := env.auth.Verify(ctx, tok); err == nil {
				passed++
			}
		}
		if passed > 0 {
			t.Fatalf("round %d: %d of %d tokens signed by a retired key still verify", round, passed, n)
		}
	}
}

// TestRetiredSignerOtherPurpose: retiring one purpose's only signing key
// stops only that purpose's issuing. The other purpose's tokens still
// verify and are still issued; issuing for the retired purpose fails with
// no_signing_key; and its tokens stop verifying.
func TestRetiredSignerOtherPurpose(t *testing.T) {
	env := newAuthEnv(t, bulkhead.AuthConfig{})
	ctx := context.Background()
	pg := env.db.Postgres()
	retireSigner := func(purpose postgres.KeyPurpose) {
		t.Helper()
		k, err := pg.SigningKey(ctx, purpose)
		if err != nil {
			t.Fatal(err)
		}
		if err := pg.RetireKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
	}
	userTok, _, err := env.auth.IssueUserToken(ctx, env.user, env.tenant)
	if err != nil {
		t.Fatal(err)
	}
	adminTok, _, err := env.auth.IssueAdminToken(ctx, "ops", 0)
	if err != nil {
		t.Fatal(err)
	}

	retireSigner(postgres.KeyAdminJWT)
	if p, err := env.auth.Verify(ctx, userTok); err != nil || p.TenantID != env.tenant.ID {
		t.Fatalf("tenant token with the admin signer retired: %+v, %v", p, err)
	}
	if _, _, err := env.auth.IssueUserToken(ctx, env.user, env.tenant); err != nil {
		t.Fatalf("issuing a tenant token with the admin signer retired: %v", err)
	}
	if _, _, err := env.auth.IssueAdminToken(ctx, "ops", 0); fault.CodeOf(err) != "no_signing_key" {
		t.Fatalf("issuing an admin token without its signer: %v; want no_signing_key", err)
	}
	if _, err := env.auth.Verify(ctx, adminTok); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("admin token under a retired key: %v; want invalid_token", err)
	}
	if _, err := env.auth.JWKS(ctx); err != nil {
		t.Fatalf("JWKS with the admin signer retired: %v", err)
	}

	// And the other way round.
	if _, err := pg.RotateKey(ctx, postgres.KeyAdminJWT, 0); err != nil {
		t.Fatal(err)
	}
	adminTok, _, err = env.auth.IssueAdminToken(ctx, "ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	retireSigner(postgres.KeyJWT)
	if p, err := env.auth.Verify(ctx, adminTok); err != nil || !p.Platform {
		t.Fatalf("admin token with the tenant signer retired: %+v, %v", p, err)
	}
	if _, _, err := env.auth.IssueAdminToken(ctx, "ops", 0); err != nil {
		t.Fatalf("issuing an admin token with the tenant signer retired: %v", err)
	}
	if _, _, err := env.auth.IssueUserToken(ctx, env.user, env.tenant); fault.CodeOf(err) != "no_signing_key" {
		t.Fatalf("issuing a tenant token without its signer: %v; want no_signing_key", err)
	}
	if _, err := env.auth.Verify(ctx, userTok); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("tenant token under a retired key: %v; want invalid_token", err)
	}

	// With no key of either purpose left, bulkhead's tokens are invalid
	// (not a server error), and a new signer makes issuing work again.
	retireSigner(postgres.KeyAdminJWT)
	if _, err := env.auth.Verify(ctx, adminTok); !errors.Is(err, identity.ErrInvalidToken) {
		t.Fatalf("admin token with no key left: %v; want invalid_token", err)
	}
	if _, err := pg.RotateKey(ctx, postgres.KeyJWT, 0); err != nil {
		t.Fatal(err)
	}
	tok, _, err := env.auth.IssueUserToken(ctx, env.user, env.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.auth.Verify(ctx, tok); err != nil {
		t.Fatalf("a token of the new signer: %v", err)
	}
}

// TestTokenLongerThanTTLRefused: a tenant token signed with bulkhead's own
// key but for longer than AuthConfig.TokenTTL (up to identity.MaxTTL) is
// refused; one of the configured lifetime passes.
func TestTokenLongerThanTTLRefused(t *testing.T) {
	env := newAuthEnv(t, bulkhead.AuthConfig{TokenTTL: 10 * time.Minute})
	ctx := context.Background()
	k, err := env.db.Postgres().SigningKey(ctx, postgres.KeyJWT)
	if err != nil {
		t.Fatal(err)
	}
	key := identity.SigningKey{ID: k.ID, Private: ed25519.NewKeyFromSeed(k.Secret[:ed25519.SeedSize])}
	claims := identity.Claims{Subject: env.user.ID, TenantID: env.tenant.ID, Role: env.user.Role}
	for _, tt := range []struct {
		ttl  time.Duration
		pass bool
	}{
		{10 * time.Minute, true},
		{10*time.Minute + 2*time.Second, false},
		{identity.MaxTTL, false},
	} {
		iss := identity.Issuer{Issuer: bulkhead.TokenIssuer, Audience: bulkhead.TokenAudience, Keys: []identity.SigningKey{key}, TTL: tt.ttl}
		tok, _, err := iss.Issue(claims)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.auth.Verify(ctx, tok); (err == nil) != tt.pass {
			t.Fatalf("a token living %v: %v; want pass %t", tt.ttl, err, tt.pass)
		}
	}
}
