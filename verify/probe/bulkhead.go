package probe

// Bulkhead describes bulkhead's own API: the data API's tenant tables in
// the PostgREST dialect (/rest/v1/projects, /rest/v1/tasks) and the
// tenant resource (/v1/tenants/{id}). Run it with two tenant users' tokens;
// admins' tokens let the probe delete its canaries afterwards (a member's
// DELETE is refused, which the probe reports as a note).
func Bulkhead() *API {
	const prefer = "return=representation"
	rep := map[string]string{"Prefer": prefer}
	tenantID := Field{Name: "tenant_id", Type: "string", Format: "uuid", Tenant: true}
	projects := &Resource{
		Name:    "/rest/v1/projects",
		Create:  &Request{Method: "POST", Path: "/rest/v1/projects", Header: rep},
		IDField: "id",
		Fields: []Field{
			tenantID,
			{Name: "name", Type: "string", Required: true, MinLength: 1, MaxLength: 500},
			{Name: "description", Type: "string", MaxLength: 10000},
		},
		Read: []*Request{{Method: "GET", Path: "/rest/v1/projects?id=eq.{id}"}},
		// Newest first, so that B's control sees its canary on the first
		// page however many rows B has.
		List: &Request{Method: "GET", Path: "/rest/v1/projects?order=created_at.desc"},
		Filters: []Filter{
			{Check: "filter-id", Query: "id=eq.{id}"},
			{Check: "filter-id", Query: "or=(id.eq.{id},name.eq.{v:name})"},
			{Check: "filter-value", Query: "name=eq.{v:name}"},
			{Check: "filter-value", Query: "description=like.{v:description}"},
			{Check: "filter-tenant", Query: "tenant_id=eq.{tenant}"},
		},
		Update: []*Request{{Method: "PATCH", Path: "/rest/v1/projects?id=eq.{id}", Header: rep, Fields: []Field{
			{Name: "name", Type: "string", Required: true, MaxLength: 500},
			{Name: "description", Type: "string", Required: true, MaxLength: 10000},
		}}},
		Delete: &Request{Method: "DELETE", Path: "/rest/v1/projects?id=eq.{id}", Header: rep},
		Upsert: &Request{Method: "POST", Path: "/rest/v1/projects", Header: map[string]string{"Prefer": "resolution=merge-duplicates," + prefer}},
	}
	tasks := &Resource{
		Name:    "/rest/v1/tasks",
		Create:  &Request{Method: "POST", Path: "/rest/v1/tasks", Header: rep},
		IDField: "id",
		Fields: []Field{
			tenantID,
			{Name: "project_id", Type: "string", Format: "uuid", Required: true, Ref: "projects"},
			{Name: "title", Type: "string", Required: true, MinLength: 1, MaxLength: 500},
		},
		Read: []*Request{{Method: "GET", Path: "/rest/v1/tasks?id=eq.{id}"}},
		List: &Request{Method: "GET", Path: "/rest/v1/tasks?order=created_at.desc"},
		Filters: []Filter{
			{Check: "filter-id", Query: "id=eq.{id}"},
			{Check: "filter-value", Query: "title=eq.{v:title}"},
			{Check: "filter-tenant", Query: "tenant_id=eq.{tenant}"},
		},
		Update: []*Request{{Method: "PATCH", Path: "/rest/v1/tasks?id=eq.{id}", Header: rep, Fields: []Field{
			{Name: "title", Type: "string", Required: true, MaxLength: 500},
			{Name: "done", Type: "boolean", Required: true},
		}}},
		Delete: &Request{Method: "DELETE", Path: "/rest/v1/tasks?id=eq.{id}", Header: rep},
		Upsert: &Request{Method: "POST", Path: "/rest/v1/tasks", Header: map[string]string{"Prefer": "resolution=merge-duplicates," + prefer}},
	}
	// Tenants are made by platform admins, so B's is found, not created.
	// DELETE /v1/tenants/{id} is not tried: were it to work, it would
	// offboard B for good. The PATCH sets the status B already has.
	tenants := &Resource{
		Name:    "/v1/tenants",
		Own:     &Request{Method: "GET", Path: "/v1/tenants"},
		IDField: "id",
		Markers: []string{"uuid"},
		Read: []*Request{
			{Method: "GET", Path: "/v1/tenants/{id}"},
			{Method: "GET", Path: "/v1/tenants/{id}/users"},
		},
		List:   &Request{Method: "GET", Path: "/v1/tenants"},
		Update: []*Request{{Method: "PATCH", Path: "/v1/tenants/{id}", Fields: []Field{{Name: "status", Type: "string", Required: true, Enum: []any{"active"}}}}},
	}
	return &API{Name: "bulkhead", Resources: []*Resource{projects, tasks, tenants},
		Notes: []string{"DELETE /v1/tenants/{id} is not tried: if it worked it would offboard tenant B for good"}}
}
