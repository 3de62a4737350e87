package strictjson

import "testing"

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

func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"a":1,"A":2}`))
	f.Add([]byte(`[{"x":{"y":[1,2,{"z":null}]}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = Check(b) // must not panic
	})
}
