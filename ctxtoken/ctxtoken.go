// Package ctxtoken mints and verifies signed tenant contexts.
//
// A signed tenant context is the text
//
//	v1.<kid>.<payload>.<mac>
//
// where payload is the unpadded base64url encoding of a JSON object of
// [Claims], and mac is the unpadded base64url HMAC-SHA256, under the key
// named kid, of the exact ASCII text "v1.<kid>.<payload>". A trusted party
// (the gateway or an authorizer) mints it; business code carries it into a
// transaction as the transaction-local setting bulkhead.context; and
// PostgreSQL verifies it again, independently, in bulkhead.context() before
// any row policy trusts it. Verification in Go here is for the minter's own
// tests and for tools; isolation never rests on it.
//
// Isolation: the MAC covers the exact text, never decoded bytes, so there
// is one spelling of a valid token (PostgreSQL's base64 decoder skips
// whitespace, and a verifier that MACs decoded bytes accepts many). The form
// is checked with a strict pattern before anything is decoded.
package ctxtoken

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Prefix is the version tag every token starts with.
const Prefix = "v1"

// Pattern is the strict form of a token, shared with the SQL verifier,
// which also bounds the whole token to MaxLen bytes.
const Pattern = `^v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$`

// MaxLen bounds a token's length.
const MaxLen = 4096

var kidPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Claims is what a signed tenant context says. JSON names are the contract
// with the SQL verifier and with policies written against auth.jwt().
type Claims struct {
	Tenant    string   `json:"tenant"`    // the slug, for people and logs
	TenantID  string   `json:"tenant_id"` // the immutable UUID rows carry
	Subject   string   `json:"sub"`
	Role      string   `json:"role"`
	Scope     []string `json:"scope"` // commands the policy decision allows: select, insert, update, delete
	IssuedAt  int64    `json:"iat"`
	ExpiresAt int64    `json:"exp"`
	Audience  string   `json:"aud"` // the one database login role allowed to use it
	RequestID string   `json:"rid"`
}

// Key is one HMAC key.
type Key struct {
	ID       string
	Secret   []byte // at least 32 bytes
	NotAfter time.Time
}

// Errors returned by Verify. They say why, for logs and tests; callers that
// face a user must not pass the reason on.
var (
	ErrMalformed  = errors.New("ctxtoken: malformed token")
	ErrUnknownKey = errors.New("ctxtoken: unknown key id")
	ErrSignature  = errors.New("ctxtoken: bad signature")
	ErrExpired    = errors.New("ctxtoken: expired")
	ErrLifetime   = errors.New("ctxtoken: lifetime over the maximum")
	ErrFuture     = errors.New("ctxtoken: issued in the future")
	ErrKeyRetired = errors.New("ctxtoken: key past not_after")
	ErrAudience   = errors.New("ctxtoken: wrong audience")
)

// enc is base64url without padding, and strict when decoding: a last
// character whose spare bits are set is refused, not read as its canonical
// twin. Without that, a MAC had four spellings that all verified here,
// while PostgreSQL, which compares the MAC's text, accepts only Mint's.
var enc = base64.RawURLEncoding.Strict()

// futureSkew is how many seconds ahead of the verifier's clock a context's
// iat may be, as in the database's verifier.
const futureSkew = 5

// Mint signs c under k and returns the token.
func Mint(k Key, c Claims) (string, error) {
	if !validKeyID(k.ID) {
		return "", fmt.Errorf("ctxtoken: key id %q does not match %s", k.ID, kidPattern)
	}
	if len(k.Secret) < 32 {
		return "", errors.New("ctxtoken: key secret shorter than 32 bytes")
	}
	if c.TenantID == "" || c.Audience == "" || c.ExpiresAt <= c.IssuedAt {
		return "", errors.New("ctxtoken: claims need tenant_id, aud and exp after iat")
	}
	// Every request mints one, so the token is built in one buffer: the
	// claims as json.Marshal writes them (appendClaims), encoded in
	// place, then the MAC of the text so far.
	var scratch [512]byte
	payload := appendClaims(scratch[:0], c)
	b := make([]byte, 0, len(Prefix)+1+len(k.ID)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(sha256.Size))
	b = append(b, Prefix+"."...)
	b = append(b, k.ID...)
	b = append(b, '.')
	b = enc.AppendEncode(b, payload)
	if len(b)+44 > MaxLen {
		return "", errors.New("ctxtoken: claims too large")
	}
	h := hmac.New(sha256.New, k.Secret)
	h.Write(b)
	var sum [sha256.Size]byte
	b = append(b, '.')
	b = enc.AppendEncode(b, h.Sum(sum[:0]))
	return string(b), nil
}

// validKeyID reports whether id matches kidPattern, without the regular
// expression.
func validKeyID(id string) bool {
	if len(id) < 1 || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// appendClaims appends c to b exactly as json.Marshal encodes it (a nil
// Scope as []), without reflection: the tokens Mint makes are the ones
// it made with json.Marshal. TestAppendClaims holds the two together.
func appendClaims(b []byte, c Claims) []byte {
	b = append(b, `{"tenant":`...)
	b = appendJSONString(b, c.Tenant)
	b = append(b, `,"tenant_id":`...)
	b = appendJSONString(b, c.TenantID)
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, c.Subject)
	b = append(b, `,"role":`...)
	b = appendJSONString(b, c.Role)
	b = append(b, `,"scope":[`...)
	for i, cmd := range c.Scope {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, cmd)
	}
	b = append(b, `],"iat":`...)
	b = strconv.AppendInt(b, c.IssuedAt, 10)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.ExpiresAt, 10)
	b = append(b, `,"aud":`...)
	b = appendJSONString(b, c.Audience)
	b = append(b, `,"rid":`...)
	b = appendJSONString(b, c.RequestID)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string as json.Marshal writes it.
// Printable ASCII that json.Marshal leaves alone (all of it but the quote,
// the backslash and its HTML escapes <, > and &) is copied; anything else
// is left to json.Marshal itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func mac(secret []byte, signed string) []byte {
	h := hmac.New(sha256.New, secret)
	io.WriteString(h, signed)
	return h.Sum(nil)
}

// Options are the checks Verify makes besides form and signature.
type Options struct {
	Now         time.Time
	MaxLifetime time.Duration // exp − iat may not exceed it; zero means 5 minutes
	Audience    string        // when set, aud must equal it
}

// KeyID returns the kid of a well-formed token without verifying it.
func KeyID(token string) (string, error) {
	if !wellFormed(token) {
		return "", ErrMalformed
	}
	return strings.SplitN(token, ".", 4)[1], nil
}

// Decode returns the claims of a well-formed token WITHOUT verifying its
// MAC, its times or its audience: for a process that holds no key, such as
// a Lambda function's adapter, where PostgreSQL verifies the token on every
// transaction. Claims are read as [Verify] reads them: exact key matching,
// and a duplicate, case-colliding or unknown claim is ErrMalformed, so that
// the claims Go reads are the claims PostgreSQL's jsonb reads.
func Decode(token string) (Claims, error) {
	if !wellFormed(token) {
		return Claims{}, ErrMalformed
	}
	parts := strings.SplitN(token, ".", 4)
	raw, err := enc.DecodeString(parts[2])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	return decodeStrict(raw)
}

// wellFormed reports whether token has the strict form [Pattern] within
// [MaxLen] bytes: "v1.", a key id of 1 to 32 base64url characters, ".", a
// non-empty base64url payload, ".", and a 43-character base64url MAC. It
// is the pattern without a regular expression, which costs more than the
// rest of a Lambda adapter's work on an invocation.
func wellFormed(token string) bool {
	if len(token) > MaxLen || !strings.HasPrefix(token, Prefix+".") {
		return false
	}
	kid, rest, ok := strings.Cut(token[len(Prefix)+1:], ".")
	if !ok || len(kid) < 1 || len(kid) > 32 || !b64url(kid) {
		return false
	}
	payload, mac, ok := strings.Cut(rest, ".")
	return ok && len(payload) > 0 && b64url(payload) && len(mac) == 43 && b64url(mac)
}

func b64url(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Verify checks token against the keys and returns its claims.
func Verify(token string, keys []Key, o Options) (Claims, error) {
	if !wellFormed(token) {
		return Claims{}, ErrMalformed
	}
	parts := strings.Split(token, ".")
	i := slices.IndexFunc(keys, func(k Key) bool { return k.ID == parts[1] })
	if i < 0 {
		return Claims{}, ErrUnknownKey
	}
	k := keys[i]
	got, err := enc.DecodeString(parts[3])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	if !hmac.Equal(got, mac(k.Secret, parts[0]+"."+parts[1]+"."+parts[2])) {
		return Claims{}, ErrSignature
	}
	raw, err := enc.DecodeString(parts[2])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	c, err := decodeStrict(raw)
	if err != nil {
		return Claims{}, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	maxLife := o.MaxLifetime
	if maxLife == 0 {
		maxLife = 5 * time.Minute
	}
	switch {
	case now.Unix() >= c.ExpiresAt:
		return Claims{}, ErrExpired
	case c.IssuedAt > now.Unix()+futureSkew:
		return Claims{}, ErrFuture
	case c.ExpiresAt-c.IssuedAt > int64(maxLife/time.Second):
		return Claims{}, ErrLifetime
	case !k.NotAfter.IsZero() && !now.Before(k.NotAfter):
		return Claims{}, ErrKeyRetired
	case o.Audience != "" && c.Audience != o.Audience:
		return Claims{}, ErrAudience
	}
	return c, nil
}

// decodeStrict decodes claims with exact key matching: a duplicate key, or
// two keys that differ only in case, is rejected, because encoding/json
// would match them case-insensitively and keep the last. An unknown key is
// rejected too (every known one is lower case, so a key that differs from
// one only in case is unknown), as is anything after the object, and
// invalid UTF-8: encoding/json ignores the one and replaces the other,
// where PostgreSQL's jsonb refuses both. One pass: each value is decoded
// into its field as its key is read.
func decodeStrict(raw []byte) (Claims, error) {
	if !utf8.Valid(raw) {
		return Claims{}, fmt.Errorf("%w: invalid UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return Claims{}, ErrMalformed
	}
	var c Claims
	fields := [...]struct {
		name string
		v    any
	}{
		{"tenant", &c.Tenant}, {"tenant_id", &c.TenantID}, {"sub", &c.Subject}, {"role", &c.Role},
		{"scope", &c.Scope}, {"iat", &c.IssuedAt}, {"exp", &c.ExpiresAt}, {"aud", &c.Audience}, {"rid", &c.RequestID},
	}
	var seen uint16
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return Claims{}, ErrMalformed
		}
		key, _ := t.(string)
		i := 0
		for i < len(fields) && fields[i].name != key {
			i++
		}
		if i == len(fields) {
			return Claims{}, fmt.Errorf("%w: unknown claim %q", ErrMalformed, key)
		}
		if seen&(1<<i) != 0 {
			return Claims{}, fmt.Errorf("%w: duplicate claim %q", ErrMalformed, key)
		}
		seen |= 1 << i
		if err := dec.Decode(fields[i].v); err != nil {
			return Claims{}, fmt.Errorf("%w: claim %q: %v", ErrMalformed, key, err)
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return Claims{}, ErrMalformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return Claims{}, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return c, nil
}
