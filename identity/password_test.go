package identity_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/identity"
)

// cheap are argon2id parameters fast enough for tests.
var cheap = identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$`)

func TestHashPassword(t *testing.T) {
	t.Parallel()
	hash, err := identity.HashPassword("correct horse")
	if err != nil {
		t.Fatalf("HashPassword() = %v", err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") || !phc.MatchString(hash) {
		t.Errorf("HashPassword() = %q, want a PHC string with the OWASP parameters", hash)
	}
	for _, tt := range []struct {
		name string
		pw   string
		want bool
	}{
		{"Right", "correct horse", true},
		{"Wrong", "correct horsf", false},
		{"Prefix", "correct hors", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := identity.CheckPassword(hash, tt.pw)
			if err != nil || got != tt.want {
				t.Errorf("CheckPassword(hash, %q) = %t, %v, want %t, nil", tt.pw, got, err, tt.want)
			}
		})
	}
	t.Run("DummyCheck", func(t *testing.T) {
		identity.DummyCheck("correct horse") // spends the work; must not panic
	})
}

func TestHasher(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := &identity.Hasher{Params: cheap}
	hash, err := h.Hash(ctx, "s3cret")
	if err != nil {
		t.Fatalf("Hash() = %v", err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") || !phc.MatchString(hash) {
		t.Fatalf("Hash() = %q, want a PHC string with m=64,t=1,p=1", hash)
	}
	again, _ := h.Hash(ctx, "s3cret")
	if again == hash {
		t.Errorf("Hash() twice gave the same string; the salt is not random")
	}

	for _, tt := range []struct {
		name    string
		hash    string
		pw      string
		want    bool
		wantErr error
	}{
		{name: "Right", hash: hash, pw: "s3cret", want: true},
		{name: "Wrong", hash: hash, pw: "s3cret!"},
		{name: "UnknownUser", hash: "", pw: "s3cret"},
		{name: "MaxLength", hash: hash, pw: strings.Repeat("x", identity.MaxPasswordLen)},
		{name: "Empty", hash: hash, pw: "", wantErr: identity.ErrInvalidPassword},
		{name: "TooLong", hash: hash, pw: strings.Repeat("x", identity.MaxPasswordLen+1), wantErr: identity.ErrInvalidPassword},
		{name: "UnknownUserTooLong", hash: "", pw: strings.Repeat("x", identity.MaxPasswordLen+1), wantErr: identity.ErrInvalidPassword},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Check(ctx, tt.hash, tt.pw)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Check(%.20q, %.10q) = %t, %v, want %t, %v", tt.hash, tt.pw, got, err, tt.want, tt.wantErr)
			}
		})
	}

	t.Run("DummyCheck", func(t *testing.T) {
		if err := h.DummyCheck(ctx, "anything"); err != nil {
			t.Errorf("DummyCheck() = %v", err)
		}
	})
	t.Run("NeedsRehash", func(t *testing.T) {
		if h.NeedsRehash(hash) {
			t.Errorf("NeedsRehash(own hash) = true")
		}
		stronger := &identity.Hasher{Params: identity.Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
		if !stronger.NeedsRehash(hash) {
			t.Errorf("NeedsRehash(weaker hash) = false")
		}
	})
	t.Run("RejectEmptyHashInput", func(t *testing.T) {
		if _, err := h.Hash(ctx, ""); !errors.Is(err, identity.ErrInvalidPassword) {
			t.Errorf("Hash(\"\") = %v, want ErrInvalidPassword", err)
		}
	})
}

func TestCheckPasswordMalformedHash(t *testing.T) {
	t.Parallel()
	const salt, key = "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, tt := range []struct{ name, hash string }{
		{"Empty", "bogus"},
		{"Bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"Argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"OldVersion", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"NoVersion", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"ParamOrder", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"LeadingZero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"PlusSign", "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key},
		{"HugeMemory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"HugeTime", "$argon2id$v=19$m=64,t=1000000,p=1$" + salt + "$" + key},
		{"ZeroThreads", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"ManyThreads", "$argon2id$v=19$m=8192,t=1,p=255$" + salt + "$" + key},
		{"MemoryBelowThreads", "$argon2id$v=19$m=8,t=1,p=2$" + salt + "$" + key},
		{"ShortSalt", "$argon2id$v=19$m=64,t=1,p=1$AAAA$" + key},
		{"ShortKey", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAA"},
		{"PaddedSalt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"URLBase64", "$argon2id$v=19$m=64,t=1,p=1$" + salt[:20] + "_-$" + key},
		{"ExtraField", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := identity.CheckPassword(tt.hash, "pw")
			if ok || !errors.Is(err, identity.ErrInvalidHash) {
				t.Errorf("CheckPassword(%q) = %t, %v, want false, ErrInvalidHash", tt.hash, ok, err)
			}
		})
	}
}

// gate is a salt source that blocks: each Read announces itself on entered
// and waits for release, holding the Hasher slot its caller took.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Read(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.release
	for i := range p {
		p[i] = 7
	}
	return len(p), nil
}

func TestHasherBoundsConcurrency(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	hash, err := (&identity.Hasher{Params: cheap}).Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	h := &identity.Hasher{Params: cheap, MaxConcurrent: 2, Rand: g}

	// Fill both slots: each Hash takes a slot, then blocks reading its salt.
	var holders sync.WaitGroup
	for range 2 {
		holders.Go(func() {
			if _, err := h.Hash(ctx, "pw"); err != nil {
				t.Errorf("Hash() = %v", err)
			}
		})
	}
	<-g.entered
	<-g.entered

	t.Run("ThirdWaitsUntilCanceled", func(t *testing.T) {
		// The third caller can only be waiting: it returns when, and only
		// because, its context is canceled.
		waitCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := h.Check(waitCtx, hash, "pw")
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, identity.ErrCanceled) {
			t.Errorf("Check() with full slots and canceled ctx = %v, want ErrCanceled", err)
		}
	})
	t.Run("CanceledDummyGetsNoSlot", func(t *testing.T) {
		waitCtx, cancel := context.WithCancel(ctx)
		cancel()
		if err := h.DummyCheck(waitCtx, "pw"); !errors.Is(err, identity.ErrCanceled) {
			t.Errorf("DummyCheck() with full slots = %v, want ErrCanceled", err)
		}
	})

	close(g.release)
	holders.Wait()

	t.Run("FreedSlotServes", func(t *testing.T) {
		ok, err := h.Check(ctx, hash, "pw")
		if !ok || err != nil {
			t.Errorf("Check() after release = %t, %v, want true, nil", ok, err)
		}
	})
}

// deriver is a KeyDeriver that returns what it is told to.
type deriver struct {
	key   []byte
	err   error
	calls int
}

func (d *deriver) DeriveKey(ctx context.Context, pw, salt []byte, p identity.Params) ([]byte, error) {
	d.calls++
	if d.err != nil {
		return nil, d.err
	}
	if d.key != nil {
		return d.key, nil
	}
	return identity.DeriveKey(pw, salt, p)
}

// TestHasherDeriver: a Hasher uses its Deriver for hashes, checks and
// dummy checks alike (an unknown user costs the same work wherever it
// runs), passes its errors on, and refuses a key of the wrong length
// rather than comparing it.
func TestHasherDeriver(t *testing.T) {
	ctx := context.Background()
	d := &deriver{}
	h := &identity.Hasher{Params: cheap, Deriver: d}
	hash, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Check(ctx, hash, "pw"); !ok || err != nil {
		t.Fatalf("Check: %v, %v", ok, err)
	}
	if ok, err := identity.CheckPassword(hash, "pw"); !ok || err != nil {
		t.Fatalf("the deriver's hash does not check in process: %v, %v", ok, err)
	}
	if err := h.DummyCheck(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	if d.calls != 3 {
		t.Fatalf("the deriver ran %d times for a hash, a check and a dummy check", d.calls)
	}
	d.err = errors.New("child gone")
	if _, err := h.Check(ctx, hash, "pw"); !errors.Is(err, d.err) {
		t.Fatalf("deriver's error: %v", err)
	}
	d.err, d.key = nil, make([]byte, 16)
	if ok, err := h.Check(ctx, hash, "pw"); ok || err == nil {
		t.Fatalf("a 16-byte key for a 32-byte hash: %v, %v", ok, err)
	}
	if _, err := identity.DeriveKey([]byte("pw"), []byte("short"), cheap); !errors.Is(err, identity.ErrHasherConfig) {
		t.Fatalf("DeriveKey with a 5-byte salt: %v", err)
	}
}
