package tenant

import (
	"strings"
	"testing"
)

func TestParseSlug(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"acme", true}, {"a1", true}, {"acme-corp", true}, {strings.Repeat("a", 40), true},
		{"a", false}, {strings.Repeat("a", 41), false}, {"Acme", false}, {"1acme", false}, {"-acme", false},
		{"acme-", false}, {"ac_me", false}, {"ac me", false}, {"аcme", false}, {"public", false}, {"admin", false},
		{"pg-catalog", false}, {"", false}, {"acme\n", false},
	} {
		_, err := ParseSlug(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSlug(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}

func TestSchemaName(t *testing.T) {
	id := ID("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
	if got, want := id.SchemaName(), "t_0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"; got != want {
		t.Fatalf("SchemaName() = %q, want %q", got, want)
	}
	if len(id.SchemaName()) != 34 {
		t.Fatalf("schema names are fixed-length")
	}
}

func FuzzParseSlug(f *testing.F) {
	f.Add("acme")
	f.Add("public")
	f.Fuzz(func(t *testing.T, s string) {
		slug, err := ParseSlug(s)
		if err != nil {
			return
		}
		if string(slug) != s || len(s) > 40 || len(s) < 2 || reservedSlugs[slug] {
			t.Fatalf("ParseSlug accepted %q", s)
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("ParseSlug accepted %q with %q", s, c)
			}
		}
	})
}
