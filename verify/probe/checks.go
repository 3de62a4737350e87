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

// TenantHeader is A's own token sent with headers that name B's tenant
// (tenantHeaders): an API that lets a header choose the tenant serves B's
// data to it. Its answers are judged like those to A's token.
const TenantHeader = "tenant-header"

// tenantHeaders are the headers TenantHeader sets to B's tenant.
var tenantHeaders = []string{"X-Tenant-Id", "X-Org-Id", "X-Account-Id", "X-Tenant"}

// token is one way of presenting A.
type token struct {
	name, value string
	// own: the token is A's valid one, so a success is no leak by itself.
	own    bool
	header map[string]string // sent with every request
	sent   []string          // B's values written into the token
}

func (r *runner) tokens() []token {
	out := []token{{name: TokenA, value: r.cfg.TokenA, own: true}}
	for _, v := range r.facts.variants {
		out = append(out, token{name: v.name, value: v.token, sent: v.sent})
	}
	if r.facts.tenantB != "" {
		h := map[string]string{}
		for _, k := range tenantHeaders {
			h[k] = r.facts.tenantB
		}
		out = append(out, token{name: TenantHeader, value: r.cfg.TokenA, own: true, header: h})
	}
	return out
}

// withToken adds tok's headers and token values to s.
func withToken(s spec, tok token) spec {
	if len(tok.header) > 0 {
		h := make(map[string]string, len(s.header)+len(tok.header))
		for k, v := range s.header {
			h[k] = v
		}
		for k, v := range tok.header {
			h[k] = v
		}
		s.header = h
	}
	s.inToken = tok.sent
	return s
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
				return r.m.update(up.Fields, refs, aVals, r.current[res].seen), nil
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
		s = withToken(s, tok)
		resp, err := r.send(ctx, s, tok.value)
		if err != nil {
			res.Verdict, res.Reason = Error, err.Error()
			r.results = append(r.results, res)
			continue
		}
		res.Status, res.Duration = resp.status, resp.dur
		r.judge(ctx, c, tok, cur, t, s, aVals, resp, &res)
		if c.created != nil && resp.ok() && tok.own {
			r.ownID(idOf(resp, c.created.IDField))
		}
		if c.created != nil && resp.ok() {
			// Isolation: only a plant, or a create with the tenant
			// header, may have made B's object; anything else is deleted
			// with the token that made it, never B's, since an upsert's
			// id is B's canary's.
			toks := []string{tok.value}
			if c.kind == kindPlant || c.kind == kindCreate && len(tok.header) > 0 {
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
	// A write, or anything that may have acted as B: look at B's object,
	// unless B cannot read it back (then only the answers tell).
	if c.kind == kindWrite && cur.id != "" && cur.blind == "" {
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
	unsure := ""
	if c.kind == kindPlant && resp.ok() && res.Verdict != Leak {
		seen, why, err := r.bSees(ctx, c.res, resp, aVals)
		switch {
		case err != nil:
			unsure = fmt.Sprintf("B could not look for the object A created: %v", err)
		case seen:
			leak("B now has the object A created with B's tenant", nil)
		default:
			unsure = why
		}
	}
	if res.Verdict == Leak {
		return
	}
	if !tok.own {
		r.judgeTampered(ctx, s, tok, resp, res)
		return
	}
	// A's own token, alone or with headers.
	var decoy *decoyResult
	if aims(c) && c.kind != kindPlant && c.name != "upsert" {
		decoy = r.decoy(ctx, c, t, tok)
	}
	if resp.ok() && len(echoed) > 0 && c.kind == kindRead && decoy != nil && !r.echoes(decoy) {
		leak(fmt.Sprintf("the answer holds %s, which a random value in its place does not bring back", describe(echoed)), &echoed[0])
		return
	}
	if resp.ok() && decoy.missing(c.kind == kindCreate) && (c.kind == kindCreate || c.kind == kindWrite || c.name == "read") {
		what := "found B's object"
		switch c.kind {
		case kindCreate:
			what = "accepted a reference to B's object"
		case kindWrite:
			what = "acted on B's object"
		}
		if r.idsA[t.id] {
			res.Verdict = Inconclusive
			res.Reason = fmt.Sprintf("%d for B's id, %d for a random one, but B's id %s also names an object of A's own (ids are not unique across tenants), so the status proves nothing",
				resp.status, decoy.resp.status, t.id)
			return
		}
		leak(fmt.Sprintf("the server %s: %d for B's id, %d for a random one", what, resp.status, decoy.resp.status), nil)
		return
	}
	res.Verdict = Pass
	switch {
	case c.kind == kindWrite && cur.blind != "" && resp.ok():
		res.Verdict = Inconclusive
		res.Reason = fmt.Sprintf("%d, but %s, so what the request did to B's object cannot be seen", resp.status, cur.blind)
	case c.kind == kindWrite && cur.blind != "":
		res.Reason = fmt.Sprintf("refused: %d (%s: judged by the answer alone)", resp.status, cur.blind)
	case c.kind == kindWrite && resp.ok() && c.body != nil && !visible(cur, aVals):
		res.Verdict = Inconclusive
		res.Reason = fmt.Sprintf("%d, but the body changes nothing B's read of its object shows, so a change cannot be seen", resp.status)
	case c.kind == kindWrite:
		res.Reason = fmt.Sprintf("%d; B's object is unchanged", resp.status)
		if !cur.verifiable {
			res.Reason = fmt.Sprintf("%d; B's object is still there (its values cannot be compared)", resp.status)
		}
	case c.kind == kindPlant && unsure != "":
		res.Verdict = Inconclusive
		res.Reason = fmt.Sprintf("%d, but %s", resp.status, unsure)
	case c.kind == kindPlant:
		res.Reason = fmt.Sprintf("%d; B has no object of A's", resp.status)
	case resp.ok():
		res.Reason = fmt.Sprintf("%d without B's data", resp.status)
	default:
		res.Reason = fmt.Sprintf("%d", resp.status)
	}
	if decoy != nil && decoy.resp != nil {
		switch {
		case malformed(decoy.resp.status) && c.kind != kindCreate:
			res.Reason += fmt.Sprintf("; random values in place of B's get %d (refused as malformed), so the statuses are not compared", decoy.resp.status)
		case decoy.resp.status == resp.status:
			res.Reason += ", as with random values in place of B's"
		default:
			res.Reason += fmt.Sprintf("; random values in place of B's get %d, so the answer tells that B's object exists", decoy.resp.status)
		}
	}
	if c.kind == kindRead && res.Verdict == Pass {
		if sees, err := r.controlSees(ctx, s, c, cur); err == nil && !sees {
			res.Verdict = Inconclusive
			res.Reason = "B's own token does not see B's canary with this request either, so it proves nothing (" + res.Reason + ")"
		}
	}
}

// malformed reports whether a status refuses a request as malformed
// rather than answering about the object it names.
func malformed(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusUnprocessableEntity
}

// visible reports whether the body of a write (its values in aVals) could
// change anything B's read of cur shows: a canary value of A's, or an enum
// or boolean property that B's read holds.
func visible(cur *canary, aVals map[string]string) bool {
	for k := range aVals {
		name, set := strings.CutPrefix(k, "=")
		if !set {
			return true
		}
		if _, ok := cur.seen[name]; ok {
			return true
		}
	}
	return false
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

// missing reports whether the decoy got an answer about a missing object:
// an error other than one for a malformed request (400, 422), which may
// be about the decoy's format. For a create (a reference), 400 and 422
// count: they are the usual answer to a reference to a missing object,
// and the decoy has the shape of B's id.
func (d *decoyResult) missing(create bool) bool {
	return d != nil && d.resp != nil && !d.resp.ok() && (create || !malformed(d.resp.status))
}

// decoy sends c as tok with random values in place of B's: its id, canary
// values and tenant (in tok's headers too). An answer that differs tells
// what B's values did.
func (r *runner) decoy(ctx context.Context, c check, t *target, tok token) *decoyResult {
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
	if len(tok.header) > 0 {
		h := map[string]string{}
		for k := range tok.header {
			h[k] = d.tenant
		}
		s = withToken(s, token{header: h})
	}
	resp, err := r.send(ctx, s, tok.value)
	if err != nil {
		return out
	}
	out.resp = resp
	if c.created != nil && resp.ok() {
		r.ownID(idOf(resp, c.created.IDField))
		r.remove(ctx, c.created, resp, tok.value)
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
// cannot show it to A either. For the list and its filters, only B's
// canary itself counts (its id or values), not B's other rows: B's older
// rows on the first page of a paged list say nothing about the canary.
func (r *runner) controlSees(ctx context.Context, s spec, c check, cur *canary) (bool, error) {
	key := s.key()
	if v, ok := r.control[key]; ok {
		return v, nil
	}
	resp, err := r.send(ctx, spec{method: s.method, path: s.path, header: c.req.Header, body: s.body}, r.cfg.TokenB)
	if err != nil {
		return false, err
	}
	ms := r.markers()
	if c.req == c.res.List {
		ms = canaryMarkers(cur)
	}
	v := resp.ok() && len(find(resp.body, ms)) > 0
	r.control[key] = v
	return v, nil
}

// canaryMarkers are c's id and values.
func canaryMarkers(c *canary) []marker {
	var out []marker
	if c.id != "" {
		out = append(out, marker{c.id, "B's id"})
	}
	for _, v := range c.values {
		if len(v) >= markerLen {
			out = append(out, marker{v, "B's canary"})
		}
	}
	return out
}

// bSees reports whether B can see the object A's plant created: B's item
// read of the id in A's answer, else B's list. When neither can tell
// (no id or no item read, and B's list does not show B's own canary
// either), why says so.
func (r *runner) bSees(ctx context.Context, res *Resource, created *response, vals map[string]string) (seen bool, why string, err error) {
	if id := idOf(created, res.IDField); id != "" && len(res.Read) > 0 {
		s, err := build(res.Read[0], &target{id: id, tenant: r.facts.tenantB}, nil)
		if err == nil {
			resp, err := r.send(ctx, s, r.cfg.TokenB)
			if err != nil {
				return false, "", err
			}
			if !resp.ok() || empty(resp.body) {
				return false, "", nil
			}
			// B's read finds it; when the answer names the owner, it is
			// B's only if that is B's tenant (a read that ignores tenants
			// finds A's own object too, which the read check reports).
			if tf := res.tenantField(); tf != nil {
				if o := firstObject(resp.body); o != nil && o[tf.Name] != nil {
					return fmt.Sprint(o[tf.Name]) == r.facts.tenantB, "", nil
				}
			}
			return true, "", nil
		}
	}
	if res.List == nil {
		return false, "B has no read or list to look for it", nil
	}
	s, err := build(res.List, &target{tenant: r.facts.tenantB}, nil)
	if err != nil {
		return false, "", err
	}
	resp, err := r.send(ctx, s, r.cfg.TokenB)
	if err != nil {
		return false, "", err
	}
	if !resp.ok() {
		return false, "", fmt.Errorf("%s %s as B answered %d", s.method, s.path, resp.status)
	}
	for _, v := range vals {
		if strings.Contains(string(resp.body), v) {
			return true, "", nil
		}
	}
	if cur := r.current[res]; cur == nil || len(find(resp.body, canaryMarkers(cur))) == 0 {
		return false, "B's list does not show B's own canary either (a paged list?), so it cannot show A's object", nil
	}
	return false, "", nil
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
