package ctxtoken

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	key   = Key{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}
	other = Key{ID: "k1", Secret: []byte(strings.Repeat("o", 32))}
	now   = time.Unix(1_800_000_000, 0)
)

func claims() Claims {
	return Claims{Tenant: "acme", TenantID: "11111111-1111-4111-8111-111111111111", Subject: "u1", Role: "admin",
		Scope: []string{"select"}, IssuedAt: now.Unix(), ExpiresAt: now.Unix() + 45, Audience: "bulkhead_gateway", RequestID: "r"}
}

func TestRoundTrip(t *testing.T) {
	tok, err := Mint(key, claims())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(tok, []Key{key}, Options{Now: now, Audience: "bulkhead_gateway"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(claims(), got); diff != "" {
		t.Fatalf("Verify(Mint(c)) (-want +got):\n%s", diff)
	}
}

func TestVerifyRejects(t *testing.T) {
	good, _ := Mint(key, claims())
	parts := strings.Split(good, ".")
	reencode := func(payload string) string {
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + parts[3]
	}
	signed := func(payload string) string {
		s := "v1.k1." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		return s + "." + base64.RawURLEncoding.EncodeToString(mac(key.Secret, s))
	}
	mint := func(edit func(*Claims)) string {
		c := claims()
		edit(&c)
		tok, err := Mint(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	forged, _ := Mint(other, claims())
	for _, tt := range []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", ErrMalformed},
		{"v2", "v2" + good[2:], ErrMalformed},
		{"padding", good + "=", ErrMalformed},
		{"whitespace", parts[0] + "." + parts[1] + "." + parts[2][:3] + " " + parts[2][3:] + "." + parts[3], ErrMalformed},
		{"standard base64", strings.ReplaceAll(good, "_", "/"), ErrMalformed},
		{"MAC's spare bits set", parts[0] + "." + parts[1] + "." + parts[2] + "." + spareBits(parts[3]), ErrMalformed},
		{"too long", "v1.k1." + strings.Repeat("a", MaxLen) + "." + parts[3], ErrMalformed},
		{"unknown kid", strings.Replace(good, ".k1.", ".k2.", 1), ErrUnknownKey},
		{"wrong key", forged, ErrSignature},
		{"edited payload", reencode(`{"tenant_id":"22222222-2222-4222-8222-222222222222"}`), ErrSignature},
		{"expired", mint(func(c *Claims) { c.IssuedAt -= 100; c.ExpiresAt = now.Unix() }), ErrExpired},
		{"lifetime", mint(func(c *Claims) { c.ExpiresAt = c.IssuedAt + 3600 }), ErrLifetime},
		{"issued in the future", mint(func(c *Claims) { c.IssuedAt = now.Unix() + 6; c.ExpiresAt = c.IssuedAt + 60 }), ErrFuture},
		{"issued within the skew", mint(func(c *Claims) { c.IssuedAt = now.Unix() + 5; c.ExpiresAt = c.IssuedAt + 60 }), nil},
		{"audience", mint(func(c *Claims) { c.Audience = "bulkhead_fn_x" }), ErrAudience},
		{"duplicate claim", signed(`{"tenant_id":"a","tenant_id":"b","aud":"bulkhead_gateway","iat":1,"exp":9999999999}`), ErrMalformed},
		{"case-colliding claim", signed(`{"tenant_id":"a","TENANT_ID":"b","aud":"bulkhead_gateway","iat":1,"exp":9999999999}`), ErrMalformed},
		{"unknown claim", signed(`{"tenant_id":"a","admin":true}`), ErrMalformed},
		{"not an object", signed(`["tenant_id"]`), ErrMalformed},
		{"trailing data", signed(`{"tenant_id":"a","aud":"bulkhead_gateway","iat":1,"exp":9999999999} x`), ErrMalformed},
		{"invalid UTF-8", signed("{\"tenant\":\"\xd0\",\"aud\":\"bulkhead_gateway\",\"iat\":1,\"exp\":9999999999}"), ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.token, []Key{key}, Options{Now: now, Audience: "bulkhead_gateway"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("retired key", func(t *testing.T) {
		k := key
		k.NotAfter = now
		if _, err := Verify(good, []Key{k}, Options{Now: now}); !errors.Is(err, ErrKeyRetired) {
			t.Fatalf("Verify = %v, want ErrKeyRetired", err)
		}
	})
}

func TestMintRefuses(t *testing.T) {
	for name, tt := range map[string]struct {
		k Key
		c Claims
	}{
		"short secret":   {Key{ID: "k", Secret: []byte("short")}, claims()},
		"bad kid":        {Key{ID: "k.1", Secret: key.Secret}, claims()},
		"no tenant":      {key, func() Claims { c := claims(); c.TenantID = ""; return c }()},
		"no audience":    {key, func() Claims { c := claims(); c.Audience = ""; return c }()},
		"exp before iat": {key, func() Claims { c := claims(); c.ExpiresAt = c.IssuedAt; return c }()},
	} {
		if _, err := Mint(tt.k, tt.c); err == nil {
			t.Errorf("Mint with %s succeeded", name)
		}
	}
}

// spareBits returns s, a base64url text of 32 bytes, with the lowest of
// its last character's two unused bits set: the same bytes to a lenient
// decoder, another text to PostgreSQL.
func spareBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[i|1])
}

func FuzzVerify(f *testing.F) {
	good, _ := Mint(key, claims())
	f.Add(good)
	f.Add("v1.k1.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("v1..x.y")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verify(tok, []Key{key}, Options{Now: now})
		if err == nil && tok != good {
			// Only a token minted with the key can verify.
			again, merr := Mint(key, c)
			if merr != nil || again != tok {
				t.Fatalf("Verify accepted %q, which Mint never made", tok)
			}
		}
	})
}

// mintWithMarshal is Mint as it was before appendClaims: the claims
// through json.Marshal, the parts joined with +.
func mintWithMarshal(t testing.TB, k Key, c Claims) string {
	if c.Scope == nil {
		c.Scope = []string{}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	signed := Prefix + "." + k.ID + "." + enc.EncodeToString(payload)
	return signed + "." + enc.EncodeToString(mac(k.Secret, signed))
}

// TestAppendClaims: Mint makes, byte for byte, the token json.Marshal's
// encoding of the claims made, whatever the strings hold.
func TestAppendClaims(t *testing.T) {
	odd := []string{"", "acme", `q"uote`, `back\slash`, "<script>&", "tab\tnew\nline\x00", "é ü 日本", "\u2028\u2029",
		"bad utf-8 \xff\xfe", "\x7f del", strings.Repeat("long-", 200)}
	for i, s := range odd {
		c := claims()
		switch i % 4 {
		case 0:
			c.Tenant, c.RequestID = s, s
		case 1:
			c.Subject, c.Audience = s, s+"x"
		case 2:
			c.Role, c.Scope = s, []string{s, "insert"}
		case 3:
			c.TenantID, c.Scope = s+"x", nil
		}
		if got, want := string(appendClaims(nil, c)), func() string { c := c; c.Scope = cmpScope(c.Scope); b, _ := json.Marshal(c); return string(b) }(); got != want {
			t.Errorf("appendClaims(%q) = %s, want %s", s, got, want)
		}
		got, err := Mint(key, c)
		if err != nil {
			if len(s) < 500 {
				t.Fatalf("Mint(%q): %v", s, err)
			}
			continue
		}
		if want := mintWithMarshal(t, key, c); got != want {
			t.Errorf("Mint(%q) = %s, want %s", s, got, want)
		}
	}
}

// cmpScope is Mint's reading of a nil scope: no command.
func cmpScope(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func FuzzAppendClaims(f *testing.F) {
	f.Add("acme", "u1", "select", int64(1), "<&>")
	f.Add("", "\xff", "\"\\", int64(-5), "\u2028")
	f.Fuzz(func(t *testing.T, a, b, cmd string, n int64, rid string) {
		c := Claims{Tenant: a, TenantID: b, Subject: a + b, Role: cmd, Scope: []string{cmd, a}, IssuedAt: n, ExpiresAt: n / 2, Audience: b, RequestID: rid}
		want, _ := json.Marshal(c)
		if got := appendClaims(nil, c); string(got) != string(want) {
			t.Fatalf("appendClaims = %s, want %s", got, want)
		}
	})
}

func BenchmarkMint(b *testing.B) {
	c := claims()
	c.Scope = []string{"select", "insert", "update", "delete"}
	c.RequestID = "6ac0fcd9a848e987dffa3511"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Mint(key, c); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecode(t *testing.T) {
	good, _ := Mint(key, claims())
	parts := strings.Split(good, ".")
	got, err := Decode(good)
	if err != nil {
		t.Fatalf("Decode(minted) = %v", err)
	}
	if diff := cmp.Diff(claims(), got); diff != "" {
		t.Fatalf("Decode changed the claims (-minted +decoded):\n%s", diff)
	}
	// Decode checks no MAC: a token under another key, or with its
	// payload edited, decodes (PostgreSQL refuses it).
	forged, _ := Mint(other, claims())
	edited := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"tenant_id":"22222222-2222-4222-8222-222222222222"}`)) + "." + parts[3]
	for _, tok := range []string{forged, edited} {
		if _, err := Decode(tok); err != nil {
			t.Errorf("Decode(%q) = %v; it verifies nothing", tok, err)
		}
	}
	unsigned := func(payload string) string {
		return "v1.k1." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + parts[3]
	}
	for name, tok := range map[string]string{
		"empty":                "",
		"v2":                   "v2" + good[2:],
		"padding":              good + "=",
		"whitespace":           parts[0] + "." + parts[1] + "." + parts[2][:3] + " " + parts[2][3:] + "." + parts[3],
		"standard base64":      strings.ReplaceAll(good, "_", "/"),
		"too long":             "v1.k1." + strings.Repeat("a", MaxLen) + "." + parts[3],
		"payload's spare bits": parts[0] + "." + parts[1] + "." + spareBits(parts[2]) + "." + parts[3],
		"duplicate claim":      unsigned(`{"tenant_id":"a","tenant_id":"b"}`),
		"case-colliding claim": unsigned(`{"tenant_id":"a","TENANT_ID":"b"}`),
		"unknown claim":        unsigned(`{"tenant_id":"a","admin":true}`),
		"not an object":        unsigned(`["tenant_id"]`),
		"not JSON":             unsigned(`not json`),
		"trailing data":        unsigned(`{"tenant_id":"a"}{"tenant_id":"b"}`),
		"invalid UTF-8":        unsigned("{\"tenant\":\"\xd0\"}"),
	} {
		if c, err := Decode(tok); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %+v, %v; want ErrMalformed", name, c, err)
		}
	}
}

// FuzzDecode checks that the form check without a regular expression
// accepts exactly what Pattern accepts, that Decode accepts nothing else,
// and that what it accepts has only known claims, each once.
func FuzzDecode(f *testing.F) {
	re := regexp.MustCompile(Pattern)
	good, _ := Mint(key, claims())
	for _, s := range []string{good, "", "v1.", "v1..x." + strings.Repeat("a", 43), "v1.k.p." + strings.Repeat("a", 44),
		"v1.k.p.q." + strings.Repeat("a", 43), "v2.k.p." + strings.Repeat("a", 43), "v1." + strings.Repeat("k", 33) + ".p." + strings.Repeat("a", 43),
		"v1.k.p+." + strings.Repeat("a", 43), good + "\n", "v1.k.e30." + strings.Repeat("a", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) <= MaxLen && re.MatchString(s)
		if got := wellFormed(s); got != want {
			t.Fatalf("wellFormed(%q) = %v, Pattern says %v", s, got, want)
		}
		c, err := Decode(s)
		if err != nil {
			return
		}
		if !want {
			t.Fatalf("Decode(%q) accepted a malformed token", s)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(s, ".")[2])
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			t.Fatalf("Decode(%q) = %+v from a payload that is not an object", s, c)
		}
		for k := range m {
			if !strings.Contains(" tenant tenant_id sub role scope iat exp aud rid ", " "+k+" ") {
				t.Fatalf("Decode(%q) accepted the claim %q", s, k)
			}
		}
	})
}

// BenchmarkDecode is the claims decode a Lambda adapter does on every
// invocation and DB.Tx on every transaction (to know whom it serves).
func BenchmarkDecode(b *testing.B) {
	tok, _ := Mint(key, claims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(tok); err != nil {
			b.Fatal(err)
		}
	}
}
