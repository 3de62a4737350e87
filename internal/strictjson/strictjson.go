// Package strictjson decodes JSON with exact key matching.
//
// encoding/json matches object keys to struct fields without regard to
// case and keeps the last of duplicate keys. Two readers of one document
// (Go here, PostgreSQL's jsonb there) can then see two different values, a
// hole that once made Go and PostgreSQL see different tenants. Check
// rejects any object with a duplicate key or two keys that differ only in
// case, at any depth; Decode also requires every key to be a field's exact
// JSON name.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// MaxDepth bounds nesting.
const MaxDepth = 32

// Check reports an error when data is not one JSON value, or has a
// duplicate or case-colliding key anywhere.
func Check(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := walk(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func walk(dec *json.Decoder, depth int) error {
	if depth > MaxDepth {
		return errors.New("JSON nested too deeply")
	}
	t, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	d, ok := t.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]string{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("malformed JSON: %w", err)
			}
			k := kt.(string)
			lk := strings.ToLower(k)
			if prev, dup := seen[lk]; dup {
				if prev == k {
					return fmt.Errorf("duplicate key %q", truncate(k))
				}
				return fmt.Errorf("keys %q and %q differ only in case", truncate(prev), truncate(k))
			}
			seen[lk] = k
			if err := walk(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walk(dec, depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// Decode checks data and decodes it into v (a pointer to a struct),
// requiring every object key of the top level to be the exact JSON name of
// one of v's fields.
func Decode(data []byte, v any) error {
	if err := Check(data); err != nil {
		return err
	}
	names := fieldNames(reflect.TypeOf(v))
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return errors.New("not a JSON object")
	}
	for k := range top {
		if names != nil && !names[k] {
			return fmt.Errorf("unknown field %q", truncate(k))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %q has the wrong type", te.Field)
		}
		// A nested object's unknown key: encoding/json says which only in
		// its message.
		if q, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			if k, uerr := strconv.Unquote(q); uerr == nil {
				return fmt.Errorf("unknown field %q", truncate(k))
			}
		}
		return errors.New("not of the expected shape")
	}
	return nil
}

func fieldNames(t reflect.Type) map[string]bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	m := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag := f.Tag.Get("json"); tag != "" {
			if tag == "-" {
				continue
			}
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
		}
		m[name] = true
	}
	return m
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
