package probe

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func part(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePart(t *testing.T, s string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTamper(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tokA := part(map[string]any{"alg": "RS256", "kid": "key-a"}) + "." +
		part(map[string]any{"sub": "user-a", "org_id": "org_aaaaaaaa", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
			"app_metadata": map[string]any{"tenant_id": "11111111-1111-4111-8111-111111111111", "role": "admin"}}) + ".c2lnLWE"
	tokB := part(map[string]any{"alg": "RS256", "kid": "key-b"}) + "." +
		part(map[string]any{"sub": "user-b", "org_id": "org_bbbbbbbb", "email": "bob@b.example",
			"app_metadata": map[string]any{"tenant_id": "22222222-2222-4222-8222-222222222222", "role": "member"}}) + ".c2lnLWI"
	m := &maker{rand: bytes.NewReader(bytes.Repeat([]byte{7}, 64)), now: func() time.Time { return now }}
	f := tamper(tokA, tokB, now, m)
	if len(f.skipped) != 0 {
		t.Fatalf("skipped: %v", f.skipped)
	}
	if diff := cmp.Diff([]string{"app_metadata.tenant_id", "org_id"}, f.edited); diff != "" {
		t.Errorf("edited claims (-want +got):\n%s", diff)
	}
	if f.tenantB != "org_bbbbbbbb" {
		t.Errorf("tenantB = %q, want the top-level id claim org_bbbbbbbb", f.tenantB)
	}
	got := map[string][3]string{}
	for _, v := range f.variants {
		p := strings.Split(v.token, ".")
		if len(p) != 3 {
			t.Fatalf("%s: %q is not three parts", v.name, v.token)
		}
		got[v.name] = [3]string{p[0], p[1], p[2]}
	}
	if diff := cmp.Diff(Variants, func() []string {
		var n []string
		for _, v := range f.variants {
			n = append(n, v.name)
		}
		return n
	}()); diff != "" {
		t.Errorf("variants (-want +got):\n%s", diff)
	}
	a := strings.Split(tokA, ".")
	tenantOf := func(p map[string]any) []any {
		return []any{p["org_id"], p["app_metadata"].(map[string]any)["tenant_id"], p["app_metadata"].(map[string]any)["role"]}
	}
	bTenant := []any{"org_bbbbbbbb", "22222222-2222-4222-8222-222222222222", "admin"} // role is not a tenant claim

	v := got[AlgNone]
	if h := decodePart(t, v[0]); h["alg"] != "none" || h["kid"] != nil || v[2] != "" {
		t.Errorf("alg-none: header %v, signature %q", h, v[2])
	}
	if diff := cmp.Diff(bTenant, tenantOf(decodePart(t, v[1]))); diff != "" {
		t.Errorf("alg-none payload's tenant (-want +got):\n%s", diff)
	}
	if v := got[NoSignature]; v[0] != a[0] || v[1] != a[1] || v[2] != "" {
		t.Errorf("no-signature = %q", v)
	}
	v = got[TenantClaim]
	if v[0] != a[0] || v[2] != a[2] {
		t.Errorf("tenant-claim changed the header or signature")
	}
	if diff := cmp.Diff(bTenant, tenantOf(decodePart(t, v[1]))); diff != "" {
		t.Errorf("tenant-claim payload's tenant (-want +got):\n%s", diff)
	}
	v = got[KidSwap]
	if h := decodePart(t, v[0]); h["kid"] != "key-b" || h["alg"] != "RS256" || v[1] != a[1] || v[2] != a[2] {
		t.Errorf("kid-swap: header %v", h)
	}
	v = got[Expired]
	p := decodePart(t, v[1])
	if exp := int64(p["exp"].(float64)); exp >= now.Unix() || v[0] != a[0] || v[2] != a[2] {
		t.Errorf("expired: exp %d, now %d", exp, now.Unix())
	}
	if int64(p["iat"].(float64)) >= int64(p["exp"].(float64)) {
		t.Errorf("expired: iat %v is not before exp %v", p["iat"], p["exp"])
	}
	if diff := cmp.Diff([]string{"22222222-2222-4222-8222-222222222222", "org_bbbbbbbb"}, f.tenantsB); diff != "" {
		t.Errorf("B's tenant markers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bob@b.example"}, f.idsB); diff != "" {
		t.Errorf("B's identity markers (-want +got):\n%s", diff)
	}

	t.Run("opaque", func(t *testing.T) {
		f := tamper("opaque-a", "opaque-b", now, m)
		if len(f.variants) != 0 || len(f.skipped) != len(Variants) {
			t.Errorf("variants %v, skipped %v", f.variants, f.skipped)
		}
	})
	t.Run("same kid, opaque B", func(t *testing.T) {
		f := tamper(tokA, "opaque-b", now, m)
		if _, ok := f.skipped[TenantClaim]; !ok || len(f.skipped) != 1 {
			t.Errorf("skipped %v, want only tenant-claim", f.skipped)
		}
		for _, v := range f.variants {
			if v.name == KidSwap {
				h := decodePart(t, strings.Split(v.token, ".")[0])
				if kid, _ := h["kid"].(string); !strings.HasPrefix(kid, "probe-") {
					t.Errorf("kid-swap kid = %q, want a random one", kid)
				}
			}
		}
	})
}

func TestTenantLike(t *testing.T) {
	for _, tt := range []struct {
		key  string
		want bool
	}{
		{"tenant_id", true}, {"tenantId", true}, {"tenant", true}, {"org_id", true}, {"orgId", true},
		{"organization", true}, {"custom:tenant_id", true}, {"https://example.com/tenant", true}, {"tid", true},
		{"sub", false}, {"role", false}, {"email", false}, {"tenants_count", false}, {"aud", false},
	} {
		if got := tenantLike(tt.key); got != tt.want {
			t.Errorf("tenantLike(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestFind(t *testing.T) {
	ms := []marker{{"canary-0123456789ab", "canary"}, {"42", "B's id"}, {"globex-eu", "B's id"},
		{"5e0c6d1a-0b7e-4a57-9a43-2f7f3c1d9b10", "B's uuid"}}
	for _, tt := range []struct {
		body string
		want []string
	}{
		{`{"title":"canary-0123456789ab"}`, []string{"canary"}},
		{`{"title":"xcanary-0123456789aby"}`, []string{"canary"}}, // long markers: any substring
		{`{"id":42}`, []string{"B's id"}},
		{`[{"note_id":"42"}]`, []string{"B's id"}},
		{`{"id":420,"n":142,"s":"a42","count":42,"tags":["42"]}`, nil}, // the shortest: whole values of id-like keys only
		{`not json, 42`, nil},
		{`{"tenant":"globex-eu-2"}`, nil},
		{`{"msg":"tenant globex-eu not found"}`, []string{"B's id"}},
		{`not json, globex-eu.`, []string{"B's id"}},
		{`{"url":"/notes/5e0c6d1a-0b7e-4a57-9a43-2f7f3c1d9b10"}`, []string{"B's uuid"}},
		{``, nil},
	} {
		var got []string
		for _, m := range find([]byte(tt.body), ms) {
			got = append(got, m.what)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("find(%s) (-want +got):\n%s", tt.body, diff)
		}
	}
}

func TestExpand(t *testing.T) {
	tg := &target{id: "a b/c", tenant: "t&1", values: map[string]string{"title": "x y"}}
	for _, tt := range []struct{ tmpl, want string }{
		{"/notes/{id}", "/notes/a%20b%2Fc"},
		{"/notes?id=eq.{id}&t={tenant}", "/notes?id=eq.a+b%2Fc&t=t%261"},
		{"/notes?title={v:title}", "/notes?title=x+y"},
	} {
		got, err := expand(tt.tmpl, tg)
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v, want %q", tt.tmpl, got, err, tt.want)
		}
	}
	for _, tmpl := range []string{"/x/{v:body}", "/x/{nope}", "/x/{id"} {
		if _, err := expand(tmpl, tg); err == nil {
			t.Errorf("expand(%q) succeeded", tmpl)
		}
	}
}

func TestIDOf(t *testing.T) {
	for _, tt := range []struct {
		body, location, want string
	}{
		{`{"id":"n1","title":"x"}`, "", "n1"},
		{`[{"id":"n2"}]`, "", "n2"},
		{`{"data":{"id":7}}`, "", "7"},
		{`{"noteId":"n3"}`, "", "n3"},
		{`{"ok":true}`, "/notes/n4?x=1", "n4"},
		{``, "https://api.example/notes/n%205", "n 5"},
	} {
		r := &response{status: 201, header: map[string][]string{}, body: []byte(tt.body)}
		if tt.location != "" {
			r.header.Set("Location", tt.location)
		}
		if got := idOf(r, "noteId"); got != tt.want {
			t.Errorf("idOf(%s, %s) = %q, want %q", tt.body, tt.location, got, tt.want)
		}
	}
}

func TestLoadOpenAPI(t *testing.T) {
	b, err := os.ReadFile("testdata/notes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	api, err := LoadOpenAPI(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) Field { return Field{Name: s, Type: "string"} }
	title := Field{Name: "title", Type: "string", Required: true, MinLength: 1, MaxLength: 200}
	want := &API{Name: "openapi: Notes 1.0.0", Resources: []*Resource{{
		Name:    "/notes",
		Create:  &Request{Method: "POST", Path: "/notes"},
		IDField: "id",
		Fields: []Field{
			str("body"),
			{Name: "parent_id", Type: "string", Format: "uuid", Ref: "notes"},
			{Name: "tenant_id", Type: "string", Tenant: true},
			title,
		},
		Read: []*Request{{Method: "GET", Path: "/notes/{id}"}},
		List: &Request{Method: "GET", Path: "/notes"},
		Filters: []Filter{
			{Check: "filter-value", Query: "title={v:title}"},
			{Check: "filter-id", Query: "parent_id={id}"},
		},
		Update: []*Request{{Method: "PATCH", Path: "/notes/{id}", Fields: []Field{
			{Name: "body", Type: "string", Required: true},
			{Name: "title", Type: "string", Required: true, MaxLength: 200},
		}}},
		Delete: &Request{Method: "DELETE", Path: "/notes/{id}"},
	}}}
	if diff := cmp.Diff(want, api, cmp.AllowUnexported()); diff != "" {
		t.Errorf("LoadOpenAPI(notes.yaml) (-want +got):\n%s", diff)
	}

	for _, tt := range []struct{ name, doc, want string }{
		{"not openapi", `{"swagger": "2.0"}`, "OpenAPI"},
		{"invalid", `{"openapi":"3.0.3","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"ok"}},"parameters":[{"name":"q","in":"nowhere"}]}}}}`, "not valid"},
		{"external ref", `{"openapi":"3.0.3","info":{"title":"x","version":"1"},"paths":{"/a":{"post":{"requestBody":{"content":{"application/json":{"schema":{"$ref":"other.yaml#/S"}}}},"responses":{"200":{"description":"ok"}}}}}}`, "other.yaml"},
		{"no collection", `{"openapi":"3.0.3","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"ok"}}}}}}`, "no collection"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadOpenAPI(t.Context(), []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadOpenAPI = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// TestRateLimitedAnswersAreRetried: a 429 is the API's rate limit, not its
// answer about B's data; the probe waits its Retry-After and asks again.
func TestRateLimitedAnswersAreRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	var progress bytes.Buffer
	r := &runner{cfg: Config{Progress: &progress}, base: srv.URL, client: srv.Client()}
	res, err := r.send(t.Context(), spec{method: "GET", path: "/things"}, "tok")
	if err != nil || res.status != http.StatusOK || string(res.body) != "[]" || hits.Load() != 2 {
		t.Fatalf("after one 429: %v, %+v, %d requests; want the second answer", err, res, hits.Load())
	}
	if !strings.Contains(progress.String(), "rate-limited on GET /things; waiting 1s") {
		t.Fatalf("progress: %q", progress.String())
	}
	for in, want := range map[string]time.Duration{"1": time.Second, "3": 3 * time.Second, "0": time.Second, "-2": time.Second,
		"3600": maxRetryAfter, "Wed, 21 Oct 2026 07:28:00 GMT": time.Second, "": time.Second} {
		if got := retryAfter(in); got != want {
			t.Errorf("retryAfter(%q) = %s; want %s", in, got, want)
		}
	}
}

func TestDecoyKeepsShape(t *testing.T) {
	m := &maker{rand: rand.Reader, now: time.Now}
	for _, tt := range []struct{ id, re string }{
		{"5e0c6d1a-0b7e-4a57-9a43-2f7f3c1d9b10", `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`},
		{"42", `^9[0-9]{8}$`},
		{"note_0123456789abcdef01234567", `^note_[0-9a-f]{24}$`},
		{"INV-00AF12", `^INV-[0-9A-F]{6}$`},
		{"cus_NffrFeUfNV2Hib", `^cus_[a-zA-Z0-9]{14}$`},
		{"acme-corp", `^acme-[a-z]{4}$`},
		{"org-bbbbbbbbbbbb", `^org-[0-9a-f]{12}$`},
	} {
		d := m.decoy(tt.id)
		if d == tt.id || !regexp.MustCompile(tt.re).MatchString(d) {
			t.Errorf("decoy(%q) = %q, want a different value matching %s", tt.id, d, tt.re)
		}
	}
}

func TestSentCountsHeadersAndToken(t *testing.T) {
	s := spec{method: "GET", path: "/notes?title=canary-0123456789ab", header: map[string]string{"X-Tenant-Id": "org-b"},
		inToken: []string{"org-bbbbbbbbbbbb"}}
	for v, want := range map[string]bool{"canary-0123456789ab": true, "org-b": true, "org-bbbbbbbbbbbb": true, "bob@b.test": false} {
		if got := s.sent(v); got != want {
			t.Errorf("sent(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestUpdateBodyChangesEnumsAndBooleans(t *testing.T) {
	m := &maker{rand: rand.Reader, now: time.Now}
	fields := []Field{{Name: "status", Type: "string", Enum: []any{"open", "closed"}}, {Name: "archived", Type: "boolean"},
		{Name: "pinned", Type: "boolean"}, {Name: "kind", Type: "string", Enum: []any{"only"}}}
	vals := map[string]string{}
	b := m.update(fields, nil, vals, map[string]any{"status": "closed", "pinned": true})
	want := map[string]any{"status": "open", "archived": true, "pinned": false, "kind": "only"}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("update body (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"=status": "open", "=archived": "true", "=pinned": "false"}, vals); diff != "" {
		t.Errorf("recorded values (-want +got):\n%s", diff)
	}
}
