package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of a token's header and payload.
const maxJSONDepth = 32

// decodeObject decodes data, which must be exactly one JSON object in valid
// UTF-8, with exact key matching.
//
// Isolation: it rejects an object, at any depth, that holds the same key
// twice or two keys that are equal under Unicode case folding (such as
// "tenant_id" and "TENANT_ID"). encoding/json keeps the last duplicate and
// matches struct fields without regard to case, and PostgreSQL's jsonb keeps
// the last duplicate too, so a payload that any two readers could read
// differently must never be accepted. Numbers are kept as json.Number.
func decodeObject(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("JSON is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("JSON is not an object")
	}
	m, err := decodeObjectBody(dec, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	if depth >= maxJSONDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	switch d {
	case '{':
		return decodeObjectBody(dec, depth+1)
	case '[':
		return decodeArrayBody(dec, depth+1)
	}
	return nil, fmt.Errorf("unexpected JSON delimiter %q", d)
}

func decodeObjectBody(dec *json.Decoder, depth int) (map[string]any, error) {
	m := make(map[string]any)
	folded := make(map[string]string)
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return m, nil
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("JSON object key is not a string")
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("duplicate JSON key %q", key)
		}
		f := foldKey(key)
		if other, clash := folded[f]; clash {
			return nil, fmt.Errorf("JSON keys %q and %q differ only in case", other, key)
		}
		folded[f] = key
		v, err := decodeValue(dec, depth)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
}

func decodeArrayBody(dec *json.Decoder, depth int) ([]any, error) {
	var a []any
	for dec.More() {
		v, err := decodeValue(dec, depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != ']' {
		return nil, errors.New("malformed JSON array")
	}
	return a, nil
}

// foldKey maps s to a canonical form such that foldKey(a) == foldKey(b)
// exactly when strings.EqualFold(a, b): each rune is replaced by the
// smallest rune of its Unicode simple case-folding orbit (so "K", "k" and
// the Kelvin sign all become "K").
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// Limits on a claim path.
const (
	maxClaimPathLen      = 256
	maxClaimPathSegments = 8
)

// ClaimPath names a claim inside a token's payload: a list of object keys,
// outermost first.
//
// Its text form separates keys with dots: "tenant_id",
// "app_metadata.tenant_id". Any other character, including ':' and '/',
// belongs to its key, so "custom:tenant_id" is one key. A key that contains
// a dot or a backslash escapes it with a backslash, so Auth0's namespaced
// claim "https://example.com/tenant" is written
// "https://example\.com/tenant".
type ClaimPath []string

// ParseClaimPath parses the text form of a claim path. It refuses empty
// keys, control characters, invalid UTF-8, a dangling or unknown escape,
// more than 8 keys, and more than 256 bytes.
func ParseClaimPath(s string) (ClaimPath, error) {
	if s == "" {
		return nil, errors.New("empty claim path")
	}
	if len(s) > maxClaimPathLen {
		return nil, fmt.Errorf("claim path longer than %d bytes", maxClaimPathLen)
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("claim path is not valid UTF-8")
	}
	var (
		p   ClaimPath
		seg strings.Builder
	)
	end := func() error {
		if seg.Len() == 0 {
			return fmt.Errorf("claim path %q has an empty key", s)
		}
		if len(p) == maxClaimPathSegments {
			return fmt.Errorf("claim path has more than %d keys", maxClaimPathSegments)
		}
		p = append(p, seg.String())
		seg.Reset()
		return nil
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case unicode.IsControl(r):
			return nil, fmt.Errorf("claim path %q has a control character", s)
		case r == '.':
			if err := end(); err != nil {
				return nil, err
			}
			continue
		case r == '\\':
			if i == len(s) || (s[i] != '.' && s[i] != '\\') {
				return nil, fmt.Errorf(`claim path %q: a backslash must precede "." or "\"`, s)
			}
			r = rune(s[i])
			i++
		}
		seg.WriteRune(r)
	}
	if err := end(); err != nil {
		return nil, err
	}
	return p, nil
}

// MustParseClaimPath is like [ParseClaimPath] but panics on error. It is
// for paths written in the program's source.
func MustParseClaimPath(s string) ClaimPath {
	p, err := ParseClaimPath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the text form of p, which [ParseClaimPath] turns back into
// p.
func (p ClaimPath) String() string {
	var b strings.Builder
	for i, key := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		for _, r := range key {
			if r == '.' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Lookup returns the value at p in claims, a payload decoded into nested
// map[string]any values, and whether it is there. Every key but the last
// must name an object.
func (p ClaimPath) Lookup(claims map[string]any) (any, bool) {
	if len(p) == 0 {
		return nil, false
	}
	cur := claims
	for _, key := range p[:len(p)-1] {
		next, ok := cur[key].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	v, ok := cur[p[len(p)-1]]
	return v, ok
}
