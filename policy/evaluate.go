package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/tenant"
)

// Request is what a principal asks to do.
type Request struct {
	Action   string // such as [DataSelect]; matched without regard to case
	Resource string // such as DataResource(id, "orders"); matched with regard to case

	// Time is aws:CurrentTime and aws:EpochTime; the zero Time leaves them
	// absent. The caller passes its clock in: evaluation never reads one.
	Time time.Time
	// SourceIP is aws:SourceIp; the zero Addr leaves it absent.
	SourceIP netip.Addr
	// SourceIPUnknown says the request has a source address that the
	// caller does not know, such as the scope of a context minted for a
	// function's later statements. Decided for the worst case: a Deny
	// statement with a condition on aws:SourceIp is taken to apply, and
	// an Allow statement with one is taken not to. (Absent, the key would
	// make such a Deny drop out.)
	SourceIPUnknown bool
	// Context holds every other request key, such as [KeyLeadingKeys]. Keys
	// are matched without regard to case and must not differ only in case.
	// A key present with no values is an empty set (see the package doc).
	// Keys that name a principal's attribute (bulkhead:TenantID,
	// aws:PrincipalTag/…) or a typed field above are ignored here.
	Context map[string][]string
}

// Principal is who asks: the attributes of a verified caller that policies
// can test.
type Principal struct {
	TenantID tenant.ID   // bulkhead:TenantID; empty for none
	Tier     string      // bulkhead:Tier, such as [TierBasic]; empty for none
	Role     tenant.Role // bulkhead:Role; empty for none
	// Tags are bulkhead:PrincipalTag/<key> (and aws:PrincipalTag/<key>).
	// Tag keys are matched without regard to case and must not differ only
	// in case.
	Tags map[string]string
}

// Effect is the outcome of an evaluation. The zero value is ImplicitDeny.
type Effect uint8

// The effects.
const (
	ImplicitDeny Effect = iota // no statement allowed the request
	Allow                      // a statement allowed it and none denied it
	ExplicitDeny               // a statement denied it (or the input was unusable)
)

// String returns the effect's name.
func (e Effect) String() string {
	switch e {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Decision is the result of [Evaluate].
type Decision struct {
	Effect Effect
	// Statement names the deciding statement: its Sid, or its place such as
	// "doc[0].Statement[2]" (or "boundary[0].Statement[1]") when it has no
	// Sid. It is empty for an implicit deny.
	Statement string
	// Reason says why, in a sentence safe to show to the caller.
	Reason string
}

// Allowed reports whether d allows the request.
func (d Decision) Allowed() bool { return d.Effect == Allow }

// The reasons. Constant, so that a decision costs no allocation when the
// deciding statement has a Sid.
const (
	reasonAllow        = "an Allow statement matched and no Deny statement did"
	reasonDeny         = "a Deny statement matched"
	reasonNoAllow      = "no statement allows the request"
	reasonBoundaryDeny = "a Deny statement of the permissions boundary matched"
	reasonBoundary     = "the policies allow the request but the permissions boundary does not"
)

// Evaluate decides a request by AWS's logic for identity policies: a
// matching Deny statement in any document wins; otherwise a matching Allow
// statement allows; otherwise the request is implicitly denied. Among
// several matching statements, the first (by document, then statement)
// is named.
//
// Documents should come from [Parse] or have passed [Document.Validate]. An
// invalid or nil document, or a request whose Context or principal Tags
// have keys that differ only in case, fails closed with ExplicitDeny.
func Evaluate(req Request, p Principal, docs ...*Document) Decision {
	e := env{req: &req, p: &p}
	if msg := e.check(); msg != "" {
		return Decision{Effect: ExplicitDeny, Reason: msg}
	}
	return evaluate(&e, "doc", docs)
}

// EvaluateWithBoundary decides a request for a principal whose permissions
// are bounded by a permissions boundary: the request is allowed only when
// the policies allow it and the boundary allows it too (the effective
// permissions are the intersection), and a Deny in either wins. An empty
// boundary allows nothing; use [Evaluate] for a principal without one.
func EvaluateWithBoundary(req Request, p Principal, boundary, policies []*Document) Decision {
	e := env{req: &req, p: &p}
	if msg := e.check(); msg != "" {
		return Decision{Effect: ExplicitDeny, Reason: msg}
	}
	d := evaluate(&e, "doc", policies)
	if d.Effect == ExplicitDeny {
		return d
	}
	b := evaluate(&e, "boundary", boundary)
	switch {
	case b.Effect == ExplicitDeny:
		if b.Reason == reasonDeny {
			b.Reason = reasonBoundaryDeny
		}
		return b
	case d.Effect != Allow:
		return d
	case b.Effect != Allow:
		return Decision{Effect: ImplicitDeny, Reason: reasonBoundary}
	}
	return d
}

// check rejects keys that differ only in case: which one a policy would
// see is undefined.
func (e *env) check() string {
	if k1, k2, ok := caseCollision(e.req.Context); ok {
		return fmt.Sprintf("the request context has keys %s and %s that differ only in case", quote(k1), quote(k2))
	}
	if k1, k2, ok := caseCollision(e.p.Tags); ok {
		return fmt.Sprintf("the principal has tags %s and %s that differ only in case", quote(k1), quote(k2))
	}
	return ""
}

func caseCollision[V any](m map[string]V) (string, string, bool) {
	if len(m) < 2 {
		return "", "", false
	}
	for a := range m {
		for b := range m {
			if a < b && strings.EqualFold(a, b) {
				return a, b, true
			}
		}
	}
	return "", "", false
}

func evaluate(e *env, kind string, docs []*Document) Decision {
	var allow *compiledStmt
	allowDoc := 0
	for i, d := range docs {
		if d == nil {
			return Decision{Effect: ExplicitDeny, Statement: fmt.Sprintf("%s[%d]", kind, i), Reason: "the document is nil"}
		}
		c := d.compiled
		if c == nil {
			var err error
			if c, err = d.compile(); err != nil {
				return Decision{Effect: ExplicitDeny, Statement: fmt.Sprintf("%s[%d]", kind, i), Reason: "the document is invalid: " + err.Error()}
			}
		}
		for j := range c.stmts {
			s := &c.stmts[j]
			if (allow != nil && !s.deny) || !s.applies(e) {
				continue
			}
			if s.deny {
				return Decision{Effect: ExplicitDeny, Statement: s.ref(kind, i), Reason: reasonDeny}
			}
			allow, allowDoc = s, i
		}
	}
	if allow != nil {
		return Decision{Effect: Allow, Statement: allow.ref(kind, allowDoc), Reason: reasonAllow}
	}
	return Decision{Effect: ImplicitDeny, Reason: reasonNoAllow}
}

func (s *compiledStmt) ref(kind string, doc int) string {
	if s.sid != "" {
		return s.sid
	}
	return fmt.Sprintf("%s[%d].Statement[%d]", kind, doc, s.index)
}

// applies reports whether the statement matches the request: its action,
// its resource and every condition.
func (s *compiledStmt) applies(e *env) bool {
	matched := false
	for i := range s.actions {
		if glob(s.actions[i].toks, e.req.Action, true, e) {
			matched = true
			break
		}
	}
	if matched == s.notAction {
		return false
	}
	if s.notResource {
		// Isolation: an entry whose variable has no value keeps the
		// statement from applying, rather than excluding nothing and
		// so applying everywhere.
		for i := range s.resources {
			m, ok := s.resources[i].match(e.req.Resource, e)
			if m || !ok {
				return false
			}
		}
	} else {
		matched = false
		for i := range s.resources {
			if m, _ := s.resources[i].match(e.req.Resource, e); m {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	for i := range s.conds {
		if e.req.SourceIPUnknown && s.conds[i].key.kind == kSourceIP {
			if s.deny {
				continue // the worst case for a Deny: it applies
			}
			return false // and for an Allow: it does not
		}
		if !s.conds[i].eval(e) {
			return false
		}
	}
	return true
}
