package probe

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// LoadOpenAPI parses and validates an OpenAPI 3 document (JSON or YAML)
// with kin-openapi and derives the resources to probe.
//
// A resource is a collection path with a POST that takes a JSON body
// ("/notes"), together with its item path, the collection path followed
// by one path parameter ("/notes/{id}"): GET, PATCH, PUT and DELETE there
// become the read, update and delete checks, GET on the collection the
// list check, and the list's query parameters the filters. Collections
// nested under another path parameter, and bodies other than JSON, are
// left out with a note. References to other files or URLs ($ref to
// anything but the document itself) are refused: a document is input, and
// must not make the probe read files or call hosts.
func LoadOpenAPI(ctx context.Context, data []byte) (*API, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	loader.Context = ctx
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("probe: reading the OpenAPI document: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("probe: the OpenAPI document is not valid: %w", err)
	}
	if doc.Paths == nil || doc.Paths.Len() == 0 {
		return nil, fmt.Errorf("probe: the OpenAPI document has no paths")
	}
	api := &API{Name: "openapi"}
	if doc.Info != nil {
		api.Name = strings.TrimSpace("openapi: " + doc.Info.Title + " " + doc.Info.Version)
	}
	paths := doc.Paths.Map()
	keys := doc.Paths.Keys()
	slices.Sort(keys)
	for _, p := range keys {
		item := paths[p]
		if item == nil || strings.HasSuffix(p, "}") {
			continue
		}
		if strings.Contains(p, "{") {
			if item.Post != nil {
				api.Notes = append(api.Notes, fmt.Sprintf("%s: left out, a collection under a path parameter", p))
			}
			continue
		}
		res, note := resource(p, item, paths)
		if note != "" {
			api.Notes = append(api.Notes, note)
		}
		if res != nil {
			api.Resources = append(api.Resources, res)
		}
	}
	link(api.Resources)
	if len(api.Resources) == 0 {
		return nil, fmt.Errorf("probe: the OpenAPI document has no collection with a POST that takes JSON")
	}
	return api, nil
}

// resource builds the resource of collection path p, or says why not.
func resource(p string, coll *openapi3.PathItem, paths map[string]*openapi3.PathItem) (*Resource, string) {
	if coll.Post == nil {
		return nil, ""
	}
	schema := jsonSchema(coll.Post.RequestBody)
	if schema == nil {
		return nil, fmt.Sprintf("%s: left out, POST takes no JSON body", p)
	}
	res := &Resource{Name: p, IDField: "id", Create: &Request{Method: http.MethodPost, Path: p + requiredQuery(coll, coll.Post)}}
	res.Fields = fields(schema, 0)
	// The item path: p, then one path parameter.
	var itemPath, param string
	for k := range paths {
		rest, ok := strings.CutPrefix(k, strings.TrimRight(p, "/")+"/")
		if ok && strings.HasPrefix(rest, "{") && strings.HasSuffix(rest, "}") && !strings.Contains(rest, "/") {
			if itemPath == "" || k < itemPath {
				itemPath, param = k, rest[1:len(rest)-1]
			}
		}
	}
	if itemPath != "" {
		item := paths[itemPath]
		tmpl := strings.TrimRight(p, "/") + "/{id}"
		if param != "id" && slices.ContainsFunc(res.Fields, func(f Field) bool { return f.Name == param }) {
			res.IDField = param
		}
		if op := item.Get; op != nil {
			res.Read = append(res.Read, &Request{Method: http.MethodGet, Path: tmpl + requiredQuery(item, op)})
		}
		for _, m := range []string{http.MethodPatch, http.MethodPut} {
			op := item.GetOperation(m)
			if op == nil {
				continue
			}
			up := &Request{Method: m, Path: tmpl + requiredQuery(item, op)}
			if s := jsonSchema(op.RequestBody); s != nil {
				up.Fields = fields(s, 0)
				// An update carries a value for every string field, so a
				// change shows in B's read.
				for i := range up.Fields {
					if up.Fields[i].Type == "string" {
						up.Fields[i].Required = true
					}
				}
			}
			res.Update = append(res.Update, up)
		}
		if op := item.Delete; op != nil {
			res.Delete = &Request{Method: http.MethodDelete, Path: tmpl + requiredQuery(item, op)}
		}
	}
	if op := coll.Get; op != nil {
		res.List = &Request{Method: http.MethodGet, Path: p + requiredQuery(coll, op)}
		res.Filters = filters(coll, op, res.Fields)
	}
	return res, ""
}

// jsonSchema returns the JSON schema of a request body, or nil.
func jsonSchema(rb *openapi3.RequestBodyRef) *openapi3.Schema {
	if rb == nil || rb.Value == nil {
		return nil
	}
	for mt, m := range rb.Value.Content {
		if m == nil || m.Schema == nil || m.Schema.Value == nil {
			continue
		}
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			return m.Schema.Value
		}
	}
	return nil
}

// typeOf returns a schema's type, ignoring "null".
func typeOf(s *openapi3.Schema) string {
	if s.Type != nil {
		for _, t := range s.Type.Slice() {
			if t != "null" {
				return t
			}
		}
	}
	if len(s.Properties) > 0 {
		return "object"
	}
	return ""
}

// merged folds allOf into one schema and takes the first of oneOf or anyOf.
func merged(s *openapi3.Schema, depth int) *openapi3.Schema {
	if depth > 8 {
		return s
	}
	out := *s
	out.Properties = openapi3.Schemas{}
	for k, v := range s.Properties {
		out.Properties[k] = v
	}
	out.Required = slices.Clone(s.Required)
	for _, part := range s.AllOf {
		if part == nil || part.Value == nil {
			continue
		}
		m := merged(part.Value, depth+1)
		for k, v := range m.Properties {
			out.Properties[k] = v
		}
		out.Required = append(out.Required, m.Required...)
		if out.Type == nil {
			out.Type = m.Type
		}
	}
	for _, alts := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf} {
		if len(alts) > 0 && alts[0] != nil && alts[0].Value != nil && len(out.Properties) == 0 {
			m := merged(alts[0].Value, depth+1)
			out.Properties, out.Required = m.Properties, m.Required
			if out.Type == nil {
				out.Type = m.Type
			}
		}
	}
	return &out
}

// fields turns an object schema's properties into fields, skipping
// read-only ones.
func fields(s *openapi3.Schema, depth int) []Field {
	s = merged(s, 0)
	if depth > 4 {
		return nil
	}
	names := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		names = append(names, k)
	}
	slices.Sort(names)
	var out []Field
	for _, name := range names {
		ref := s.Properties[name]
		if ref == nil || ref.Value == nil || ref.Value.ReadOnly {
			continue
		}
		f := field(name, merged(ref.Value, 0), depth)
		f.Required = slices.Contains(s.Required, name)
		out = append(out, f)
	}
	return out
}

func field(name string, v *openapi3.Schema, depth int) Field {
	f := Field{Name: name, Type: typeOf(v), Format: v.Format, Enum: v.Enum, MinLength: int(min(v.MinLength, 1<<20)), Minimum: v.Min}
	if v.MaxLength != nil {
		f.MaxLength = int(min(*v.MaxLength, 1<<20))
	}
	switch f.Type {
	case "object":
		f.Fields = fields(v, depth+1)
	case "array":
		if v.Items != nil && v.Items.Value != nil {
			it := field("", merged(v.Items.Value, 0), depth+1)
			f.Items = &it
		}
	}
	if depth == 0 && tenantLike(name) {
		f.Tenant = true
	}
	return f
}

// fkPrefix returns what a foreign-key-like name refers to: "project" for
// "project_id" or "projectId", "" for anything else.
func fkPrefix(name string) string {
	if p, ok := strings.CutSuffix(name, "_id"); ok && p != "" {
		return strings.ToLower(p)
	}
	if p, ok := strings.CutSuffix(name, "Id"); ok && p != "" {
		return strings.ToLower(p)
	}
	return ""
}

// link points foreign-key-like fields (project_id, projectId, parent_id)
// at the resource they name: "project" names /projects, "category" names
// /categories, and "parent" names the field's own resource.
func link(rs []*Resource) {
	for _, res := range rs {
		for i := range res.Fields {
			f := &res.Fields[i]
			p := fkPrefix(f.Name)
			if p == "" || f.Tenant || (f.Type != "string" && f.Type != "integer" && f.Type != "") {
				continue
			}
			if p == "parent" {
				f.Ref = res.short()
				continue
			}
			for _, other := range rs {
				s := strings.ToLower(other.short())
				if s == p || s == p+"s" || s == p+"es" || (strings.HasSuffix(p, "y") && s == p[:len(p)-1]+"ies") {
					f.Ref = other.short()
				}
			}
		}
	}
}

// filters turns a list's query parameters into filters: tenant-like ones
// get B's tenant, id-like ones B's id, string ones a canary value (the
// field of the same name's, else the first string field's).
func filters(item *openapi3.PathItem, op *openapi3.Operation, fs []Field) []Filter {
	firstString := ""
	for _, f := range fs {
		if f.Type == "string" && f.Format == "" && len(f.Enum) == 0 && !f.Tenant && f.Ref == "" {
			firstString = f.Name
			break
		}
	}
	var out []Filter
	for _, p := range params(item, op) {
		if p.In != openapi3.ParameterInQuery || p.Required {
			continue
		}
		typ := ""
		if p.Schema != nil && p.Schema.Value != nil {
			typ = typeOf(p.Schema.Value)
		}
		name := p.Name
		switch {
		case tenantLike(name):
			out = append(out, Filter{Check: "filter-tenant", Query: name + "={tenant}"})
		case name == "id" || name == "ids" || fkPrefix(name) != "":
			out = append(out, Filter{Check: "filter-id", Query: name + "={id}"})
		case typ == "string" || typ == "":
			v := firstString
			if slices.ContainsFunc(fs, func(f Field) bool { return f.Name == name && f.Type == "string" }) {
				v = name
			}
			if v != "" {
				out = append(out, Filter{Check: "filter-value", Query: name + "={v:" + v + "}"})
			}
		}
	}
	return out
}

// params returns the operation's parameters with the path item's, the
// operation's winning (OpenAPI: by name and location).
func params(item *openapi3.PathItem, op *openapi3.Operation) []*openapi3.Parameter {
	var out []*openapi3.Parameter
	seen := map[string]bool{}
	for _, list := range []openapi3.Parameters{op.Parameters, item.Parameters} {
		for _, ref := range list {
			if ref == nil || ref.Value == nil || seen[ref.Value.In+" "+ref.Value.Name] {
				continue
			}
			seen[ref.Value.In+" "+ref.Value.Name] = true
			out = append(out, ref.Value)
		}
	}
	return out
}

// requiredQuery returns "?a=1&b=x" for the operation's required query
// parameters, with a value that fits each (its example, default, first
// enum value, or one of its type).
func requiredQuery(item *openapi3.PathItem, op *openapi3.Operation) string {
	var parts []string
	for _, p := range params(item, op) {
		if p.In != openapi3.ParameterInQuery || !p.Required {
			continue
		}
		v := "1"
		if p.Schema != nil && p.Schema.Value != nil {
			s := p.Schema.Value
			switch {
			case p.Example != nil:
				v = fmt.Sprint(p.Example)
			case s.Default != nil:
				v = fmt.Sprint(s.Default)
			case len(s.Enum) > 0:
				v = fmt.Sprint(s.Enum[0])
			case typeOf(s) == "boolean":
				v = "true"
			case typeOf(s) == "string":
				v = "probe"
			}
		}
		parts = append(parts, p.Name+"="+v)
	}
	if len(parts) == 0 {
		return ""
	}
	return "?" + strings.Join(parts, "&")
}
