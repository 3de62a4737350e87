package probe

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// kind says how a check's answers are judged.
type kind int

const (
	kindRead   kind = iota // reads: B's data must not be in the answer
	kindWrite              // writes on B's object: B's object must not change
	kindCreate             // A creates something that names B's object
	kindPlant              // A creates something in B's tenant
)

// check is one request template aimed at B's data, sent as A and then
// with every tampered token.
type check struct {
	res   *Resource
	name  string
	kind  kind
	req   *Request // method, path template and headers
	query string   // a filter's query, appended to req.Path
	// body builds the body for a target; aVals collects A's own canary
	// values in it. Nil for requests without a body.
	body func(ctx context.Context, t *target, aVals map[string]string) (map[string]any, error)
	// created is the resource a kindCreate or kindPlant request creates,
	// deleted again at once.
	created *Resource
}

// token is one way of presenting A.
type token struct{ name, value string }

func (r *runner) tokens() []token {
	out := []token{{TokenA, r.cfg.TokenA}}
	for _, v := range r.facts.variants {
		out = append(out, token{v.name, v.token})
	}
	return out
}

// checks runs every check of res.
func (r *runner) checks(ctx context.Context, res *Resource) {
	r.ensure(ctx, res)
	list := []check{}
	for _, rd := range res.Read {
		list = append(list, check{res: res, name: "read", kind: kindRead, req: rd})
	}
	if res.List != nil {
		list = append(list, check{res: res, name: "list", kind: kindRead, req: res.List})
		for _, f := range res.Filters {
			list = append(list, check{res: res, name: f.Check, kind: kindRead, req: res.List, query: f.Query})
		}
	}
	// Foreign keys of any resource that point here: A's own object
	// naming B's.
	for _, other := range r.cfg.API.Resources {
		if other.Create == nil {
			continue
		}
		for _, f := range other.Fields {
			if f.Ref != res.short() {
				continue
			}
			other, f := other, f
			list = append(list, check{res: res, name: "reference", kind: kindCreate, req: other.Create, created: other,
				body: func(ctx context.Context, t *target, aVals map[string]string) (map[string]any, error) {
					refs, err := r.refsA(ctx, other.Fields, f.Ref, t.id)
					if err != nil {
						return nil, err
					}
					b := r.m.body(other.Fields, refs, aVals)
					b[f.Name] = t.id
					return b, nil
				}})
		}
	}
	if tf := res.tenantField(); tf != nil && res.Create != nil {
		list = append(list, check{res: res, name: "plant", kind: kindPlant, req: res.Create, created: res,
			body: func(ctx context.Context, t *target, aVals map[string]string) (map[string]any, error) {
				if t.tenant == "" {
					return nil, fmt.Errorf("B's tenant is unknown")
				}
				// The planted object refers to B's objects, so that only
				// the tenant check can refuse it.
				b := r.m.body(res.Fields, r.refsB(res, res.Fields, true), aVals)
				b[tf.Name] = t.tenant
				return b, nil
			}})
	}
	if res.Upsert != nil {
		list = append(list, check{res: res, name: "upsert", kind: kindWrite, req: res.Upsert, created: res,
			body: func(ctx context.Context, t *target, aVals map[string]string) (map[string]any, error) {
				refs, err := r.refsA(ctx, res.Fields, "", "")
				if err != nil {
					return nil, err
				}
				b := r.m.body(res.Fields, refs, aVals)
				b[res.IDField] = t.id
				return b, nil
			}})
	}
	for _, up := range res.Update {
		list = append(list, check{res: res, name: "update", kind: kindWrite, req: up,
			body: func(ctx context.Context, t *target, aVals map[string]string) (map[string]any, error) {
				refs, err := r.refsA(ctx, up.Fields, "", "")
				if err != nil {
					return nil, err
				}
				return r.m.body(up.Fields, refs, aVals), nil
			}})
	}
	if res.Delete != nil {
		list = append(list, check{res: res, name: "delete", kind: kindWrite, req: res.Delete})
	}
	for _, c := range list {
		if ctx.Err() != nil {
			return
		}
		r.runCheck(ctx, c)
	}
}

// spec builds the check's request for target t.
func (r *runner) spec(ctx context.Context, c check, t *target) (spec, map[string]string, error) {
	req := *c.req
	if c.query != "" {
		sep := "?"
		if strings.Contains(req.Path, "?") {
			sep = "&"
		}
		req.Path += sep + c.query
	}
	aVals := map[string]string{}
	var body map[string]any
	if c.body != nil {
		var err error
		if body, err = c.body(ctx, t, aVals); err != nil {
			return spec{}, nil, err
		}
	}
	s, err := build(&req, t, body)
	return s, aVals, err
}

// aims reports whether the request carries one of B's values (its id, a
// canary value, its tenant): only then does a decoy twin mean anything.
func aims(c check) bool {
	return templated(c.req.Path) || templated(c.query) || c.kind == kindCreate || c.kind == kindPlant || c.name == "upsert"
}

// runCheck sends c as A and with each tampered token, and judges each
// answer.
func (r *runner) runCheck(ctx context.Context, c check) {
	for _, tok := range r.tokens() {
		cur := r.current[c.res]
		if cur.lost && c.kind == kindWrite {
			r.results = append(r.results, Result{Suite: c.res.Name, Check: c.name, Token: tok.name, Method: c.req.Method,
				Path: c.req.Path, URL: c.req.Path, Verdict: Skip, Reason: "an earlier leak destroyed B's canary and no new one could be made"})
			continue
		}
		t := cur.target(r.facts.tenantB)
		s, aVals, err := r.spec(ctx, c, t)
		res := Result{Suite: c.res.Name, Check: c.name, Token: tok.name, Method: c.req.Method, Path: c.req.Path + queryOf(c)}
		if err != nil {
			res.URL = res.Path
			res.Verdict, res.Reason = Skip, "cannot build the request: "+err.Error()
			r.results = append(r.results, res)
			return // the same for every token
		}
		res.URL = s.path
		resp, err := r.send(ctx, s, tok.value)
		if err != nil {
			res.Verdict, res.Reason = Error, err.Error()
			r.results = append(r.results, res)
			continue
		}
		res.Status, res.Duration = resp.status, resp.dur
		r.judge(ctx, c, tok, cur, t, s, aVals, resp, &res)
		if c.created != nil && resp.ok() {
			// Isolation: only a plant may have made B's object; anything
			// else is deleted with the token that made it, never B's,
			// since an upsert's id is B's canary's.
			toks := []string{tok.value}
			if c.kind == kindPlant {
				toks = append(toks, r.cfg.TokenB)
			}
			r.remove(ctx, c.created, resp, toks...)
		}
		r.results = append(r.results, res)
	}
}

func queryOf(c check) string {
	if c.query == "" {
		return ""
	}
	if strings.Contains(c.req.Path, "?") {
		return "&" + c.query
	}
	return "?" + c.query
}

// judge sets res's verdict for one answer.
func (r *runner) judge(ctx context.Context, c check, tok token, cur *canary, t *target, s spec, aVals map[string]string, resp *response, res *Result) {
	ms := r.markers()
	hits, echoed := unsent(resp, s, ms)
	leak := func(reason string, m *marker) {
		res.Verdict, res.Reason = Leak, reason
		if m != nil {
			res.Evidence = evidence(resp.body, *m)
		}
	}
	// Whatever the check: B's data in the answer, which A did not send.
	if len(hits) > 0 {
		leak(fmt.Sprintf("the answer holds %s", describe(hits)), &hits[0])
	}
	// A write, or anything that may have acted as B: look at B's object.
	if c.kind == kindWrite && cur.id != "" {
		st, err := r.inspect(ctx, cur, aVals)
		switch {
		case err != nil && res.Verdict != Leak:
			res.Verdict, res.Reason = Error, fmt.Sprintf("%d, but B could not re-read its object to see what the request did: %v", resp.status, err)
			return
		case st == stateGone && res.Verdict != Leak:
			leak(fmt.Sprintf("B's object is gone after this request (%d)", resp.status), nil)
		case st == stateChanged && res.Verdict != Leak:
			leak(fmt.Sprintf("B's object changed after this request (%d)", resp.status), nil)
		}
		if st == stateGone || st == stateChanged {
			r.replace(ctx, c.res)
		}
	}
	if c.kind == kindPlant && resp.ok() && res.Verdict != Leak {
		if seen, err := r.bSees(ctx, c.res, aVals); err == nil && seen {
			leak("B now has the object A created with B's tenant", nil)
		}
	}
	if res.Verdict == Leak {
		return
	}
	if tok.name != TokenA {
		r.judgeTampered(ctx, s, tok, resp, res)
		return
	}
	// A's own token.
	var decoy *decoyResult
	if aims(c) && c.kind != kindWrite && c.kind != kindPlant {
		decoy = r.decoy(ctx, c, t)
	}
	if resp.ok() && len(echoed) > 0 && c.kind == kindRead && decoy != nil && !r.echoes(decoy) {
		leak(fmt.Sprintf("the answer holds %s, which a random value in its place does not bring back", describe(echoed)), &echoed[0])
		return
	}
	if resp.ok() && decoy != nil && decoy.resp != nil && !decoy.resp.ok() && (c.kind == kindCreate || c.name == "read") {
		what := "found B's object"
		if c.kind == kindCreate {
			what = "accepted a reference to B's object"
		}
		leak(fmt.Sprintf("the server %s: %d for B's id, %d for a random one", what, resp.status, decoy.resp.status), nil)
		return
	}
	res.Verdict = Pass
	switch {
	case c.kind == kindWrite:
		res.Reason = fmt.Sprintf("%d; B's object is unchanged", resp.status)
		if !cur.verifiable {
			res.Reason = fmt.Sprintf("%d; B's object is still there (its values cannot be compared)", resp.status)
		}
	case c.kind == kindPlant:
		res.Reason = fmt.Sprintf("%d; B has no object of A's", resp.status)
	case resp.ok():
		res.Reason = fmt.Sprintf("%d without B's data", resp.status)
	default:
		res.Reason = fmt.Sprintf("%d", resp.status)
	}
	if decoy != nil && decoy.resp != nil {
		if decoy.resp.status == resp.status {
			res.Reason += ", as with random values in place of B's"
		} else {
			res.Reason += fmt.Sprintf("; random values in place of B's get %d, so the answer tells that B's object exists", decoy.resp.status)
		}
	}
	if c.kind == kindRead {
		if sees, err := r.controlSees(ctx, s); err == nil && !sees {
			res.Verdict = Inconclusive
			res.Reason = "B's own token does not see B's canary with this request either, so it proves nothing (" + res.Reason + ")"
		}
	}
}

// judgeTampered judges a tampered token's answer that held none of B's
// data: any success means the server accepted a token that cannot verify.
func (r *runner) judgeTampered(ctx context.Context, s spec, tok token, resp *response, res *Result) {
	if !resp.ok() {
		res.Verdict, res.Reason = Pass, fmt.Sprintf("refused: %d", resp.status)
		return
	}
	na, ok := r.noAuth[s.key()]
	if !ok {
		var err error
		if na, err = r.send(ctx, s, ""); err != nil {
			na = nil
		}
		r.noAuth[s.key()] = na
	}
	if na != nil && na.ok() {
		res.Verdict, res.Reason = Pass, fmt.Sprintf("%d, but the endpoint answers %d without any token: it is public", resp.status, na.status)
		return
	}
	res.Verdict, res.Reason = Leak, fmt.Sprintf("%d: the server accepted %s", resp.status, accepted[tok.name])
}

// accepted says what the server took, for each tampered variant.
var accepted = map[string]string{
	AlgNone:     "an unsigned token (alg none): anyone can make a token for any tenant",
	NoSignature: "A's token without its signature: anyone can make a token for any tenant",
	TenantClaim: "A's token with the tenant claim changed to B's, so it does not check the signature",
	KidSwap:     "A's token with another key id, so it does not check the signature over the header",
	Expired:     "A's token with exp an hour ago (its signature broken by the change): expired and altered tokens work",
}

// decoyResult is the answer to a check's decoy twin.
type decoyResult struct {
	resp  *response
	value string // what stood in for B's values
	vals  []string
}

// decoy sends c with random values in place of B's: its id, canary values
// and tenant. An answer that differs tells what B's values did.
func (r *runner) decoy(ctx context.Context, c check, t *target) *decoyResult {
	d := &target{id: r.m.decoy(t.id), tenant: r.m.decoy(t.tenant), values: map[string]string{}}
	out := &decoyResult{vals: []string{d.id}}
	for k := range t.values {
		d.values[k] = r.m.canary()
		out.vals = append(out.vals, d.values[k])
	}
	if t.tenant != "" {
		out.vals = append(out.vals, d.tenant)
	}
	s, _, err := r.spec(ctx, c, d)
	if err != nil {
		return out
	}
	resp, err := r.send(ctx, s, r.cfg.TokenA)
	if err != nil {
		return out
	}
	out.resp = resp
	if c.created != nil && resp.ok() {
		r.remove(ctx, c.created, resp, r.cfg.TokenA)
	}
	return out
}

// echoes reports whether the decoy's answer repeats a decoy value: then
// the API echoes what it is sent, and an echo of B's value means nothing.
func (r *runner) echoes(d *decoyResult) bool {
	if d.resp == nil {
		return true // no evidence either way; do not call it a leak
	}
	for _, v := range d.vals {
		if v != "" && strings.Contains(string(d.resp.body), v) {
			return true
		}
	}
	return false
}

// controlSees sends s as B: a read that cannot show B its own canary
// cannot show it to A either.
func (r *runner) controlSees(ctx context.Context, s spec) (bool, error) {
	if v, ok := r.control[s.key()]; ok {
		return v, nil
	}
	resp, err := r.send(ctx, s, r.cfg.TokenB)
	if err != nil {
		return false, err
	}
	v := resp.ok() && len(find(resp.body, r.markers())) > 0
	r.control[s.key()] = v
	return v, nil
}

// bSees reports whether B's list of res holds any of vals.
func (r *runner) bSees(ctx context.Context, res *Resource, vals map[string]string) (bool, error) {
	if res.List == nil || len(vals) == 0 {
		return false, nil
	}
	s, err := build(res.List, &target{}, nil)
	if err != nil {
		return false, err
	}
	resp, err := r.send(ctx, s, r.cfg.TokenB)
	if err != nil || resp.status != http.StatusOK && !resp.ok() {
		return false, err
	}
	for _, v := range vals {
		if strings.Contains(string(resp.body), v) {
			return true, nil
		}
	}
	return false, nil
}

// describe names the markers found: "B's canary in title and B's id".
func describe(ms []marker) string {
	var parts []string
	seen := map[string]bool{}
	for _, m := range ms {
		if !seen[m.what] {
			seen[m.what] = true
			parts = append(parts, m.what)
		}
	}
	if len(parts) > 3 {
		parts = append(parts[:3], "more")
	}
	switch len(parts) {
	case 1:
		return parts[0]
	default:
		return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
	}
}
