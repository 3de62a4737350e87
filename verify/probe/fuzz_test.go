package probe

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

// FuzzTamper feeds the token tamperer arbitrary tokens, which come from
// whoever runs the probe and from login answers: it must never panic, and
// every variant it makes must differ from A's token.
func FuzzTamper(f *testing.F) {
	f.Add(part(map[string]any{"alg": "HS256", "kid": "k"})+"."+part(map[string]any{"tenant_id": "a", "exp": 1})+".sig",
		part(map[string]any{"alg": "HS256", "kid": "k2"})+"."+part(map[string]any{"tenant_id": "b"})+".sig")
	f.Add(part(map[string]any{"alg": "RS256"})+"."+part(map[string]any{"app_metadata": map[string]any{"tenant_id": "x"}})+".",
		part(map[string]any{})+"."+part(map[string]any{"app_metadata": "not an object"})+".s")
	f.Add("a.b.c", "..")
	f.Add("opaque", "")
	m := &maker{rand: rand.Reader, now: time.Now}
	f.Fuzz(func(t *testing.T, a, b string) {
		facts := tamper(a, b, time.Unix(1_800_000_000, 0), m)
		for _, v := range facts.variants {
			if v.token == a {
				t.Errorf("variant %s is A's token unchanged", v.name)
			}
			if strings.Count(v.token, ".") != 2 {
				t.Errorf("variant %s = %q is not three parts", v.name, v.token)
			}
		}
	})
}

// FuzzAnswer feeds the answer readers arbitrary bodies: the API under
// test is untrusted.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{`{"id":"n1"}`, `[{"id":7}]`, `{"data":[{"id":"x"}]}`, `{"data":{"data":{"id":1}}}`, `[[[]]]`, `null`, `"canary-0123456789ab"`, `{`} {
		f.Add(s)
	}
	ms := []marker{{"canary-0123456789ab", "c"}, {"42", "id"}, {"n1", "id"}}
	f.Fuzz(func(t *testing.T, body string) {
		find([]byte(body), ms)
		idOf(&response{status: 201, header: map[string][]string{"Location": {body}}, body: []byte(body)}, "id")
		empty([]byte(body))
		for _, m := range ms {
			evidence([]byte(body), m)
		}
	})
}
