package probe

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// response is an HTTP response, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
	dur    time.Duration
}

func (r *response) ok() bool { return r.status >= 200 && r.status < 300 }

// spec is one concrete request.
type spec struct {
	method string
	path   string // the path and query sent
	header map[string]string
	body   []byte
	// inToken are the values of B's written into the token the request
	// carries (see [tampered]); they are sent, if not in the path or body.
	inToken []string
}

func (s spec) key() string { return s.method + " " + s.path + " " + string(s.body) }

// sent reports whether the request itself carries v, in its path, query,
// body, headers or token, so that an answer echoing v proves nothing by
// itself.
func (s spec) sent(v string) bool {
	if strings.Contains(s.path, v) || bytes.Contains(s.body, []byte(v)) {
		return true
	}
	for _, h := range s.header {
		if strings.Contains(h, v) {
			return true
		}
	}
	for _, t := range s.inToken {
		if strings.Contains(t, v) {
			return true
		}
	}
	if p, err := url.QueryUnescape(s.path); err == nil && strings.Contains(p, v) {
		return true
	}
	return false
}

// marker is a value of tenant B's that A must never see.
type marker struct {
	value string
	what  string // "B's id", "B's canary value of title"…
}

// Markers of wholeBelow bytes or more count wherever they appear. Shorter
// ones (slugs such as "globex-eu") count only as a whole JSON value or a
// whole word, never as part of a longer one; and the shortest, ids such
// as "42", only as the whole value of an id-like key ("id", "note_id",
// "noteId"), so that a count of 42 is not B's object 42.
const wholeBelow = 16

// find returns the markers that body holds.
func find(body []byte, ms []marker) []marker {
	if len(body) == 0 || len(ms) == 0 {
		return nil
	}
	var vals []jsonValue
	parsed := false
	var out []marker
	for _, m := range ms {
		if len(m.value) >= wholeBelow {
			if bytes.Contains(body, []byte(m.value)) || bytes.Contains(body, []byte(jsonEscape(m.value))) {
				out = append(out, m)
			}
			continue
		}
		if !parsed {
			vals, parsed = jsonValues(body), true
		}
		short := len(m.value) < markerLen
		if vals == nil {
			if !short && containsWord(string(body), m.value) {
				out = append(out, m)
			}
			continue
		}
		for _, v := range vals {
			if short && v.value == m.value && idLike(v.key) || !short && containsWord(v.value, m.value) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// idLike reports whether a JSON key names an id: "id", "note_id", "noteId".
func idLike(k string) bool {
	return strings.EqualFold(k, "id") || strings.HasSuffix(k, "_id") || strings.HasSuffix(k, "Id") || strings.HasSuffix(k, "ID")
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// jsonValue is a string or number in a JSON document and the key it is
// under ("" in an array or at the top).
type jsonValue struct{ key, value string }

// jsonValues returns every string and number in a JSON document, or nil
// when body is not JSON.
func jsonValues(body []byte) []jsonValue {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	out := []jsonValue{}
	// Each open object or array, and for an object whether the next
	// string is a key, and the last key.
	type frame struct {
		object, wantKey bool
		key             string
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			return nil
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.object {
					top.wantKey = true
				}
				stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top != nil && top.object && top.wantKey {
			top.key, top.wantKey = tok.(string), false
			continue
		}
		key := ""
		if top != nil && top.object {
			key = top.key
			top.wantKey = true
		}
		switch v := tok.(type) {
		case string:
			out = append(out, jsonValue{key, v})
		case json.Number:
			out = append(out, jsonValue{key, v.String()})
		}
	}
}

// containsWord reports whether s holds w with no letter, digit, '-' or '_'
// right before or after it.
func containsWord(s, w string) bool {
	word := func(c byte) bool {
		return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(w)
		if (j == 0 || !word(s[j-1])) && (end == len(s) || !word(s[end])) {
			return true
		}
		i = j + 1
	}
}

// evidence returns the part of body around the first marker, at most
// about 160 bytes, on one line.
func evidence(body []byte, m marker) string {
	s := string(body)
	i := strings.Index(s, m.value)
	if i < 0 {
		i = strings.Index(s, jsonEscape(m.value))
	}
	if i < 0 {
		i = 0
	}
	from, to := max(i-60, 0), min(i+len(m.value)+60, len(s))
	e := strings.Join(strings.Fields(s[from:to]), " ")
	if from > 0 {
		e = "…" + e
	}
	if to < len(s) {
		e += "…"
	}
	return e
}

// firstObject returns the object a create or a lookup answered with: the
// body itself, the first element of an array, or the same inside a
// "data", "item" or "result" envelope.
func firstObject(body []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	for range 3 {
		switch x := v.(type) {
		case []any:
			if len(x) == 0 {
				return nil
			}
			v = x[0]
		case map[string]any:
			if _, ok := x["id"]; ok {
				return x
			}
			var inner any
			for _, k := range []string{"data", "item", "result"} {
				switch w := x[k].(type) {
				case map[string]any, []any:
					inner = w
				}
				if inner != nil {
					break
				}
			}
			if inner == nil {
				return x
			}
			v = inner
		default:
			return nil
		}
	}
	m, _ := v.(map[string]any)
	return m
}

// idOf returns the id of what a create answered: field (or "id") of the
// object in the body, or else the last segment of the Location header.
func idOf(r *response, field string) string {
	if o := firstObject(r.body); o != nil {
		for _, k := range []string{field, "id"} {
			switch v := o[k].(type) {
			case string:
				if v != "" {
					return v
				}
			case json.Number:
				return v.String()
			}
		}
	}
	if loc := r.header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			p := strings.TrimRight(u.Path, "/")
			seg := p[strings.LastIndexByte(p, '/')+1:]
			if s, err := url.PathUnescape(seg); err == nil && s != "" {
				return s
			}
		}
	}
	return ""
}

// empty reports whether a 2xx body holds nothing: no body, null, [] or {}.
func empty(body []byte) bool {
	t := bytes.TrimSpace(body)
	return len(t) == 0 || string(t) == "null" || string(t) == "[]" || string(t) == "{}"
}
