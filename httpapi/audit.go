package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// actionOf names a request's action for the audit trail.
func actionOf(r *http.Request) string {
	switch r.Pattern {
	case "POST /v1/tenants":
		return "tenants:Create"
	case "GET /v1/tenants":
		return "tenants:List"
	case "GET /v1/tenants/{id}":
		return "tenants:Get"
	case "PATCH /v1/tenants/{id}":
		return "tenants:Update"
	case "DELETE /v1/tenants/{id}":
		return "tenants:Delete"
	case "POST /v1/tenants/{id}/users":
		return "users:Create"
	case "GET /v1/tenants/{id}/users":
		return "users:List"
	case "POST /v1/auth/token":
		return "auth:Login"
	case "POST /v1/auth/context":
		return "auth:VendContext"
	case "GET /v1/audit":
		return "audit:Read"
	case "POST /v1/tenants/batch":
		return "tenants:Create"
	case "GET /v1/policies":
		return "policies:List"
	case "PUT /v1/policies/{name}":
		return "policies:Put"
	case "DELETE /v1/policies/{name}":
		return "policies:Delete"
	case "POST /v1/policies/simulate":
		return "policies:Simulate"
	case "GET /v1/alarms":
		return "alarms:Read"
	}
	if strings.HasSuffix(r.Pattern, " /rest/v1/{table}") {
		if c := commandOf[r.Method]; c != "" {
			return "data:" + strings.ToUpper(c[:1]) + c[1:]
		}
	}
	return "http:" + r.Method
}

func resourceOf(r *http.Request, p tenant.Principal) string {
	t := string(p.TenantID)
	if t == "" {
		t = "-"
	}
	if table := r.PathValue("table"); table != "" {
		return "brn:bulkhead:data:" + t + ":table/" + table
	}
	if id := r.PathValue("id"); id != "" {
		return "brn:bulkhead:control:" + t + ":tenant/" + id
	}
	return "brn:bulkhead:control:" + t + ":" + r.URL.Path
}

// maxResource bounds an event's resource, which carries the request's
// path: a tenant's user sending long paths (up to the server's 64 KiB of
// headers) would otherwise write that much to the trail with each denial.
const maxResource = 512

// clip cuts s to at most n bytes, marking the cut. A cut inside a UTF-8
// sequence is recorded as U+FFFD.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…(clipped)"
}

// event builds an audit event for r.
func event(r *http.Request, decision, code string, status int) audit.Event {
	p, _ := tenant.FromContext(r.Context())
	var ip string
	if a := sourceIP(r); a.IsValid() {
		ip = a.String()
	}
	ua := clip(r.UserAgent(), 200)
	var stmt string
	if i := requestInfoFrom(r.Context()); i != nil {
		stmt = i.decision.statement
	}
	return audit.Event{
		Statement: stmt,
		At:        time.Now(), RequestID: requestIDFrom(r.Context()), TenantID: string(p.TenantID), Tenant: string(p.Tenant),
		Subject: p.Subject, Role: string(p.Role), Action: actionOf(r), Resource: clip(resourceOf(r, p), maxResource),
		Decision: decision, Code: code, Status: status, SourceIP: ip, UserAgent: ua, Visibility: audit.VisibleTenant,
	}
}

// record makes e durable before the caller answers. Isolation: an answer
// whose event could not be written is not sent as a success.
func (s *Server) record(r *http.Request, e audit.Event) error {
	if s.audit == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := s.audit.Record(ctx, e); err != nil {
		return &fault.Error{Kind: fault.Unavailable, Code: "audit_unavailable", Message: "The audit trail cannot record this request right now.", Err: err}
	}
	return nil
}

// changeCtx returns the request's context carrying the actor of the
// control-plane change it makes: the change writes its audit event in its
// own transaction, so both commit or neither does.
func (s *Server) changeCtx(r *http.Request) context.Context {
	e := event(r, audit.Allow, "", 0)
	return postgres.WithActor(r.Context(), postgres.Actor{Subject: e.Subject, Role: e.Role,
		RequestID: e.RequestID, SourceIP: e.SourceIP, UserAgent: e.UserAgent, Statement: e.Statement})
}

// auditScanWindow is how many of its events one GET /v1/audit by a
// tenant's user examines at most (postgres.EventFilter.MaxScan).
const auditScanWindow = 5000

// listAudit serves GET /v1/audit: platform admins see every tenant's
// events (and cross-tenant probe findings); a tenant admin sees only its
// own tenant's, and never those visible to platform admins only.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	var caller *tenant.Tenant // a tenant's user's tenant; nil for platform admins
	if !p.Platform {
		t, err := s.callerTenant(r.Context(), p)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		caller = t
		if _, err := s.decide(r, p, t, policy.AuditRead, policy.ControlResource(string(t.ID), policy.KindAudit, ""), nil); err != nil {
			s.writeError(w, r, err)
			return
		}
		// Isolation of load: a tenant's read holds one of its transaction
		// slots, as a data request does.
		release, ok := s.holdSlot(w, r, t)
		if !ok {
			return
		}
		defer release()
	}
	q := r.URL.Query()
	f := postgres.EventFilter{PlatformOnly: p.Platform}
	str := func(k string) *string {
		if v := q.Get(k); v != "" {
			return &v
		}
		return nil
	}
	f.Subject, f.Action, f.Decision = str("principal"), str("action"), str("decision")
	if p.Platform {
		if slug := q.Get("tenant"); slug != "" {
			t, err := s.pg.FindTenantBySlug(r.Context(), tenant.Slug(slug), true)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			id := string(t.ID)
			f.TenantID = &id
		}
	} else {
		// Isolation: a tenant admin's filter is pinned to its own tenant,
		// whatever the query says.
		id := string(p.TenantID)
		f.TenantID = &id
		if slug := q.Get("tenant"); slug != "" && tenant.Slug(slug) != p.Tenant {
			s.writeError(w, r, tenant.ErrNotFound)
			return
		}
	}
	for _, tp := range []struct {
		k string
		t **time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(tp.k); v != "" {
			tm, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.writeError(w, r, fault.Errorf(fault.Invalid, "invalid_parameter", "%s must be an RFC 3339 time.", tp.k))
				return
			}
			*tp.t = &tm
		}
	}
	var err error
	after := q.Get("after")
	switch {
	case after == "":
	case !p.Platform:
		// Isolation: a tenant's user pages by its own events' ids. The
		// chain's sequence numbers count every tenant's events, so they
		// would tell it how much the others do.
		f.AfterEvent = &after
	default:
		if f.After, err = strconv.ParseInt(after, 10, 64); err != nil || f.After < 0 {
			s.writeError(w, r, fault.E(fault.Invalid, "invalid_parameter", "after must be a sequence number."))
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 1000 {
			s.writeError(w, r, fault.E(fault.Invalid, "invalid_parameter", "limit must be between 1 and 1000."))
			return
		}
	}
	if !p.Platform {
		f.OmitSeq = true
		// Isolation of load: a tenant's read examines at most a window of
		// its events, so a filter that matches little costs each request
		// about what a page costs, however long the tenant's trail.
		f.MaxScan = auditScanWindow
	}
	// A tenant's read is charged to its budget of statement time, as its
	// data requests are.
	var sp spend
	if caller != nil {
		var retry time.Duration
		if sp, retry, err = s.quota.beginTime(r.Context(), caller); err != nil { //bulkhead:ok per-tenant counters keyed by the verified tenant UUID, no tenant data
			setRetryAfter(w, retry)
			s.writeError(w, r, err)
			return
		}
	}
	var page postgres.EventPage
	err = s.quota.spendTime(sp, func(took *time.Duration) error { //bulkhead:ok per-tenant counters keyed by the verified tenant UUID, no tenant data
		began := time.Now()
		defer func() { *took = time.Since(began) }()
		var ferr error
		page, ferr = s.pg.FindEvents(r.Context(), f)
		return ferr
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if page.Events == nil {
		page.Events = []json.RawMessage{}
	}
	// When nothing was examined, the next page starts where this one did.
	var next any = page.Next
	switch {
	case !p.Platform && page.NextEvent != "":
		next = page.NextEvent
	case !p.Platform:
		next = after
	case page.Next == 0:
		next = f.After
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": page.Events, "next_after": next})
}

// listAlarms serves GET /v1/alarms: every alarm's state (firing or
// resolved, since when, why), for platform administrators only.
func (s *Server) listAlarms(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	if !p.Platform {
		s.writeError(w, r, errPlatformOnly)
		return
	}
	var out []audit.Alarm
	if s.alarms != nil {
		out = s.alarms.State()
	}
	if out == nil {
		out = []audit.Alarm{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alarms": out})
}
