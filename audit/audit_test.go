package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func chain(t *testing.T, n int) []Chained {
	t.Helper()
	var out []Chained
	prev := Genesis
	for i := 1; i <= n; i++ {
		body, err := Event{EventID: "e" + string(rune('0'+i)), At: time.Unix(int64(i), 0), Action: "data:Insert", Decision: Allow, TenantID: "t"}.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		h := Link(prev, body)
		out = append(out, Chained{Seq: int64(i), Body: body, PrevHash: prev, Hash: h})
		prev = h
	}
	return out
}

func TestVerifyChain(t *testing.T) {
	if b := VerifyChain(chain(t, 5)); b != nil {
		t.Fatalf("intact chain: %v", b)
	}
	for _, tt := range []struct {
		name   string
		tamper func([]Chained) []Chained
		seq    int64
		reason string
	}{
		{"edited body", func(c []Chained) []Chained {
			c[2].Body = []byte(strings.Replace(string(c[2].Body), "data:Insert", "data:Select", 1))
			return c
		}, 3, "edited"},
		{"edited body and hash", func(c []Chained) []Chained {
			c[2].Body = []byte(strings.Replace(string(c[2].Body), "allow", "deny", 1))
			c[2].Hash = Link(c[2].PrevHash, c[2].Body)
			return c
		}, 4, "previous-hash"},
		{"deleted", func(c []Chained) []Chained { return append(c[:1], c[2:]...) }, 3, "deleted"},
		{"deleted and renumbered", func(c []Chained) []Chained {
			c = append(c[:1], c[2:]...)
			for i := range c {
				c[i].Seq = int64(i + 1)
			}
			return c
		}, 2, "previous-hash"},
		{"reordered", func(c []Chained) []Chained { c[1], c[2] = c[2], c[1]; return c }, 3, "sequence"},
		{"inserted", func(c []Chained) []Chained {
			x := c[1]
			x.Seq = 3
			c = append(c[:2], append([]Chained{x}, c[2:]...)...)
			for i := 3; i < len(c); i++ {
				c[i].Seq = int64(i + 1)
			}
			return c
		}, 3, "previous-hash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := VerifyChain(tt.tamper(chain(t, 5)))
			if b == nil || b.Seq != tt.seq || !strings.Contains(b.Reason, tt.reason) {
				t.Fatalf("VerifyChain = %v, want a break at %d mentioning %q", b, tt.seq, tt.reason)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	e := Event{EventID: "x", At: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600)), Action: "a", Decision: Deny,
		Detail: json.RawMessage(`{ "b" : 1 }`)}
	b, err := e.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event_id":"x","at":"2026-01-02T02:04:05.123456Z","action":"a","decision":"deny","detail":{"b":1},"visibility":"tenant"}`
	if string(b) != want {
		t.Fatalf("Canonical() = %s, want %s", b, want)
	}
}

func TestCheckpoint(t *testing.T) {
	c := Checkpoint{Seq: 7, Hash: "ab", At: time.Unix(100, 0)}.Sign("k1", []byte("secret-secret-secret-secret-1234"))
	if !c.Valid([]byte("secret-secret-secret-secret-1234")) {
		t.Fatal("a signed checkpoint does not verify")
	}
	for _, bad := range []Checkpoint{
		func() Checkpoint { x := c; x.Seq = 6; return x }(),
		func() Checkpoint { x := c; x.Hash = "ac"; return x }(),
		func() Checkpoint { x := c; x.At = x.At.Add(time.Second); return x }(),
		// The same signature bytes, spelled in uppercase hex.
		func() Checkpoint { x := c; x.Signature = strings.ToUpper(x.Signature); return x }(),
	} {
		if bad.Valid([]byte("secret-secret-secret-secret-1234")) {
			t.Fatalf("an edited checkpoint verifies: %+v", bad)
		}
	}
	if c.Valid([]byte("another-secret-another-secret-12")) {
		t.Fatal("a checkpoint verifies under another key")
	}
	r := Retention{ThroughSeq: 7, ThroughHash: "ab", Removed: 7, Before: time.Unix(50, 0), At: time.Unix(100, 0)}.Sign("k1", []byte("secret-secret-secret-secret-1234"))
	if !r.Valid([]byte("secret-secret-secret-secret-1234")) {
		t.Fatal("a signed retention record does not verify")
	}
	r.Signature = strings.ToUpper(r.Signature)
	if r.Valid([]byte("secret-secret-secret-secret-1234")) {
		t.Fatal("a retention record verifies with its signature in uppercase hex")
	}
}

// TestCanonicalScrubsNUL: a NUL from a request (a path with %00) is
// written as U+FFFD wherever it is, since PostgreSQL's jsonb cannot hold
// U+0000; text that only spells \u0000 stays as it is.
func TestCanonicalScrubsNUL(t *testing.T) {
	e := Event{EventID: "x", At: time.Unix(0, 0), Action: "data:Select", Decision: Deny, Resource: "bulkhead:acme:data:\x00/\x00",
		UserAgent: `spells \u0000`, Detail: json.RawMessage(`{"q":"a\u0000b","lit":"\\u0000"}`)}
	b, err := e.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	var detail map[string]string
	json.Unmarshal(back.Detail, &detail)
	switch {
	case strings.ContainsRune(string(b), 0) || strings.Contains(strings.ReplaceAll(string(b), `\\`, ``), `\u0000`):
		t.Fatalf("a NUL is left: %s", b)
	case back.Resource != "bulkhead:acme:data:\uFFFD/\uFFFD":
		t.Fatalf("resource %q", back.Resource)
	case detail["q"] != "a\uFFFDb":
		t.Fatalf("detail %q", detail["q"])
	case back.UserAgent != `spells \u0000` || detail["lit"] != `\u0000`:
		t.Fatalf("text that spells \\u0000 changed: %q %q", back.UserAgent, detail["lit"])
	}
}
