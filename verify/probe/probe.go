package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config says what to probe and as whom.
type Config struct {
	// BaseURL is prefixed to every path: "https://api.example.com/v2".
	BaseURL string
	API     *API
	// TokenA is the attacker's bearer token, TokenB the victim's. They
	// must belong to two different tenants. B creates the canaries, so
	// B's token needs the right to create (and, for the clean-up, to
	// delete) each resource.
	TokenA, TokenB string
	// Client sends the requests; nil means a client with a 30-second
	// timeout. Redirects are never followed.
	Client *http.Client
	// Keep leaves B's canaries in place after the run.
	Keep bool
	// Progress receives one line per stage; nil discards them.
	Progress io.Writer
	Now      func() time.Time // nil means time.Now
	Rand     io.Reader        // nil means crypto/rand
}

// maxBody bounds what the probe reads of one answer.
const maxBody = 4 << 20

// Run creates canaries as tenant B, attacks them as tenant A and with
// tokens derived from A's, and cleans up. The error is for a run that
// could not start (no API, equal tokens), or ctx's error when it was
// canceled: then the report holds the checks that ran, and the clean-up
// still runs, for up to two minutes. Everything else, including failed
// requests, is in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.API == nil || len(cfg.API.Resources) == 0 {
		return nil, errors.New("probe: no resources to probe")
	}
	if cfg.TokenA == "" || cfg.TokenB == "" {
		return nil, errors.New("probe: both tenants' tokens are required")
	}
	if cfg.TokenA == cfg.TokenB {
		return nil, errors.New("probe: tenant A's and tenant B's tokens are the same")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
	}
	// Isolation: never follow a redirect; the answer to A is what A gets.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := &runner{
		cfg:     cfg,
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		client:  client,
		m:       &maker{rand: cfg.Rand, now: cfg.Now},
		current: map[*Resource]*canary{},
		ownA:    map[string]*canary{},
		control: map[string]bool{},
		idsA:    map[string]bool{},
		noAuth:  map[string]*response{},
	}
	start := cfg.Now()
	rep := &Report{Target: cfg.BaseURL, API: cfg.API.Name, Started: start, Notes: slices.Clone(cfg.API.Notes)}
	r.facts = tamper(cfg.TokenA, cfg.TokenB, start, r.m)
	for _, v := range Variants {
		if why, ok := r.facts.skipped[v]; ok {
			r.note("token %s not tried: %s", v, why)
		}
	}
	if r.facts.tenantB == "" {
		r.note("B's tenant is unknown (B's token holds no tenant-like claim): filter-tenant and plant checks, and the %s token, are skipped", TenantHeader)
	}
	r.run(ctx)
	if ctx.Err() != nil {
		r.note("interrupted: not every check ran")
	}
	rep.Results = r.results
	rep.Notes = append(rep.Notes, r.notes...)
	rep.Duration = cfg.Now().Sub(start)
	rep.count()
	return rep, ctx.Err()
}

// canary is one object of tenant B's that the checks aim at (or, for
// A's own objects, one that A's bodies refer to).
type canary struct {
	res    *Resource
	id     string
	values map[string]string // field path → canary value
	// verifiable: B's own read of the object shows its values, so a
	// change can be seen.
	verifiable bool
	// blind says why B cannot read the object back (no read, a paged
	// list that does not show it): then nothing tells whether a write
	// changed it, and writes are judged by their answers alone.
	blind string
	// seen is the object as B's item read showed it at first, if it did.
	seen  map[string]any
	owned bool // created by the probe, to be deleted afterwards
	// lost: a leak deleted or changed it and no new one could be made, so
	// later writes on it prove nothing.
	lost bool
}

func (c *canary) target(tenant string) *target {
	return &target{id: c.id, tenant: tenant, values: c.values}
}

type runner struct {
	cfg     Config
	base    string
	client  *http.Client
	m       *maker
	facts   tokenFacts
	current map[*Resource]*canary // B's object each resource's checks aim at
	made    []*canary             // every B object the probe made, in order
	ownA    map[string]*canary    // A's own objects, by resource short name
	madeA   []*canary
	control map[string]bool // spec key → B sees its data with it
	// idsA are short ids (under markerLen) that name objects of A's own:
	// from A's lists before the canaries were made, and from A's creates.
	// Where ids are numbered per tenant (1, 2, 3), B's id may be one.
	idsA    map[string]bool
	noAuth  map[string]*response // spec key → the answer without a token
	results []Result
	notes   []string
}

func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "probe: "+format+"\n", args...)
	}
}

func (r *runner) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// send sends s with token ("" sends no Authorization header). An answer
// of 429 is not a verdict on isolation but the API's rate limit: send
// waits as long as its Retry-After says (at most maxRetryAfter) and tries
// again, a few times, before it takes the 429 as the answer.
func (r *runner) send(ctx context.Context, s spec, token string) (*response, error) {
	for try := 1; ; try++ {
		res, err := r.sendOnce(ctx, s, token)
		if err != nil || res.status != http.StatusTooManyRequests || try == maxRateLimited {
			return res, err
		}
		wait := retryAfter(res.header.Get("Retry-After"))
		r.progress("rate-limited on %s %s; waiting %s", s.method, s.path, wait)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// maxRateLimited is how many 429s in a row send takes before it keeps
// one as the answer; maxRetryAfter bounds the wait after each.
const (
	maxRateLimited = 5
	maxRetryAfter  = 10 * time.Second
)

// retryAfter reads a Retry-After of whole seconds, bounded to
// [1s, maxRetryAfter]; anything else (an HTTP date, garbage) waits 1s.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 {
		return time.Second
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

func (r *runner) sendOnce(ctx context.Context, s spec, token string) (*response, error) {
	var body io.Reader
	if s.body != nil {
		body = bytes.NewReader(s.body)
	}
	req, err := http.NewRequestWithContext(ctx, s.method, r.base+s.path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if s.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range s.header {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	res, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b, dur: time.Since(start)}, nil
}

// build fills a request template for t, with an optional JSON body.
func build(req *Request, t *target, body map[string]any) (spec, error) {
	p, err := expand(req.Path, t)
	if err != nil {
		return spec{}, err
	}
	s := spec{method: req.Method, path: p, header: req.Header}
	if body != nil {
		s.body, err = json.Marshal(body)
		if err != nil {
			return spec{}, err
		}
	}
	return s, nil
}

// markers is everything of B's that A must never see.
func (r *runner) markers() []marker {
	var out []marker
	have := map[string]bool{}
	add := func(v, what string) {
		if !have[v] && (len(v) >= markerLen || (what == "B's id" && v != "")) {
			have[v] = true
			out = append(out, marker{v, what})
		}
	}
	seen := map[*canary]bool{}
	all := append(slices.Clone(r.made), mapValues(r.current)...)
	for _, c := range all {
		if seen[c] {
			continue
		}
		seen[c] = true
		// An id that also names one of A's own objects (ids numbered per
		// tenant) is no sign of B's object. Only the probe's canaries
		// are new: an id B had before (its tenant) is always B's.
		if !c.owned || !r.idsA[c.id] {
			add(c.id, "B's id")
		}
		keys := make([]string, 0, len(c.values))
		for k := range c.values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if c.owned {
				add(c.values[k], "B's canary in "+k)
			} else {
				add(c.values[k], "B's "+k)
			}
		}
	}
	add(r.facts.tenantB, "B's tenant")
	for _, v := range r.facts.tenantsB {
		add(v, "B's tenant")
	}
	for _, v := range r.facts.idsB {
		add(v, "B's identity claim")
	}
	return out
}

func mapValues(m map[*Resource]*canary) []*canary {
	var out []*canary
	for _, c := range m {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *canary) int { return strings.Compare(a.res.Name, b.res.Name) })
	return out
}

// unsent returns the markers in the answer that the request did not carry.
func unsent(resp *response, s spec, ms []marker) (hits, echoed []marker) {
	for _, m := range find(resp.body, ms) {
		if s.sent(m.value) {
			echoed = append(echoed, m)
		} else {
			hits = append(hits, m)
		}
	}
	return hits, echoed
}

// ownID records id, of an object A made, among A's short ids.
func (r *runner) ownID(id string) {
	if id != "" && len(id) < markerLen {
		r.idsA[id] = true
	}
}

// baseline reads A's lists before B has any canary, and records the short
// ids of A's own objects that they hold.
func (r *runner) baseline(ctx context.Context) {
	for _, res := range r.cfg.API.Resources {
		if res.List == nil || templated(res.List.Path) {
			continue
		}
		s, err := build(res.List, &target{}, nil)
		if err != nil {
			continue
		}
		resp, err := r.send(ctx, s, r.cfg.TokenA)
		if err != nil || !resp.ok() {
			continue
		}
		for _, v := range jsonValues(resp.body) {
			if idLike(v.key) || v.key == res.IDField {
				r.ownID(v.value)
			}
		}
	}
}

// run is the whole procedure: canaries, checks per resource, clean-up.
func (r *runner) run(ctx context.Context) {
	api := r.cfg.API
	r.baseline(ctx)
	r.progress("creating canaries as tenant B")
	for _, res := range order(api.Resources) {
		c, err := r.setup(ctx, res)
		if err != nil {
			r.results = append(r.results, Result{Suite: res.Name, Check: "canary", Token: "B", Method: methodOf(res), Path: pathOf(res),
				URL: pathOf(res), Verdict: Error, Reason: "could not make B's canary, so nothing was checked here: " + err.Error()})
			continue
		}
		r.current[res] = c
	}
	for _, res := range order(api.Resources) {
		if r.current[res] == nil || ctx.Err() != nil {
			continue
		}
		r.progress("attacking %s as tenant A", res.Name)
		r.checks(ctx, res)
	}
	if r.cfg.Keep {
		r.note("canaries kept: %d of B's objects", len(r.made))
		return
	}
	r.progress("cleaning up")
	// The canaries are removed even when the run was interrupted.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	r.cleanup(cctx)
}

func methodOf(res *Resource) string {
	if res.Create != nil {
		return res.Create.Method
	}
	if res.Own != nil {
		return res.Own.Method
	}
	return ""
}

func pathOf(res *Resource) string {
	if res.Create != nil {
		return res.Create.Path
	}
	if res.Own != nil {
		return res.Own.Path
	}
	return res.Name
}

// order puts a resource after those its fields refer to.
func order(rs []*Resource) []*Resource {
	var out []*Resource
	done := map[*Resource]bool{}
	byName := map[string]*Resource{}
	for _, res := range rs {
		byName[res.short()] = res
	}
	var visit func(res *Resource, depth int)
	visit = func(res *Resource, depth int) {
		if done[res] || depth > len(rs) {
			return
		}
		for _, f := range res.Fields {
			if dep := byName[f.Ref]; dep != nil && dep != res {
				visit(dep, depth+1)
			}
		}
		if !done[res] {
			done[res] = true
			out = append(out, res)
		}
	}
	for _, res := range rs {
		visit(res, 0)
	}
	return out
}

// refsB returns the ids of B's current objects, by resource short name,
// for the foreign keys among fields (only the required ones when
// requiredOnly). A resource's own id is never among them: a new canary
// must not depend on the one it may replace.
func (r *runner) refsB(self *Resource, fields []Field, requiredOnly bool) map[string]string {
	out := map[string]string{}
	for _, f := range fields {
		if f.Ref == "" || f.Ref == self.short() || (requiredOnly && !f.Required) {
			continue
		}
		for res, c := range r.current {
			if res.short() == f.Ref && c.id != "" && !c.lost {
				out[f.Ref] = c.id
			}
		}
	}
	return out
}

// setup makes (or, for a resource B does not create, finds) B's canary,
// and reads it back as B to learn whether changes to it can be seen.
func (r *runner) setup(ctx context.Context, res *Resource) (*canary, error) {
	var c *canary
	switch {
	case res.Create != nil:
		var err error
		if c, err = r.createB(ctx, res, r.refsB(res, res.Fields, false)); err != nil {
			return nil, err
		}
		// A resource that refers to itself (parent_id) gets a child too,
		// so that a filter on the parent finds something of B's.
		for _, f := range res.Fields {
			if f.Ref == res.short() && c.id != "" {
				refs := r.refsB(res, res.Fields, false)
				refs[f.Ref] = c.id
				if _, err := r.createB(ctx, res, refs); err != nil {
					r.note("%s: B could not create a child of its canary: %v", res.Name, err)
				}
				break
			}
		}
	case res.Own != nil:
		s, err := build(res.Own, &target{}, nil)
		if err != nil {
			return nil, err
		}
		resp, err := r.send(ctx, s, r.cfg.TokenB)
		if err != nil {
			return nil, err
		}
		o := firstObject(resp.body)
		if !resp.ok() || o == nil {
			return nil, fmt.Errorf("%s %s as B answered %d without an object", s.method, s.path, resp.status)
		}
		c = &canary{res: res, id: idOf(resp, res.IDField), values: map[string]string{}}
		for _, k := range res.Markers {
			if v, ok := o[k].(string); ok && v != "" {
				c.values[k] = v
			}
		}
	default:
		return nil, errors.New("the resource has no create request")
	}
	if c.id == "" {
		r.note("%s: no id in the answer to B's create (no %q property, no Location header): checks by id are skipped", res.Name, res.IDField)
		return c, nil
	}
	st, err := r.inspect(ctx, c, nil)
	switch {
	case err != nil:
		c.blind = fmt.Sprintf("B could not read its canary back (%v)", err)
	case st == stateGone && len(res.Read) == 0:
		c.blind = "B's list does not show B's canary (a paged list?) and there is no item read"
	case st == stateGone:
		c.blind = "B's own read does not find its canary"
	case st == stateUnknown:
		c.blind = "the API has no read or list to read B's canary back"
	default:
		c.verifiable = st == statePresent
		if !c.verifiable {
			r.note("%s: B's own read does not show the canary values: a changed object cannot be told apart", res.Name)
		}
	}
	if c.blind != "" {
		r.note("%s: %s: writes on it are judged by their answers alone, and are inconclusive when they succeed", res.Name, c.blind)
	}
	return c, nil
}

// createB creates one of B's objects with the given foreign keys.
func (r *runner) createB(ctx context.Context, res *Resource, refs map[string]string) (*canary, error) {
	vals := map[string]string{}
	s, err := build(res.Create, &target{}, r.m.body(res.Fields, refs, vals))
	if err != nil {
		return nil, err
	}
	resp, err := r.send(ctx, s, r.cfg.TokenB)
	if err != nil {
		return nil, err
	}
	if !resp.ok() {
		return nil, fmt.Errorf("%s %s as B answered %d", s.method, s.path, resp.status)
	}
	c := &canary{res: res, id: idOf(resp, res.IDField), values: vals, owned: true}
	r.made = append(r.made, c)
	return c, nil
}

type state int

const (
	stateUnknown state = iota // B has no way to read the object
	statePresent              // there, with all its canary values
	stateThere                // there; values not shown or not known
	stateChanged              // there, but values differ or hold A's
	stateGone                 // B cannot find it
)

// inspect reads c as B: with the resource's first read, else by looking
// for its id in B's list.
func (r *runner) inspect(ctx context.Context, c *canary, aVals map[string]string) (state, error) {
	res := c.res
	var s spec
	var err error
	byList := false
	switch {
	case len(res.Read) > 0:
		s, err = build(res.Read[0], c.target(r.facts.tenantB), nil)
	case res.List != nil:
		s, err = build(res.List, c.target(r.facts.tenantB), nil)
		byList = true
	default:
		return stateUnknown, nil
	}
	if err != nil {
		return stateUnknown, err
	}
	resp, err := r.send(ctx, s, r.cfg.TokenB)
	if err != nil {
		return stateUnknown, err
	}
	switch {
	case resp.status == http.StatusNotFound || resp.status == http.StatusGone || (resp.ok() && empty(resp.body)):
		return stateGone, nil
	case !resp.ok():
		// Not an answer about the object: B's token may have expired.
		return stateUnknown, fmt.Errorf("%s %s as B answered %d", s.method, s.path, resp.status)
	}
	if byList && len(find(resp.body, []marker{{c.id, "id"}})) == 0 {
		return stateGone, nil
	}
	if !byList {
		o := firstObject(resp.body)
		if c.seen == nil {
			c.seen = o
		}
		// An enum or boolean A's update set ("=status"), now in B's
		// object where it was not before.
		for k, v := range aVals {
			name, set := strings.CutPrefix(k, "=")
			if !set || o == nil || o[name] == nil {
				continue
			}
			if old, ok := c.seen[name]; ok && fmt.Sprint(old) != v && fmt.Sprint(o[name]) == v {
				return stateChanged, nil
			}
		}
	}
	// Changed means B's values are gone from B's own read. A's values
	// next to them are no proof: a read that also returns A's objects
	// with the same id (PostgREST's upsert makes one) is a different
	// leak, which the read checks report.
	if c.verifiable {
		for _, v := range c.values {
			if !strings.Contains(string(resp.body), v) {
				return stateChanged, nil
			}
		}
		return statePresent, nil
	}
	for k, v := range aVals {
		if !strings.HasPrefix(k, "=") && strings.Contains(string(resp.body), v) {
			return stateChanged, nil
		}
	}
	if len(c.values) == 0 {
		return stateThere, nil
	}
	for _, v := range c.values {
		if !strings.Contains(string(resp.body), v) {
			return stateThere, nil
		}
	}
	return statePresent, nil
}

// ensure makes sure B's canary for res still exists, making a new one if
// an earlier leak deleted it (or a parent it depended on).
func (r *runner) ensure(ctx context.Context, res *Resource) {
	c := r.current[res]
	if c == nil || !c.owned || c.id == "" || c.lost || c.blind != "" {
		return
	}
	if st, err := r.inspect(ctx, c, nil); err != nil || st != stateGone {
		return
	}
	r.replace(ctx, res)
}

// replace makes a fresh canary for res after a leak changed or deleted
// the current one.
func (r *runner) replace(ctx context.Context, res *Resource) {
	if res.Create == nil {
		return // bulkhead's tenant: there is only one
	}
	for _, dep := range res.Fields {
		for other := range r.current {
			if other != res && other.short() == dep.Ref {
				r.ensure(ctx, other)
			}
		}
	}
	c, err := r.setup(ctx, res)
	if err != nil {
		r.note("%s: could not make a new canary after a leak: %v", res.Name, err)
		r.current[res].lost = true
		return
	}
	r.current[res] = c
}

// own returns A's own object of the resource named short, making it the
// first time: A's bodies refer to it where they need a foreign key.
func (r *runner) own(ctx context.Context, short string) (string, error) {
	if c, ok := r.ownA[short]; ok {
		return c.id, nil
	}
	var res *Resource
	for _, x := range r.cfg.API.Resources {
		if x.short() == short && x.Create != nil {
			res = x
		}
	}
	if res == nil {
		return "", fmt.Errorf("A needs its own %s and the API has no way to create one", short)
	}
	refs := map[string]string{}
	for _, f := range res.Fields {
		if f.Ref != "" && f.Ref != short {
			id, err := r.own(ctx, f.Ref)
			if err != nil {
				return "", err
			}
			refs[f.Ref] = id
		}
	}
	vals := map[string]string{}
	s, err := build(res.Create, &target{}, r.m.body(res.Fields, refs, vals))
	if err != nil {
		return "", err
	}
	resp, err := r.send(ctx, s, r.cfg.TokenA)
	if err != nil {
		return "", err
	}
	id := idOf(resp, res.IDField)
	if !resp.ok() || id == "" {
		return "", fmt.Errorf("A could not create its own %s: %s %s answered %d", short, s.method, s.path, resp.status)
	}
	r.ownID(id)
	c := &canary{res: res, id: id, values: vals, owned: true}
	r.ownA[short] = c
	r.madeA = append(r.madeA, c)
	return id, nil
}

// refsA returns, for every foreign key in fields, an id of A's own, except
// for the resource aimed at, which gets B's id.
func (r *runner) refsA(ctx context.Context, fields []Field, aim string, id string) (map[string]string, error) {
	refs := map[string]string{}
	for _, f := range fields {
		if f.Ref == "" || f.Ref == aim {
			continue
		}
		if !f.Required {
			continue
		}
		own, err := r.own(ctx, f.Ref)
		if err != nil {
			return nil, err
		}
		refs[f.Ref] = own
	}
	if aim != "" {
		refs[aim] = id
	}
	return refs, nil
}

// remove deletes what a create answered with, best effort, with the
// first of toks that may: the checks that create (reference, plant,
// upsert) clean up at once, so that nothing they made carries B's id into
// later answers.
func (r *runner) remove(ctx context.Context, res *Resource, resp *response, toks ...string) {
	if resp == nil || !resp.ok() || res.Delete == nil {
		return
	}
	id := idOf(resp, res.IDField)
	if id == "" {
		return
	}
	s, err := build(res.Delete, &target{id: id}, nil)
	if err != nil {
		return
	}
	for _, tok := range toks {
		if d, err := r.send(ctx, s, tok); err == nil && d.ok() {
			return
		}
	}
	r.note("%s: could not delete an object the probe created (%s %s)", res.Name, s.method, s.path)
}

func (r *runner) cleanup(ctx context.Context) {
	del := func(c *canary, tok, who string) {
		if c.res.Delete == nil {
			r.note("%s: no DELETE request, %s's object %s is left in place", c.res.Name, who, c.id)
			return
		}
		s, err := build(c.res.Delete, &target{id: c.id}, nil)
		if err != nil {
			return
		}
		resp, err := r.send(ctx, s, tok)
		switch {
		case err != nil:
			r.note("clean-up: %s %s as %s failed: %v", s.method, s.path, who, err)
		case !resp.ok() && resp.status != http.StatusNotFound && resp.status != http.StatusGone:
			r.note("clean-up: %s %s as %s answered %d; delete it by hand", s.method, s.path, who, resp.status)
		}
	}
	for i := len(r.madeA) - 1; i >= 0; i-- {
		del(r.madeA[i], r.cfg.TokenA, "A")
	}
	for i := len(r.made) - 1; i >= 0; i-- {
		if c := r.made[i]; c.owned && c.id != "" {
			del(c, r.cfg.TokenB, "B")
		}
	}
}
