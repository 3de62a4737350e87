package strictjson

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"object", `{"a":1,"b":[{"c":2}]}`, true},
		{"duplicate", `{"tenant_id":"a","tenant_id":"b"}`, false},
		{"case collision", `{"tenant_id":"a","TENANT_ID":"b"}`, false},
		{"nested duplicate", `{"a":{"x":1,"x":2}}`, false},
		{"duplicate in array element", `[{"x":1},{"y":1,"Y":2}]`, false},
		{"trailing data", `{"a":1} {"a":2}`, false},
		{"malformed", `{"a":`, false},
		{"scalar", `"x"`, true},
		{"too deep", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check([]byte(tt.in)); (err == nil) != tt.ok {
				t.Fatalf("Check(%s) = %v, want ok=%v", tt.in, err, tt.ok)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	type req struct {
		ID   string `json:"id"`
		Tier string `json:"tier"`
	}
	for _, tt := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"exact", `{"id":"acme","tier":"pool"}`, true},
		{"case variant of a field", `{"ID":"acme"}`, false},
		{"unknown field", `{"id":"acme","evil":1}`, false},
		{"wrong type", `{"id":5}`, false},
		{"not an object", `["id"]`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r req
			if err := Decode([]byte(tt.in), &r); (err == nil) != tt.ok {
				t.Fatalf("Decode(%s) = %v, want ok=%v", tt.in, err, tt.ok)
			}
		})
	}
}

// TestDecodeMessages: each refusal says what is wrong without naming a
// body it may not be about (a file's line, a batch's item), and an
// unknown key, nested or not, is named, cut short when long.
func TestDecodeMessages(t *testing.T) {
	type inner struct {
		Limit int `json:"limit"`
	}
	type req struct {
		ID    string `json:"id"`
		Inner inner  `json:"inner"`
	}
	long := strings.Repeat("k", 10000)
	for _, tt := range []struct{ in, want string }{
		{`["id"]`, "not a JSON object"},
		{`{"inner":{"limt":3}}`, `unknown field "limt"`},
		{`{"inner":{"` + long + `":3}}`, `unknown field "` + truncate(long) + `"`},
		{`{"evil":1}`, `unknown field "evil"`},
		{`{"id":5}`, `field "id" has the wrong type`},
	} {
		var r req
		err := Decode([]byte(tt.in), &r)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode(%.40s) = %v, want %q", tt.in, err, tt.want)
		}
	}
	if len(truncate(long)) >= 200 {
		t.Errorf("a long key is not cut short: %d bytes", len(truncate(long)))
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"a":1,"A":2}`))
	f.Add([]byte(`[{"x":{"y":[1,2,{"z":null}]}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = Check(b) // must not panic
	})
}
