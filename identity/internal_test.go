package identity

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeObject(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		in      string
		want    map[string]any
		wantErr bool
	}{
		{name: "Flat", in: `{"a":"x","b":1,"c":true,"d":null}`, want: map[string]any{"a": "x", "b": json.Number("1"), "c": true, "d": nil}},
		{name: "Nested", in: `{"a":{"b":[1,{"c":"d"}]}}`, want: map[string]any{"a": map[string]any{"b": []any{json.Number("1"), map[string]any{"c": "d"}}}}},
		{name: "EmptyArray", in: `{"a":[]}`, want: map[string]any{"a": []any(nil)}},
		{name: "SameKeyInSiblings", in: `{"a":{"k":1},"b":{"k":2}}`, want: map[string]any{"a": map[string]any{"k": json.Number("1")}, "b": map[string]any{"k": json.Number("2")}}},
		{name: "Whitespace", in: " {\"a\" : 1 }\n", want: map[string]any{"a": json.Number("1")}},
		{name: "Duplicate", in: `{"a":1,"a":2}`, wantErr: true},
		{name: "DuplicateEscaped", in: `{"a":1,"\u0061":2}`, wantErr: true},
		{name: "CaseCollision", in: `{"tenant_id":1,"TENANT_ID":2}`, wantErr: true},
		{name: "KelvinCollision", in: `{"k":1,"\u212a":2}`, wantErr: true},
		{name: "LongSCollision", in: `{"s":1,"\u017f":2}`, wantErr: true},
		{name: "NestedDuplicate", in: `{"a":{"b":1,"b":2}}`, wantErr: true},
		{name: "DuplicateInArray", in: `{"a":[{"b":1,"B":2}]}`, wantErr: true},
		{name: "Array", in: `[1]`, wantErr: true},
		{name: "String", in: `"a"`, wantErr: true},
		{name: "Trailing", in: `{"a":1}x`, wantErr: true},
		{name: "TwoObjects", in: `{"a":1}{"b":2}`, wantErr: true},
		{name: "Truncated", in: `{"a":1`, wantErr: true},
		{name: "BadUTF8", in: "{\"a\":\"\xff\"}", wantErr: true},
		{name: "Empty", in: ``, wantErr: true},
		{name: "TooDeep", in: `{"a":` + strings.Repeat(`{"a":`, maxJSONDepth) + `1` + strings.Repeat(`}`, maxJSONDepth+1), wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeObject([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Errorf("decodeObject(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeObject(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decodeObject(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// FuzzDecodeObject compares decodeObject with encoding/json: whatever the
// strict decoder accepts, encoding/json reads the same way.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":[1,2,{"c":null}]}}`, `{"k":1,"K":2}`,
		`{"\u212a":1}`, `{"a":"\ud800"}`, `{"a":1e400}`, `{"a":-0}`, ` {"a" : true } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeObject(data)
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var want map[string]any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("decodeObject(%q) accepted what encoding/json refuses: %v", data, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			t.Fatalf("decodeObject(%q) accepted trailing data", data)
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []any) bool {
			return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b))
		})); diff != "" {
			t.Fatalf("decodeObject(%q) differs from encoding/json (-json +strict):\n%s", data, diff)
		}
	})
}

func TestFoldKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"tenant_id", "TENANT_ID", true},
		{"k", "\u212a", true}, // Kelvin sign
		{"s", "\u017f", true}, // long s
		{"ß", "ẞ", true},      // sharp s and its capital
		{"tenant_id", "tenantid", false},
		{"a", "b", false},
	} {
		t.Run(tt.a+"_"+tt.b, func(t *testing.T) {
			if got := foldKey(tt.a) == foldKey(tt.b); got != tt.same || got != strings.EqualFold(tt.a, tt.b) {
				t.Errorf("foldKey(%q) == foldKey(%q) is %t, want %t (EqualFold %t)", tt.a, tt.b, got, tt.same, strings.EqualFold(tt.a, tt.b))
			}
		})
	}
}

func FuzzFoldKey(f *testing.F) {
	f.Add("tenant_id", "TENANT_ID")
	f.Add("k", "\u212a")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := foldKey(a) == foldKey(b), strings.EqualFold(a, b); got != want && utf8Valid(a, b) {
			t.Errorf("foldKey(%q) == foldKey(%q) is %t, EqualFold %t", a, b, got, want)
		}
	})
}

func utf8Valid(ss ...string) bool {
	for _, s := range ss {
		if strings.ToValidUTF8(s, "\x00") != s {
			return false
		}
	}
	return true
}

func TestCheckPublicAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr   string
		public bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"2606:4700:4700::1111", true},
		{"127.0.0.1", false},
		{"127.255.0.9", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"10.0.0.1", false},
		{"172.16.5.4", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"fe80::1", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"100.64.0.1", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"ff02::1", false},
		{"64:ff9b::a00:1", false},
		{"2002:a00:1::", false},
		{"::127.0.0.1", false},
		{"198.18.0.1", false},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			err := checkPublicAddr(netip.MustParseAddr(tt.addr))
			if (err == nil) != tt.public {
				t.Errorf("checkPublicAddr(%s) = %v, want public %t", tt.addr, err, tt.public)
			}
		})
	}
}

func TestDialControl(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, network, address string
		allowPrivate, ok       bool
	}{
		{"Public", "tcp4", "8.8.8.8:443", false, true},
		{"PublicV6", "tcp6", "[2606:4700:4700::1111]:443", false, true},
		{"Loopback", "tcp4", "127.0.0.1:443", false, false},
		{"LoopbackV6", "tcp6", "[::1]:443", false, false},
		{"LoopbackAllowed", "tcp4", "127.0.0.1:443", true, true},
		{"UDP", "udp", "8.8.8.8:53", false, false},
		{"UDPAllowed", "udp", "127.0.0.1:53", true, false},
		{"Unparsable", "tcp", "localhost:443", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := dialControl(tt.allowPrivate)(tt.network, tt.address, nil)
			if (err == nil) != tt.ok {
				t.Errorf("dialControl(%t)(%s, %s) = %v, want ok %t", tt.allowPrivate, tt.network, tt.address, err, tt.ok)
			}
		})
	}
}

func TestMaxBody(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		size int
		ok   bool
	}{
		{"Under", 99, true},
		{"Exact", 100, true},
		{"Over", 101, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &maxBody{ReadCloser: io.NopCloser(strings.NewReader(strings.Repeat("x", tt.size))), left: 100}
			got, err := io.ReadAll(b)
			if tt.ok && (err != nil || len(got) != tt.size) {
				t.Errorf("ReadAll() = %d bytes, %v, want %d bytes", len(got), err, tt.size)
			}
			if !tt.ok && err == nil {
				t.Errorf("ReadAll() of %d bytes through a 100-byte limit succeeded", tt.size)
			}
		})
	}
}

func TestKeyFitsAlg(t *testing.T) {
	t.Parallel()
	if err := keyFitsAlg([]byte("secret"), "HS256"); err == nil {
		t.Errorf("keyFitsAlg(bytes, HS256) = nil")
	}
	if err := keyFitsAlg(nil, "EdDSA"); err == nil {
		t.Errorf("keyFitsAlg(nil, EdDSA) = nil")
	}
	if err := keyFitsAlg(nil, "none"); err == nil {
		t.Errorf("keyFitsAlg(nil, none) = nil")
	}
}
