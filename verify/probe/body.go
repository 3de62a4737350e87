package probe

import (
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
)

// canaryPrefix starts every canary value, so that people reading a
// database or a log can tell the probe's data from real data.
const canaryPrefix = "canary-"

// markerLen is the shortest value the probe looks for in responses:
// shorter ones could turn up by chance.
const markerLen = 8

// maker makes the values the probe sends: canary strings, ids and decoys.
type maker struct {
	rand io.Reader
	now  func() time.Time
}

func (m *maker) hex(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := io.ReadFull(m.rand, b); err != nil {
		// crypto/rand does not fail; a test's reader that runs dry is a
		// programmer error.
		panic(fmt.Sprintf("probe: reading randomness: %v", err))
	}
	return hex.EncodeToString(b)[:n]
}

// canary returns a fresh canary value: "canary-" and 12 hex digits.
func (m *maker) canary() string { return canaryPrefix + m.hex(12) }

func (m *maker) uuid() string {
	u, err := uuid.NewRandomFromReader(m.rand)
	if err != nil {
		panic(fmt.Sprintf("probe: reading randomness: %v", err))
	}
	return u.String()
}

// decoy returns a value shaped like id that names nothing: a random UUID
// for a UUID, a large number for a number; otherwise id's prefix up to its
// last '_' or '-' ("note_", "inv-") kept and every other letter or digit
// replaced by a random one of the same class (hex digits by hex digits),
// so that an API that checks the format of ids accepts it as well-formed.
func (m *maker) decoy(id string) string {
	if _, err := uuid.Parse(id); err == nil && len(id) == 36 {
		return m.uuid()
	}
	if id != "" && strings.Trim(id, "0123456789") == "" {
		n := max(len(id), 9)
		digits := make([]byte, n)
		for i := range digits {
			digits[i] = '0' + byte(m.hex(2)[0])%10
		}
		digits[0] = '9'
		return string(digits)
	}
	keep := strings.LastIndexAny(id, "_-") + 1
	rest := id[keep:]
	if rest == "" {
		return id + "zz" + m.hex(markerLen-2)
	}
	const (
		digits = "0123456789"
		lower  = "abcdefghijklmnopqrstuvwxyz"
		upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	)
	hexOf := ""
	switch {
	case strings.Trim(rest, digits+"abcdef") == "":
		hexOf = digits + "abcdef"
	case strings.Trim(rest, digits+"ABCDEF") == "":
		hexOf = digits + "ABCDEF"
	}
	for range 8 {
		out := []byte(id)
		for i := keep; i < len(out); i++ {
			c := out[i]
			switch {
			case hexOf != "":
				out[i] = m.pick(hexOf)
			case c >= '0' && c <= '9':
				out[i] = m.pick(digits)
			case c >= 'a' && c <= 'z':
				out[i] = m.pick(lower)
			case c >= 'A' && c <= 'Z':
				out[i] = m.pick(upper)
			}
		}
		if d := string(out); d != id {
			return d
		}
	}
	return id[:keep] + "zz" + m.hex(max(len(rest), markerLen)-2)
}

// pick returns a random byte of set.
func (m *maker) pick(set string) byte {
	var b [1]byte
	if _, err := io.ReadFull(m.rand, b[:]); err != nil {
		panic(fmt.Sprintf("probe: reading randomness: %v", err))
	}
	return set[int(b[0])%len(set)]
}

// body builds a JSON object for fields. Every string field gets a fresh
// canary value (or one that fits its enum or format); other fields are
// filled only when required. Canary values are recorded in vals by field
// path. refs gives the id to put in a foreign-key field, by resource;
// tenant fields are left out.
func (m *maker) body(fields []Field, refs map[string]string, vals map[string]string) map[string]any {
	out := map[string]any{}
	m.fill(out, fields, "", refs, vals)
	return out
}

func (m *maker) fill(out map[string]any, fields []Field, prefix string, refs map[string]string, vals map[string]string) {
	for _, f := range fields {
		if f.Tenant {
			continue
		}
		if f.Ref != "" {
			if id, ok := refs[f.Ref]; ok {
				out[f.Name] = id
				continue
			}
			if !f.Required {
				continue
			}
		}
		if v, ok := m.value(f, prefix+f.Name, refs, vals); ok {
			out[f.Name] = v
		}
	}
}

// update builds the body of an update: as body, except that enum and
// boolean properties are set to a value other than seen's (B's object as
// B's read shows it) or, unknown, other than what a create sends, so that
// a leaking update changes something. vals records each as "=name".
func (m *maker) update(fields []Field, refs map[string]string, vals map[string]string, seen map[string]any) map[string]any {
	out := m.body(fields, refs, vals)
	for _, f := range fields {
		if f.Tenant || f.Ref != "" {
			continue
		}
		cur, known := seen[f.Name]
		var v any
		switch {
		case len(f.Enum) > 1:
			v = f.Enum[1] // a create sends f.Enum[0]
			if known {
				for _, e := range f.Enum {
					if fmt.Sprint(e) != fmt.Sprint(cur) {
						v = e
						break
					}
				}
			}
		case f.Type == "boolean":
			b, _ := cur.(bool)
			v = !b
		default:
			continue
		}
		out[f.Name] = v
		vals["="+f.Name] = fmt.Sprint(v)
	}
	return out
}

// value makes one field's value; ok is false for an optional field left out.
func (m *maker) value(f Field, path string, refs map[string]string, vals map[string]string) (any, bool) {
	if len(f.Enum) > 0 {
		return f.Enum[0], true
	}
	switch f.Type {
	case "string", "":
		return m.str(f, path, vals), true
	case "integer", "number":
		if !f.Required {
			return nil, false
		}
		n := 1.0
		if f.Minimum != nil {
			n = math.Max(math.Ceil(*f.Minimum), *f.Minimum+1)
		}
		if f.Type == "integer" {
			return int64(n), true
		}
		return n, true
	case "boolean":
		if !f.Required {
			return nil, false
		}
		return true, true
	case "object":
		o := map[string]any{}
		m.fill(o, f.Fields, path+".", refs, vals)
		if len(o) == 0 && !f.Required {
			return nil, false
		}
		return o, true
	case "array":
		if !f.Required {
			return []any{}, false
		}
		if f.Items == nil {
			return []any{}, true
		}
		item := *f.Items
		item.Required = true
		v, _ := m.value(item, path+"[]", refs, vals)
		return []any{v}, true
	}
	return nil, false
}

// str makes a string that fits the field's format and length, carrying a
// canary value when there is room for one.
func (m *maker) str(f Field, path string, vals map[string]string) string {
	now := m.now().UTC()
	switch f.Format {
	case "uuid":
		return m.uuid()
	case "date-time":
		return now.Format(time.RFC3339)
	case "date":
		return now.Format(time.DateOnly)
	case "time":
		return now.Format(time.TimeOnly)
	}
	c := m.canary()
	s := c
	switch f.Format {
	case "email", "idn-email":
		s = c + "@probe.invalid"
	case "uri", "url", "iri", "uri-reference":
		s = "https://probe.invalid/" + c
	case "hostname", "idn-hostname":
		s = c + ".probe.invalid"
	}
	if f.MaxLength > 0 && len(s) > f.MaxLength {
		// No room for a canary value: send something short that is not
		// looked for in responses.
		return m.hex(max(f.MaxLength, 1))[:f.MaxLength]
	}
	if len(s) < f.MinLength {
		s += strings.Repeat("x", f.MinLength-len(s))
	}
	vals[path] = c
	return s
}
