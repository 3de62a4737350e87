package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/strictjson"
)

// The versions of the policy language. Policy variables are substituted
// only under Version2012.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Limits on a document.
const (
	// MaxSize bounds a document's JSON text in bytes, whitespace included.
	// AWS allows 10,240 characters (whitespace excluded) for a role's
	// inline policy; bulkhead documents are smaller than that in practice,
	// and the bound keeps parsing and evaluation cheap.
	MaxSize = 10 << 10
	// MaxStatements bounds the statements in a document.
	MaxStatements = 100
	// MaxDocuments bounds the documents attached to one tenant. Every
	// decision for the tenant's users evaluates all of them, so without
	// a bound a tenant's admin could make each of its requests cost the
	// server milliseconds of CPU (1,000 documents: 8.7 ms against 1.3 ms
	// for a one-row read, and over a second to parse them again at each
	// reload of the tenant's policies), which the other tenants would
	// pay. AWS attaches
	// at most 10 managed policies to a role by default.
	MaxDocuments = 10
)

// ErrInvalid matches, with errors.Is, every error of [Parse] and
// [Document.Validate]. Each returned error has its own Message, which names
// the statement and field at fault, such as
//
//	Statement[2] ("AllowReads"): Condition: unknown operator "StringEqualz"
var ErrInvalid = fault.E(fault.Invalid, "invalid_policy", "The policy document is invalid.")

func invalid(op, format string, args ...any) error {
	e := fault.Errorf(fault.Invalid, "invalid_policy", format, args...)
	e.Op = op
	return e
}

// Document is a policy document: the IAM JSON policy grammar, restricted to
// identity policies.
//
// A Document returned by [Parse] is validated and ready to evaluate. One
// built in Go must be validated with [Document.Validate] before use, and
// validated again after any change: evaluation uses what Validate compiled.
// A validated Document must not be changed while it is in use, and may then
// be evaluated from many goroutines at once.
type Document struct {
	Version   string      `json:"Version"`
	ID        string      `json:"Id,omitempty"`
	Statement []Statement `json:"Statement"`

	compiled *compiledDoc
}

// Statement is one statement of a [Document].
type Statement struct {
	Sid         string    `json:"Sid,omitempty"`
	Effect      string    `json:"Effect"` // "Allow" or "Deny"
	Action      []string  `json:"Action,omitempty"`
	NotAction   []string  `json:"NotAction,omitempty"`
	Resource    []string  `json:"Resource,omitempty"`
	NotResource []string  `json:"NotResource,omitempty"`
	Condition   Condition `json:"Condition,omitempty"`
}

// Condition is a statement's condition block: operator, then condition key,
// then the values for that key. JSON numbers and booleans in a document are
// kept as their text ("10", "true").
type Condition map[string]map[string][]string

// Parse decodes and validates a policy document. The JSON must be strict:
// no duplicate keys, no keys that differ only in case, no unknown fields,
// field names spelled exactly. Every error is a *fault.Error of kind
// Invalid and code "invalid_policy" (see [ErrInvalid]).
func Parse(b []byte) (*Document, error) {
	d := new(Document)
	if err := d.decode(b, "policy.Parse"); err != nil {
		return nil, err
	}
	if err := d.validate("policy.Parse"); err != nil {
		return nil, err
	}
	return d, nil
}

// UnmarshalJSON decodes and validates a document as [Parse] does.
func (d *Document) UnmarshalJSON(b []byte) error {
	var n Document
	if err := n.decode(b, "policy.Document.UnmarshalJSON"); err != nil {
		return err
	}
	if err := n.validate("policy.Document.UnmarshalJSON"); err != nil {
		return err
	}
	*d = n
	return nil
}

func (d *Document) decode(b []byte, op string) error {
	if len(b) > MaxSize {
		return invalid(op, "the document is %d bytes, more than the limit of %d", len(b), MaxSize)
	}
	if !utf8.Valid(b) {
		// JSON text is UTF-8; the document is stored as text, as sent.
		return invalid(op, "the document is not valid UTF-8")
	}
	if err := strictjson.Check(b); err != nil {
		return invalid(op, "%s", jsonProblem(err))
	}
	top, err := object(b)
	if err != nil {
		return invalid(op, "the document must be a JSON object")
	}
	for _, kv := range top {
		switch kv.key {
		case "Version":
			if d.Version, err = str(kv.val); err != nil {
				return invalid(op, "Version must be a string")
			}
		case "Id":
			if d.ID, err = str(kv.val); err != nil {
				return invalid(op, "Id must be a string")
			}
		case "Statement":
			raws := []json.RawMessage{kv.val}
			if bytes.HasPrefix(kv.val, []byte("[")) {
				if err := json.Unmarshal(kv.val, &raws); err != nil {
					return invalid(op, "Statement must be an object or an array of objects")
				}
				if len(raws) == 0 {
					return invalid(op, "Statement is empty")
				}
			}
			if len(raws) > MaxStatements {
				return invalid(op, "%d statements, more than the limit of %d", len(raws), MaxStatements)
			}
			d.Statement = make([]Statement, len(raws))
			for i, raw := range raws {
				if err := d.Statement[i].decode(raw); err != nil {
					return invalid(op, "%s: %s", label(i, d.Statement[i].Sid), err.Error())
				}
			}
		default:
			return invalid(op, "unknown field %s", unknownField(kv.key, "Version", "Id", "Statement"))
		}
	}
	if d.Statement == nil {
		return invalid(op, "Statement is required")
	}
	return nil
}

var statementFields = []string{"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}

func (s *Statement) decode(b []byte) error {
	fields, err := object(b)
	if err != nil {
		return errorString("a statement must be a JSON object")
	}
	// The Sid first, so that errors about other fields can name it.
	for _, kv := range fields {
		if kv.key == "Sid" {
			if s.Sid, err = str(kv.val); err != nil {
				return errorString("Sid must be a string")
			}
		}
	}
	for _, kv := range fields {
		var err error
		switch kv.key {
		case "Sid":
		case "Effect":
			if s.Effect, err = str(kv.val); err != nil {
				return errorString("Effect must be a string")
			}
		case "Action", "NotAction", "Resource", "NotResource":
			list, err := strings1(kv.val)
			if err != nil {
				return errorString(kv.key + " must be a string or an array of strings")
			}
			if len(list) == 0 {
				return errorString(kv.key + " is empty")
			}
			switch kv.key {
			case "Action":
				s.Action = list
			case "NotAction":
				s.NotAction = list
			case "Resource":
				s.Resource = list
			case "NotResource":
				s.NotResource = list
			}
		case "Condition":
			if s.Condition, err = decodeCondition(kv.val); err != nil {
				return errorString("Condition: " + err.Error())
			}
		case "Principal", "NotPrincipal":
			return errorString(kv.key + " is not supported: bulkhead policies are identity policies, which apply to the principal they are attached to")
		default:
			return errorString("unknown field " + unknownField(kv.key, statementFields...))
		}
	}
	return nil
}

func decodeCondition(b []byte) (Condition, error) {
	ops, err := object(b)
	if err != nil {
		return nil, errorString("must be an object of operators")
	}
	c := make(Condition, len(ops))
	for _, op := range ops {
		keys, err := object(op.val)
		if err != nil {
			return nil, problemf("%s must be an object of condition keys", quote(op.key))
		}
		if len(keys) == 0 {
			return nil, problemf("%s has no condition keys", quote(op.key))
		}
		m := make(map[string][]string, len(keys))
		for _, k := range keys {
			vals, err := scalars(k.val)
			if err != nil {
				return nil, problemf("%s: %s: values must be strings, numbers or booleans, or an array of them", quote(op.key), quote(k.key))
			}
			if len(vals) == 0 {
				return nil, problemf("%s: %s has no values", quote(op.key), quote(k.key))
			}
			m[k.key] = vals
		}
		c[op.key] = m
	}
	return c, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

type member struct {
	key string
	val json.RawMessage
}

// object decodes a JSON object into its members in document order.
// strictjson.Check has already rejected duplicate and case-colliding keys.
func object(b []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	t, err := dec.Token()
	if err != nil || t != json.Delim('{') {
		return nil, errorString("not an object")
	}
	var ms []member
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		ms = append(ms, member{kt.(string), raw})
	}
	return ms, nil
}

func str(b []byte) (string, error) {
	var s string
	if len(b) == 0 || b[0] != '"' {
		return "", errorString("not a string")
	}
	err := json.Unmarshal(b, &s)
	return s, err
}

// strings1 decodes a string or an array of strings.
func strings1(b []byte) ([]string, error) {
	if s, err := str(b); err == nil {
		return []string{s}, nil
	}
	if len(b) == 0 || b[0] != '[' {
		return nil, errorString("not a string or array")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, err
	}
	list := make([]string, 0, len(raws))
	for _, r := range raws {
		s, err := str(r)
		if err != nil {
			return nil, err
		}
		list = append(list, s)
	}
	return list, nil
}

// scalars decodes a string, number or boolean, or an array of them, into
// their text.
func scalars(b []byte) ([]string, error) {
	one := func(r []byte) (string, error) {
		switch {
		case len(r) == 0:
			return "", errorString("empty")
		case r[0] == '"':
			return str(r)
		case string(r) == "true" || string(r) == "false":
			return string(r), nil
		case r[0] == '-' || r[0] >= '0' && r[0] <= '9':
			var n json.Number
			dec := json.NewDecoder(bytes.NewReader(r))
			dec.UseNumber()
			if err := dec.Decode(&n); err != nil {
				return "", err
			}
			return n.String(), nil
		}
		return "", errorString("not a scalar")
	}
	if len(b) > 0 && b[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(b, &raws); err != nil {
			return nil, err
		}
		list := make([]string, 0, len(raws))
		for _, r := range raws {
			s, err := one(r)
			if err != nil {
				return nil, err
			}
			list = append(list, s)
		}
		return list, nil
	}
	s, err := one(b)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func jsonProblem(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "malformed JSON") {
		return "malformed JSON"
	}
	return "JSON: " + msg
}

// unknownField quotes name and, when it differs only in case from a known
// field, says so: element names are case-sensitive, as in AWS.
func unknownField(name string, known ...string) string {
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return fmt.Sprintf("%s (names are case-sensitive: use %q)", quote(name), k)
		}
	}
	return quote(name)
}

// quote quotes s for a message, shortened so that a hostile document cannot
// make its error arbitrarily long.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		return fmt.Sprintf("%q…", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// label names statement i for messages: Statement[2] ("AllowReads").
func label(i int, sid string) string {
	if sid == "" {
		return fmt.Sprintf("Statement[%d]", i)
	}
	return fmt.Sprintf("Statement[%d] (%s)", i, quote(sid))
}

// problemf formats a problem for a message. Problems start with a field
// name, so they are capitalised like the JSON they describe.
func problemf(format string, args ...any) error {
	return errorString(fmt.Sprintf(format, args...))
}
