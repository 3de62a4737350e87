package httpapi

import (
	"context"
	"net/http"
	"regexp"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// decisionNote carries the deciding statement of a request to its audit
// event (in requestInfo).
type decisionNote struct{ statement string }

// noteDecision keeps d's deciding statement for r's audit event.
func noteDecision(r *http.Request, d policy.Decision) {
	if i := requestInfoFrom(r.Context()); i != nil {
		i.decision.statement = d.Statement
	}
}

// decide evaluates a tenant principal's request against its tenant's
// policies, bounded by its plan's template, before any SQL runs. Platform
// administrators are not subject to tenant policies. A deny is a 403
// policy_denied; the deciding statement goes to the audit event.
func (s *Server) decide(r *http.Request, p tenant.Principal, t *tenant.Tenant, action, resource string, leading []string) (policy.Decision, error) {
	if p.Platform {
		return s.decidePlatform(r, action, resource)
	}
	tp, err := s.db.Policies(r.Context(), t)
	if err != nil {
		return policy.Decision{}, err
	}
	req := policy.Request{Action: action, Resource: resource, Time: time.Now(), SourceIP: sourceIP(r)}
	if leading != nil {
		req.Context = map[string][]string{policy.KeyLeadingKeys: leading}
	}
	pp := policy.Principal{TenantID: t.ID, Tier: tp.Plan, Role: p.Role}
	d := policy.EvaluateWithBoundary(req, pp, tp.Boundary, tp.Policies)
	noteDecision(r, d)
	if !d.Allowed() {
		return d, fault.Errorf(fault.Denied, "policy_denied", "A policy denies %s on this resource: %s", action, d.Reason)
	}
	return d, nil
}

// platformPolicy is what platform administrators may do: administer the
// control plane, and nothing in tenants' data (the data API also refuses
// them outright).
var platformPolicy = func() *policy.Document {
	d, err := policy.Parse([]byte(`{"Version": "2012-10-17", "Id": "bulkhead-platform", "Statement": [
		{"Sid": "PlatformAdministration", "Effect": "Allow",
		 "Action": ["tenants:*", "users:*", "policies:*", "audit:*", "keys:*"], "Resource": "brn:bulkhead:control:*"},
		{"Sid": "PlatformNeverReadsTenantData", "Effect": "Deny", "Action": "data:*", "Resource": "*"}]}`))
	if err != nil {
		panic(err) // a programmer error, caught by every test
	}
	return d
}()

// decidePlatform decides a platform administrator's request by the
// platform policy, so that it too has a deciding statement in the trail.
func (s *Server) decidePlatform(r *http.Request, action, resource string) (policy.Decision, error) {
	d := policy.Evaluate(policy.Request{Action: action, Resource: resource, Time: time.Now(), SourceIP: sourceIP(r)}, policy.Principal{}, platformPolicy)
	noteDecision(r, d)
	if !d.Allowed() {
		return d, fault.Errorf(fault.Denied, "policy_denied", "A policy denies %s on this resource: %s", action, d.Reason)
	}
	return d, nil
}

// callerTenantKey holds, in a request's context, the tenant that
// authenticate resolved for its principal.
type callerTenantKey struct{}

// callerTenant returns the tenant principal's own tenant: the one
// authenticate resolved for this request, or else from the catalog.
func (s *Server) callerTenant(ctx context.Context, p tenant.Principal) (*tenant.Tenant, error) {
	if t, ok := ctx.Value(callerTenantKey{}).(*tenant.Tenant); ok && t.ID == p.TenantID {
		return t, nil
	}
	return s.db.ResolveTenant(ctx, p)
}

var policyName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// policyTarget is the tenant whose policies a request manages: the
// caller's own, or for a platform admin the one named by ?tenant=.
func (s *Server) policyTarget(r *http.Request, p tenant.Principal) (*tenant.Tenant, error) {
	if p.Platform {
		slug, err := tenant.ParseSlug(r.URL.Query().Get("tenant"))
		if err != nil {
			return nil, fault.E(fault.Invalid, "tenant_required", "Platform administrators name the tenant with ?tenant=.")
		}
		return s.pg.FindTenantBySlug(r.Context(), slug, false)
	}
	return s.callerTenant(r.Context(), p)
}

type policiesResponse struct {
	Tenant   string         `json:"tenant"`
	Plan     string         `json:"plan"`
	Template any            `json:"template"`
	Policies []storedPolicy `json:"policies"`
}

type storedPolicy struct {
	Name      string    `json:"name"`
	Document  any       `json:"document"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	t, err := s.policyTarget(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.decide(r, p, t, policy.PoliciesList, policy.ControlResource(string(t.ID), policy.KindPolicy, ""), nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	stored, err := s.pg.FindPolicies(r.Context(), t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := policiesResponse{Tenant: string(t.Slug), Plan: t.Plan, Template: rawJSON(policy.TemplateJSON(t.Plan)), Policies: []storedPolicy{}}
	for _, sp := range stored {
		out.Policies = append(out.Policies, storedPolicy{Name: sp.Name, Document: rawJSON([]byte(sp.Document)), UpdatedAt: sp.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	name := r.PathValue("name")
	if !policyName.MatchString(name) {
		s.writeError(w, r, fault.E(fault.Invalid, "invalid_policy_name", "A policy name is 1 to 64 letters, digits, '_' or '-'."))
		return
	}
	t, err := s.policyTarget(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.decide(r, p, t, policy.PoliciesPut, policy.ControlResource(string(t.ID), policy.KindPolicy, name), nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := readBody(w, r, s.maxBody)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := policy.Parse(body); err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := s.pg.PutPolicy(s.changeCtx(r), t.ID, name, string(body))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.db.ForgetPolicies(t.ID)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, storedPolicy{Name: name, Document: rawJSON(body), UpdatedAt: time.Now().UTC()})
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	name := r.PathValue("name")
	t, err := s.policyTarget(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.decide(r, p, t, policy.PoliciesDelete, policy.ControlResource(string(t.ID), policy.KindPolicy, name), nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.pg.DeletePolicy(s.changeCtx(r), t.ID, name); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.db.ForgetPolicies(t.ID)
	w.WriteHeader(http.StatusNoContent)
}

type simulateRequest struct {
	Action   string              `json:"action"`
	Resource string              `json:"resource"`
	Context  map[string][]string `json:"context"`
	Role     string              `json:"role"`   // platform admins: the role to simulate
	Policy   any                 `json:"policy"` // an unsaved document to add
}

type simulateResponse struct {
	Decision  string `json:"decision"` // "allow", "explicit_deny", "implicit_deny"
	Statement string `json:"statement,omitempty"`
	Reason    string `json:"reason"`
}

// simulatePolicy answers what the policies would decide for a request, and
// which statement decides, for the caller (or, for a platform admin, a
// principal of ?tenant= with the given role). It changes nothing.
func (s *Server) simulatePolicy(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	t, err := s.policyTarget(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.decide(r, p, t, policy.PoliciesSimulate, policy.ControlResource(string(t.ID), policy.KindPolicy, ""), nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req simulateRequest
	if err := decodeBody(w, r, s.maxBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Action == "" || req.Resource == "" {
		s.writeError(w, r, fault.E(fault.Invalid, "invalid_body", `"action" and "resource" are required.`))
		return
	}
	tp, err := s.db.Policies(r.Context(), t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	docs := tp.Policies
	if req.Policy != nil {
		b, _ := jsonMarshal(req.Policy)
		d, err := policy.Parse(b)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		docs = append(append([]*policy.Document{}, docs...), d)
	}
	role := p.Role
	if p.Platform || req.Role != "" {
		role = tenant.Role(req.Role)
		if !p.Platform && role != p.Role {
			s.writeError(w, r, fault.E(fault.Denied, "policy_denied", "Only platform administrators simulate another role."))
			return
		}
	}
	d := policy.EvaluateWithBoundary(policy.Request{Action: req.Action, Resource: req.Resource, Time: time.Now(), SourceIP: sourceIP(r), Context: req.Context},
		policy.Principal{TenantID: t.ID, Tier: tp.Plan, Role: role}, tp.Boundary, docs)
	out := simulateResponse{Statement: d.Statement, Reason: d.Reason}
	switch d.Effect {
	case policy.Allow:
		out.Decision = "allow"
	case policy.ExplicitDeny:
		out.Decision = "explicit_deny"
	default:
		out.Decision = "implicit_deny"
	}
	writeJSON(w, http.StatusOK, out)
}
