package identity_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/identity"
)

func TestParseClaimPath(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in      string
		want    identity.ClaimPath
		wantErr bool
	}{
		{in: "tenant_id", want: identity.ClaimPath{"tenant_id"}},
		{in: "app_metadata.tenant_id", want: identity.ClaimPath{"app_metadata", "tenant_id"}},
		{in: "custom:tenant_id", want: identity.ClaimPath{"custom:tenant_id"}},
		{in: "https://example\\.com/tenant", want: identity.ClaimPath{"https://example.com/tenant"}},
		{in: `a\\.b`, want: identity.ClaimPath{`a\`, "b"}},
		{in: "a.b.c.d.e.f.g.h", want: identity.ClaimPath{"a", "b", "c", "d", "e", "f", "g", "h"}},
		{in: "ünïcode.ключ", want: identity.ClaimPath{"ünïcode", "ключ"}},
		{in: "", wantErr: true},
		{in: ".", wantErr: true},
		{in: "a.", wantErr: true},
		{in: ".a", wantErr: true},
		{in: "a..b", wantErr: true},
		{in: `a\`, wantErr: true},
		{in: `a\b`, wantErr: true},
		{in: "a\tb", wantErr: true},
		{in: "a\x00b", wantErr: true},
		{in: "a\u0085b", wantErr: true},
		{in: "\xff", wantErr: true},
		{in: "a.b.c.d.e.f.g.h.i", wantErr: true},
		{in: strings.Repeat("a", 257), wantErr: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := identity.ParseClaimPath(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Errorf("ParseClaimPath(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClaimPath(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseClaimPath(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			if s := got.String(); s != tt.in {
				t.Errorf("ParseClaimPath(%q).String() = %q", tt.in, s)
			}
		})
	}
}

func TestClaimPathLookup(t *testing.T) {
	t.Parallel()
	claims := map[string]any{
		"tenant_id":        "a",
		"custom:tenant_id": "b",
		"app_metadata":     map[string]any{"tenant_id": "c", "deep": map[string]any{"x": "d"}},
		"list":             []any{"e"},
		"s":                "not an object",
	}
	for _, tt := range []struct {
		path string
		want any
		ok   bool
	}{
		{"tenant_id", "a", true},
		{"custom:tenant_id", "b", true},
		{"app_metadata.tenant_id", "c", true},
		{"app_metadata.deep.x", "d", true},
		{"app_metadata.deep", map[string]any{"x": "d"}, true},
		{"TENANT_ID", nil, false},
		{"custom.tenant_id", nil, false},
		{"app_metadata.missing", nil, false},
		{"list.0", nil, false},
		{"s.x", nil, false},
		{"missing.x", nil, false},
	} {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := identity.MustParseClaimPath(tt.path).Lookup(claims)
			if ok != tt.ok || !cmp.Equal(got, tt.want) {
				t.Errorf("Lookup(%q) = %v, %t, want %v, %t", tt.path, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzClaimPath(f *testing.F) {
	for _, s := range []string{
		"tenant_id", "app_metadata.tenant_id", "custom:tenant_id", `https://example\.com/t`,
		`a\\.b`, "a..b", `a\`, "", ".", "\xff", "a.b.c.d.e.f.g.h.i", "ünï.ключ",
	} {
		f.Add(s)
	}
	claims := map[string]any{"a": map[string]any{"b": "x", "a.b": "y"}, "a.b": "z", `a\`: map[string]any{"b": 1}}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := identity.ParseClaimPath(s)
		if err != nil {
			if p != nil {
				t.Errorf("ParseClaimPath(%q) = %q, %v: a path with an error", s, p, err)
			}
			return
		}
		if len(p) == 0 || len(p) > 8 || len(s) > 256 {
			t.Errorf("ParseClaimPath(%q) = %q: outside the limits", s, p)
		}
		for _, key := range p {
			if key == "" || !utf8.ValidString(key) || strings.ContainsFunc(key, unicode.IsControl) {
				t.Errorf("ParseClaimPath(%q) has key %q", s, key)
			}
		}
		// The text form round-trips, and is the input itself: there is
		// exactly one way to write each path.
		if got := p.String(); got != s {
			t.Errorf("ParseClaimPath(%q).String() = %q", s, got)
		}
		again, err := identity.ParseClaimPath(p.String())
		if err != nil || !cmp.Equal(p, again) {
			t.Errorf("ParseClaimPath(%q) = %q, %v, want %q", p.String(), again, err, p)
		}
		p.Lookup(claims) // must not panic
	})
}
