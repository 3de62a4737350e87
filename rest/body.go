package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// body is a checked JSON body, re-encoded.
type body struct {
	json string    // for POST an array of objects, for PATCH one object
	keys []*Column // every key seen, in order of first appearance
	rows [][]bool  // rows[i][j]: object i has keys[j]
}

// decodeBody checks a POST (many) or PATCH body token by token and
// re-encodes it.
//
// Isolation: encoding/json matches keys to struct fields case-insensitively
// and keeps the last of duplicate keys, so a body could say "tenant_id" to
// a check and "TENANT_ID" to the database. Here every key must equal a
// column name exactly and may appear once per object, and what the database
// receives is re-encoded from the tokens that were checked.
func decodeBody(data []byte, p *parser, tenantID string, many bool, maxRows int) (*body, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errorf(ErrInvalidBody, "A JSON body is required.")
	}
	if !utf8.Valid(data) {
		return nil, errorf(ErrInvalidBody, "The body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	b := &body{}
	var out strings.Builder
	tok, err := dec.Token()
	if err != nil {
		return nil, errorf(ErrInvalidBody, "The body is not valid JSON.")
	}
	switch {
	case tok == json.Delim('{'):
		if many {
			out.WriteByte('[')
		}
		if err := b.object(dec, &out, p, tenantID); err != nil {
			return nil, err
		}
		if many {
			out.WriteByte(']')
		}
	case tok == json.Delim('[') && many:
		out.WriteByte('[')
		for dec.More() {
			if len(b.rows) == maxRows {
				return nil, errorf(ErrTooManyRows, "The body has more than %d objects.", maxRows)
			}
			tok, err := dec.Token()
			if err != nil || tok != json.Delim('{') {
				return nil, errorf(ErrInvalidBody, "The body must be an array of JSON objects.")
			}
			if len(b.rows) > 0 {
				out.WriteByte(',')
			}
			if err := b.object(dec, &out, p, tenantID); err != nil {
				return nil, err
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, errorf(ErrInvalidBody, "The body is not valid JSON.")
		}
		out.WriteByte(']')
	case many:
		return nil, errorf(ErrInvalidBody, "The body must be a JSON object or an array of objects.")
	default:
		return nil, errorf(ErrInvalidBody, "The body must be a JSON object.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errorf(ErrInvalidBody, "The body has data after its JSON value.")
	}
	b.json = out.String()
	return b, nil
}

// object reads one object whose '{' was consumed, checks it and appends
// its re-encoding to out.
func (b *body) object(dec *json.Decoder, out *strings.Builder, p *parser, tenantID string) error {
	row := make([]bool, len(b.keys))
	out.WriteByte('{')
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errorf(ErrInvalidBody, "The body is not valid JSON.")
		}
		key, ok := tok.(string)
		if !ok {
			return errorf(ErrInvalidBody, "The body is not valid JSON.")
		}
		c := p.cols[key]
		if c == nil || systemColumns[key] {
			return errorf(ErrUnknownColumn, "The body has the key %s, which is not a column of %s.", echo(key), echo(p.t.Name))
		}
		j := slices.Index(b.keys, c)
		if j < 0 {
			j = len(b.keys)
			b.keys = append(b.keys, c)
			for i := range b.rows {
				b.rows[i] = append(b.rows[i], false)
			}
			row = append(row, false)
		}
		if row[j] {
			return errorf(ErrInvalidBody, "The body has the key %s twice in one object.", echo(key))
		}
		row[j] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return errorf(ErrInvalidBody, "The body is not valid JSON.")
		}
		if c.Name == p.t.TenantColumn {
			// Isolation: a write may only name the caller's own tenant.
			// Anything else, null and non-strings included, is refused
			// here rather than left to the database's policies.
			var s string
			if err := json.Unmarshal(raw, &s); err != nil || !sameUUID(s, tenantID) {
				return errorf(ErrTenantMismatch, "The body sets %s to a tenant other than the caller's.", echo(c.Name))
			}
		}
		if n > 0 {
			out.WriteByte(',')
		}
		n++
		k, _ := json.Marshal(c.Name)
		out.Write(k)
		out.WriteByte(':')
		out.Write(raw)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return errorf(ErrInvalidBody, "The body is not valid JSON.")
	}
	out.WriteByte('}')
	b.rows = append(b.rows, row)
	return nil
}

// sameUUID reports whether a and b are both UUIDs and the same one,
// whatever their case, hyphens and braces.
func sameUUID(a, b string) bool {
	ca, cb := canonicalUUID(a), canonicalUUID(b)
	return ca != "" && ca == cb
}

// canonicalUUID returns the 32 lowercase hex digits of s, or "" when s is
// not a UUID in one of the forms PostgreSQL reads.
func canonicalUUID(s string) string {
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	var buf [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '-' && i > 0 && i < len(s)-1 && s[i-1] != '-':
			continue
		case ch >= '0' && ch <= '9', ch >= 'a' && ch <= 'f':
		case ch >= 'A' && ch <= 'F':
			ch += 'a' - 'A'
		default:
			return ""
		}
		if n == len(buf) {
			return ""
		}
		buf[n] = ch
		n++
	}
	if n != len(buf) {
		return ""
	}
	return string(buf[:])
}
