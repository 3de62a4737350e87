package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// MaxPasswordLen is the longest password, in bytes, that is hashed or
// checked. Longer input is refused before any work is done.
const MaxPasswordLen = 1024

// Params are argon2id parameters.
type Params struct {
	Memory  uint32 // KiB; at least 8 per thread
	Time    uint32 // passes over memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes of random salt
	KeyLen  uint32 // bytes of derived key
}

// Limits on parameters, for new hashes and for stored ones alike: a stored
// hash cannot make a check allocate more than maxMemory KiB or run more than
// maxTime passes.
const (
	maxMemory  = 1 << 20 // 1 GiB
	maxTime    = 16
	maxThreads = 16
	minSalt    = 8
	maxSalt    = 64
	minKey     = 16
	maxKey     = 64
)

// DefaultParams returns the OWASP-recommended argon2id parameters (19 MiB,
// two passes, one lane), with a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

func (p Params) validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("argon2id threads %d outside 1..%d", p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("argon2id memory %d KiB outside %d..%d", p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("argon2id time %d outside 1..%d", p.Time, maxTime)
	case p.SaltLen < minSalt || p.SaltLen > maxSalt:
		return fmt.Errorf("argon2id salt length %d outside %d..%d", p.SaltLen, minSalt, maxSalt)
	case p.KeyLen < minKey || p.KeyLen > maxKey:
		return fmt.Errorf("argon2id key length %d outside %d..%d", p.KeyLen, minKey, maxKey)
	}
	return nil
}

// HashPassword hashes pw with [DefaultParams] and a random salt, and returns
// the PHC string. It does not bound concurrency; servers use [Hasher].
func HashPassword(pw string) (string, error) {
	return hashPassword(DefaultParams(), rand.Reader, pw)
}

// CheckPassword reports whether pw matches the PHC string hash, comparing in
// constant time. It returns [ErrInvalidPassword] for an empty or overlong pw
// and [ErrInvalidHash] for a malformed hash. It does not bound concurrency;
// servers use [Hasher].
func CheckPassword(hash, pw string) (bool, error) {
	if err := checkPasswordLen(pw); err != nil {
		return false, err
	}
	return checkPassword(hash, pw)
}

// DummyCheck spends the work of checking pw against a hash made with
// [DefaultParams], and always reports false. Call it when the user does not
// exist, so that the answer and its timing are those of a wrong password.
func DummyCheck(pw string) {
	_, _ = checkPassword(dummyHash(DefaultParams()), pw)
}

func checkPasswordLen(pw string) error {
	if pw == "" || len(pw) > MaxPasswordLen {
		return fail(ErrInvalidPassword, "identity.password", fmt.Errorf("password of %d bytes", len(pw)))
	}
	return nil
}

func hashPassword(p Params, r io.Reader, pw string) (string, error) {
	if err := checkPasswordLen(pw); err != nil {
		return "", err
	}
	if err := p.validate(); err != nil {
		return "", fail(ErrHasherConfig, "identity.HashPassword", err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", internal("identity.HashPassword", fmt.Errorf("reading salt: %w", err))
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodePHC(p, salt, key), nil
}

func checkPassword(hash, pw string) (bool, error) {
	p, salt, want, err := decodePHC(hash)
	if err != nil {
		return false, fail(ErrInvalidHash, "identity.CheckPassword", err)
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash returns a well-formed hash with parameters p that no password
// matches in practice: its salt and key are zero.
func dummyHash(p Params) string {
	return encodePHC(p, make([]byte, p.SaltLen), make([]byte, p.KeyLen))
}

var b64 = base64.RawStdEncoding.Strict()

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decodePHC parses "$argon2id$v=19$m=M,t=T,p=P$salt$key" strictly: fields in
// that order, canonical decimal numbers, unpadded standard base64.
func decodePHC(s string) (Params, []byte, []byte, error) {
	var p Params
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return p, nil, nil, errors.New("not an argon2id PHC string")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errors.New("unsupported argon2 version")
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return p, nil, nil, errors.New("malformed argon2id parameters")
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(ps[i], name)
		if !ok {
			return p, nil, nil, errors.New("malformed argon2id parameters")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || strconv.FormatUint(n, 10) != v {
			return p, nil, nil, errors.New("malformed argon2id parameter value")
		}
		vals[i] = n
	}
	if vals[2] > maxThreads {
		return p, nil, nil, errors.New("argon2id threads out of range")
	}
	salt, err := b64.DecodeString(f[4])
	if err != nil {
		return p, nil, nil, errors.New("malformed argon2id salt")
	}
	key, err := b64.DecodeString(f[5])
	if err != nil {
		return p, nil, nil, errors.New("malformed argon2id key")
	}
	p = Params{
		Memory:  uint32(vals[0]),
		Time:    uint32(vals[1]),
		Threads: uint8(vals[2]),
		SaltLen: uint32(len(salt)),
		KeyLen:  uint32(len(key)),
	}
	if err := p.validate(); err != nil {
		return Params{}, nil, nil, err
	}
	return p, salt, key, nil
}

// Hasher hashes and checks passwords with at most MaxConcurrent hashes in
// flight, so that a flood of logins cannot exhaust memory (each argon2id
// computation allocates Params.Memory KiB) nor take every CPU from the
// rest of the process: by default half the CPUs at most. Callers beyond
// the limit wait for a slot until their context ends.
//
// A Hasher must not be copied after first use, and its fields must not
// change after first use.
type Hasher struct {
	Params        Params    // for new hashes and dummy checks; zero means DefaultParams()
	MaxConcurrent int       // hashes in flight; zero or less means GOMAXPROCS/2, at least 1
	Rand          io.Reader // salt source; nil means crypto/rand.Reader
	// Deriver computes the argon2id keys; nil means in this process, on
	// the calling goroutine. A server gives it a [hashproc.Process], so
	// that password work runs in a child process at a lower CPU priority,
	// out of the server's scheduler and heap. Salts, the PHC strings and
	// the constant-time comparison stay here either way. A slot is held
	// until DeriveKey returns; a Deriver that returns early when its
	// caller's context ends bounds the work it leaves running itself
	// (hashproc's child runs at most GOMAXPROCS at once, and skips work
	// whose caller has stopped waiting).
	Deriver KeyDeriver

	once  sync.Once
	slots chan struct{}
	p     Params
	err   error
}

func (h *Hasher) init() {
	h.once.Do(func() {
		h.p = h.Params
		if h.p == (Params{}) {
			h.p = DefaultParams()
		}
		h.err = h.p.validate()
		n := h.MaxConcurrent
		if n <= 0 {
			n = max(1, runtime.GOMAXPROCS(0)/2)
		}
		h.slots = make(chan struct{}, n)
	})
}

// KeyDeriver computes argon2id keys for a [Hasher].
type KeyDeriver interface {
	// DeriveKey returns argon2id(password, salt) with p's Memory, Time,
	// Threads and KeyLen (p's SaltLen is len(salt)). It may return early
	// with an error when ctx ends.
	DeriveKey(ctx context.Context, password, salt []byte, p Params) ([]byte, error)
}

// DeriveKey is the in-process derivation: argon2id(password, salt) with
// p's parameters, after checking them against this package's limits. A
// [KeyDeriver] in another process calls it on its side.
func DeriveKey(password, salt []byte, p Params) ([]byte, error) {
	if err := checkPasswordLen(string(password)); err != nil {
		return nil, err
	}
	p.SaltLen = uint32(len(salt))
	if err := p.validate(); err != nil {
		return nil, fail(ErrHasherConfig, "identity.DeriveKey", err)
	}
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

// derive computes the key with h.Deriver, or here when there is none.
func (h *Hasher) derive(ctx context.Context, pw string, salt []byte, p Params) ([]byte, error) {
	if h.Deriver == nil {
		return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
	}
	key, err := h.Deriver.DeriveKey(ctx, []byte(pw), salt, p)
	if err != nil {
		return nil, err
	}
	if uint32(len(key)) != p.KeyLen {
		return nil, internal("identity.Hasher", fmt.Errorf("deriver returned a key of %d bytes, not %d", len(key), p.KeyLen))
	}
	return key, nil
}

// acquire takes a slot, waiting until one is free or ctx ends.
func (h *Hasher) acquire(ctx context.Context, op string) (release func(), err error) {
	if ctx.Err() != nil {
		return nil, canceled(ctx, op)
	}
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	case <-ctx.Done():
		return nil, canceled(ctx, op)
	}
}

// Hash hashes pw with h.Params and a fresh salt, and returns the PHC string.
// It waits for a slot and returns [ErrCanceled] if ctx ends first, and
// [ErrInvalidPassword] for an empty or overlong pw.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	h.init()
	if err := checkPasswordLen(pw); err != nil {
		return "", err
	}
	if h.err != nil {
		return "", fail(ErrHasherConfig, "identity.Hasher.Hash", h.err)
	}
	release, err := h.acquire(ctx, "identity.Hasher.Hash")
	if err != nil {
		return "", err
	}
	defer release()
	r := h.Rand
	if r == nil {
		r = rand.Reader
	}
	salt := make([]byte, h.p.SaltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", internal("identity.Hasher.Hash", fmt.Errorf("reading salt: %w", err))
	}
	key, err := h.derive(ctx, pw, salt, h.p)
	if err != nil {
		return "", err
	}
	return encodePHC(h.p, salt, key), nil
}

// Check reports whether pw matches the PHC string hash, in constant time.
//
// An empty hash stands for a user that does not exist: Check then spends the
// work of a real check (with h.Params) and reports false, so a login handler
// can call Check the same way whether or not it found the user, and answer
// every failure alike.
//
// Check waits for a slot and returns [ErrCanceled] if ctx ends first. It
// returns [ErrInvalidPassword] for an empty or overlong pw and
// [ErrInvalidHash] for a malformed hash.
func (h *Hasher) Check(ctx context.Context, hash, pw string) (bool, error) {
	h.init()
	if err := checkPasswordLen(pw); err != nil {
		return false, err
	}
	dummy := hash == ""
	if dummy {
		if h.err != nil {
			return false, fail(ErrHasherConfig, "identity.Hasher.Check", h.err)
		}
		hash = dummyHash(h.p)
	}
	p, salt, want, err := decodePHC(hash)
	if err != nil {
		return false, fail(ErrInvalidHash, "identity.Hasher.Check", err)
	}
	release, err := h.acquire(ctx, "identity.Hasher.Check")
	if err != nil {
		return false, err
	}
	defer release()
	got, err := h.derive(ctx, pw, salt, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1 && !dummy, nil
}

// DummyCheck spends the work of checking pw against a hash made with
// h.Params, within the concurrency limit, and reports nothing: it is
// [Hasher.Check] with an empty hash, for callers that branch on the user's
// existence themselves.
func (h *Hasher) DummyCheck(ctx context.Context, pw string) error {
	_, err := h.Check(ctx, "", pw)
	return err
}

// NeedsRehash reports whether hash was made with parameters other than
// h.Params, so that a login handler can re-hash the password it has just
// checked. A malformed hash needs rehashing.
func (h *Hasher) NeedsRehash(hash string) bool {
	h.init()
	p, _, _, err := decodePHC(hash)
	return err != nil || p != h.p
}
