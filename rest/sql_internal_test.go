package rest

import (
	"strings"
	"testing"
)

func TestQuoteIdent(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{name: "Plain", in: "name", want: `"name"`},
		{name: "Upper", in: "Name", want: `"Name"`},
		{name: "Space", in: "my col", want: `"my col"`},
		{name: "Quote", in: `a"b`, want: `"a""b"`},
		{name: "Breakout", in: `x"; DROP TABLE t; --`, want: `"x""; DROP TABLE t; --"`},
		{name: "OnlyQuotes", in: `""`, want: `""""""`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := quoteIdent(tt.in)
			if got != tt.want {
				t.Errorf("quoteIdent(%q) = %s, want %s", tt.in, got, tt.want)
			}
			// Inside the outer quotes, every quote is doubled: the
			// identifier cannot end early.
			inner := got[1 : len(got)-1]
			if strings.ReplaceAll(inner, `""`, "") != strings.ReplaceAll(tt.in, `"`, "") {
				t.Errorf("quoteIdent(%q) = %s has an undoubled quote", tt.in, got)
			}
		})
	}
}

func TestCastFor(t *testing.T) {
	for _, tt := range []struct {
		typ, want string
	}{
		{"uuid", "uuid"},
		{"text", "text"},
		{"boolean", "boolean"},
		{"integer", "integer"},
		{"numeric(10,2)", "numeric"},
		{"character varying(255)", "character varying"},
		{"character(1)", "bpchar"},
		{"timestamp with time zone", "timestamp with time zone"},
		{"timestamp(3) with time zone", "timestamp with time zone"},
		{"time(0) without time zone", "time without time zone"},
		{"text[]", "text[]"},
		{"character varying(10)[]", "character varying[]"},
		{"jsonb", "jsonb"},
		{"json", ""},        // no equality operator: compared as text
		{"task_status", ""}, // an enum
		{"app.task_status", ""},
		{"regclass", ""},
		{"regrole", ""},
		{"oid", ""},
		{`"My Type"`, ""},
		{"text; DROP TABLE x", ""},
		{"interval year to month", ""},
		{"", ""},
	} {
		t.Run(tt.typ, func(t *testing.T) {
			if got := castFor(tt.typ); got != tt.want {
				t.Errorf("castFor(%q) = %q, want %q", tt.typ, got, tt.want)
			}
		})
	}
}

// TestCastForPlainNames: the shortcut for plain type names gives what the
// pattern gives.
func TestCastForPlainNames(t *testing.T) {
	for typ, base := range columnTypes {
		m := typePattern.FindStringSubmatch(typ)
		if m == nil || m[1]+m[2] != typ || m[3] != "" || castFor(typ) != base {
			t.Errorf("castFor(%q) = %q; the pattern splits it as %q", typ, castFor(typ), m)
		}
	}
}

func TestSameUUID(t *testing.T) {
	const id = "6f1c0a52-3b1e-4d7a-9c55-0e2f4b8a1d10"
	for _, tt := range []struct {
		name string
		a, b string
		want bool
	}{
		{name: "Equal", a: id, b: id, want: true},
		{name: "Upper", a: strings.ToUpper(id), b: id, want: true},
		{name: "Braces", a: "{" + id + "}", b: id, want: true},
		{name: "NoHyphens", a: strings.ReplaceAll(id, "-", ""), b: id, want: true},
		{name: "Other", a: "0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5", b: id, want: false},
		{name: "Longer", a: id + "0", b: id, want: false},
		{name: "Shorter", a: id[:35], b: id, want: false},
		{name: "DoubleHyphen", a: strings.Replace(id, "-", "--", 1), b: id, want: false},
		{name: "LeadingHyphen", a: "-" + id, b: id, want: false},
		{name: "NotHex", a: strings.Replace(id, "f", "g", 1), b: id, want: false},
		{name: "BothEmpty", a: "", b: "", want: false},
		{name: "CallerEmpty", a: id, b: "", want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameUUID(tt.a, tt.b); got != tt.want {
				t.Errorf("sameUUID(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestEcho(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{name: "Short", in: "name", want: `"name"`},
		{name: "Control", in: "a\nb", want: `"a\nb"`},
		{name: "Long", in: strings.Repeat("x", 1000), want: `"` + strings.Repeat("x", maxEcho) + `"…`},
		{name: "InvalidBytes", in: strings.Repeat("\xfd", 100), want: `"` + strings.Repeat(`\xfd`, maxEcho/4) + `"…`},
		{name: "CutsAtRune", in: strings.Repeat("x", maxEcho-1) + "é", want: `"` + strings.Repeat("x", maxEcho-1) + `"…`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := echo(tt.in)
			if got != tt.want {
				t.Errorf("echo(%.20q…) = %s, want %s", tt.in, got, tt.want)
			}
			if len(got) > maxEcho+2+len("…") {
				t.Errorf("echo(%.20q…) has %d bytes, want at most %d", tt.in, len(got), maxEcho+2+len("…"))
			}
		})
	}
}
