package probe

import (
	"fmt"
	"net/url"
	"strings"
)

// API is what the probe knows about an HTTP API: the kinds of resource a
// tenant can reach and the requests that reach them. [Bulkhead] describes
// bulkhead's own API; [LoadOpenAPI] derives one from an OpenAPI 3
// document.
type API struct {
	Name      string // "bulkhead", or the document's title and version
	Resources []*Resource
	Notes     []string // what the description left out, and why
}

// Resource is one kind of object a tenant owns, such as a note or a
// project, and the requests that create, read, list, filter, change and
// delete it. Request paths are templates: see [Request].
type Resource struct {
	// Name is the collection's path ("/notes", "/rest/v1/projects"); the
	// report groups checks by it.
	Name string
	// Create makes one as a tenant; its JSON body is built from Fields.
	// Nil when tenants do not create the resource: then Own finds the one
	// tenant B already has.
	Create *Request
	Own    *Request
	// Fields are the properties of Create's body.
	Fields []Field
	// IDField is the property of a created object that holds its id. The
	// probe also looks for "id" and takes the last segment of a Location
	// header.
	IDField string
	// Markers are properties of the object Own finds whose values are
	// tenant B's own (bulkhead: the tenant's uuid).
	Markers []string
	// Read are requests for one object by id.
	Read []*Request
	// List lists the collection; Filters narrow it with query parameters.
	List    *Request
	Filters []Filter
	// Update changes one object by id, with a body built from the
	// request's Fields; Delete deletes one by id.
	Update []*Request
	Delete *Request
	// Upsert, when set, creates an object whose IDField is given in the
	// body (PostgREST's POST with resolution=merge-duplicates).
	Upsert *Request
}

// short returns the resource's last path segment, "notes" for "/notes".
func (r *Resource) short() string {
	p := r.Name
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	p = strings.TrimRight(p, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

// tenantField returns the field that names the owning tenant, or nil.
func (r *Resource) tenantField() *Field {
	for i := range r.Fields {
		if r.Fields[i].Tenant {
			return &r.Fields[i]
		}
	}
	return nil
}

// Request is one request template. Path holds the path and an optional
// query, with placeholders that the probe fills in and escapes:
//
//	{id}       the target object's id
//	{tenant}   tenant B's value of the tenant claim (from B's token)
//	{v:NAME}   the target's canary value of field NAME
type Request struct {
	Method string
	Path   string
	Header map[string]string // extra headers, such as PostgREST's Prefer
	Fields []Field           // the body of an Update
}

// Filter is one query that narrows a list: Query is appended to the
// list's path, with the placeholders of [Request].
type Filter struct {
	Check string // "filter-id", "filter-value" or "filter-tenant"
	Query string // "id=eq.{id}", "title={v:title}"
}

// Field is one property of a request body, as much of its schema as the
// probe needs to make a value the API accepts.
type Field struct {
	Name      string
	Type      string // "string", "integer", "number", "boolean", "object" or "array"
	Format    string // "uuid", "date-time", "date", "email", "uri"…
	Required  bool
	Enum      []any
	MinLength int
	MaxLength int // 0: no limit
	Minimum   *float64
	// Ref names the resource (its short name, "projects") whose id the
	// field holds: a foreign key.
	Ref string
	// Tenant marks the field that names the owning tenant (tenant_id,
	// org_id): left out of every body except the plant check's.
	Tenant bool
	Fields []Field // an object's properties
	Items  *Field  // an array's items
}

// target is what a request template is filled with.
type target struct {
	id     string
	tenant string
	values map[string]string // field name → canary value
}

// expand fills tmpl's placeholders from t, escaping each value for where
// it stands: path-escaped before the '?', query-escaped after it.
func expand(tmpl string, t *target) (string, error) {
	var b strings.Builder
	inQuery := false
	for i := 0; i < len(tmpl); {
		c := tmpl[i]
		if c == '?' {
			inQuery = true
		}
		if c != '{' {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(tmpl[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unclosed placeholder in %q", tmpl)
		}
		name := tmpl[i+1 : i+end]
		i += end + 1
		var v string
		switch {
		case name == "id":
			v = t.id
		case name == "tenant":
			v = t.tenant
		case strings.HasPrefix(name, "v:"):
			v = t.values[name[2:]]
		default:
			return "", fmt.Errorf("unknown placeholder {%s} in %q", name, tmpl)
		}
		if v == "" {
			return "", fmt.Errorf("no value for {%s}", name)
		}
		if inQuery {
			b.WriteString(url.QueryEscape(v))
		} else {
			b.WriteString(url.PathEscape(v))
		}
	}
	return b.String(), nil
}

// templated reports whether tmpl holds any placeholder.
func templated(tmpl string) bool { return strings.Contains(tmpl, "{") }
