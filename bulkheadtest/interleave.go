// Package bulkheadtest helps users write their own negative tests: tests
// that try to make one tenant see another's data, and fail when it can.
//
// [Main] gives a test binary a real PostgreSQL, and [Start] gives a test
// a running bulkhead on a fresh database. [Env.Tenant] makes pool and silo
// tenants with users logged in, [Tenant.Insert] seeds them, and
// [Env.AssertIsolated] runs the whole negative suite of one tenant against
// another's rows: the data API, the control plane, forged tokens, and SQL
// on a business function's own login role ([Env.FunctionDB] with
// [Tenant.Context]):
//
//	func TestMain(m *testing.M) { bulkheadtest.Main(m) }
//
//	func TestIsolation(t *testing.T) {
//		env := bulkheadtest.Start(t)
//		acme := env.Tenant(t, "acme", bulkheadtest.Pool)
//		globex := env.Tenant(t, "globex", bulkheadtest.Silo)
//		acme.Insert(t, "projects", map[string]any{"name": "secret"})
//		env.AssertIsolated(t, globex, acme)
//	}
//
// [Interleave] looks for the serverless warm-start bug: a handler that runs
// for many tenants in one warm process and lets state from one invocation
// reach another (a package variable filled on first use, a logger that
// keeps attributes, a cache keyed without the tenant). It runs the handler
// for several tenants, each with its own canary strings, in one process, in
// shuffled and concurrent order, captures everything returned and logged, and
// fails the test with the evidence when anything of tenant X's contains a
// canary of tenant Y's.
package bulkheadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

// InterleaveConfig configures [Interleave].
type InterleaveConfig struct {
	// Tenants are the tenants to interleave; at least two.
	Tenants []InterleaveTenant
	// Rounds is the number of shuffled rounds after the sequential warm-up
	// pass; in each, every tenant is invoked once. Zero means 8.
	Rounds int
	// Concurrency is how many invocations of those rounds run at once.
	// Zero means 4; 1 runs them one after another.
	Concurrency int
	// Seed seeds the shuffles. Zero picks a random seed; it is logged and
	// returned, so a failure can be replayed.
	Seed uint64
	// Shared, when set, is captured too: point the handler's
	// process-wide logger or output at it (see [Recorder]).
	Shared *Recorder
	// AllowErrors lets invocations return errors. By default an
	// invocation that returns an error or panics fails the test, so a
	// handler that always fails cannot pass vacuously.
	AllowErrors bool
	// RequireOwnCanary fails any invocation whose result contains none of
	// its own tenant's canaries: proof that the run reached tenant data.
	RequireOwnCanary bool
}

// InterleaveTenant is one tenant of an [Interleave] run.
type InterleaveTenant struct {
	// Name names the tenant in failures.
	Name string
	// Canaries are strings only this tenant's data contains (a project
	// name, a config value). No canary may contain another tenant's.
	Canaries []string
	// Invoke builds one invocation of the handler for this tenant and runs
	// it, in the test's process, returning what the handler returned. It
	// must pass ctx on to the handler: ctx carries the invocation's log
	// ([LogWriter], [Logger]) and lets a [Recorder] attribute what the
	// handler logs. Invoke is called many times, concurrently.
	Invoke func(ctx context.Context) (any, error)
}

// Finding is one piece of evidence of contamination.
type Finding struct {
	Invocation int    // the invocation's sequence number, from 1; 0 for shared output
	Round      int    // 0 is the sequential warm-up pass; -1 for shared output
	Tenant     string // whose invocation; for shared output, the tenants in flight
	Owner      string // whose canary it contains
	Canary     string
	Where      string // "result", "error", "log", "shared log" or "shared output"
	Excerpt    string // the text around the canary
}

func (f Finding) String() string {
	if f.Invocation == 0 {
		return fmt.Sprintf("output written while %s ran: %s contains tenant %s's canary %q: %s",
			f.Tenant, f.Where, f.Owner, f.Canary, f.Excerpt)
	}
	return fmt.Sprintf("invocation %d (round %d) for tenant %s: %s contains tenant %s's canary %q: %s",
		f.Invocation, f.Round, f.Tenant, f.Where, f.Owner, f.Canary, f.Excerpt)
}

// InterleaveReport is what an [Interleave] run did and found.
type InterleaveReport struct {
	Seed        uint64
	Invocations int
	Findings    []Finding
}

// Interleave runs cfg's tenants' invocations in this one process and fails
// tb (with t.Errorf and the evidence) when anything returned or logged for
// one tenant contains another tenant's canary.
//
// The schedule starts with a sequential warm-up pass over every tenant, in
// shuffled order, so the second tenant always runs after the first in the
// same warm process: state kept from the first invocation (the seed's
// "cachedTenantConfig" filled on first use) is caught deterministically.
// Then come cfg.Rounds shuffled rounds, cfg.Concurrency invocations at a
// time. Every invocation gets its own log through ctx ([LogWriter],
// [Logger]); output written to cfg.Shared is attributed to the invocation
// whose ctx it was logged with, and otherwise checked against the tenants
// in flight when it was written.
//
// The check is textual: results are searched in their %+v and JSON forms
// and in every string and []byte they hold, found through pointers,
// interfaces, struct fields (unexported ones too), maps, slices and arrays
// (32 levels deep, 4 MiB of text at most); errors, panics and logs as
// text. A canary that is encoded (base64 bodies, compressed ones) is not
// found: decode such bodies in Invoke before returning them.
func Interleave(tb testing.TB, cfg InterleaveConfig) InterleaveReport {
	tb.Helper()
	if err := cfg.check(); err != nil {
		tb.Fatalf("bulkheadtest.Interleave: %v", err)
		return InterleaveReport{}
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 8
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	seed := cfg.Seed
	for seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	tb.Logf("bulkheadtest.Interleave: seed %d, %d tenants, %d rounds, concurrency %d", seed, len(cfg.Tenants), cfg.Rounds, cfg.Concurrency)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	r := &run{cfg: cfg, inFlight: make([]int, len(cfg.Tenants))}

	var warm, rest []*invocation
	for _, i := range rng.Perm(len(cfg.Tenants)) {
		warm = append(warm, r.newInvocation(i, 0))
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, i := range rng.Perm(len(cfg.Tenants)) {
			rest = append(rest, r.newInvocation(i, round))
		}
	}
	if cfg.Shared != nil {
		cfg.Shared.attach(r)
		defer cfg.Shared.detach(r)
	}
	ctx := tb.Context()
	for _, inv := range warm {
		r.invoke(ctx, inv)
	}
	jobs := make(chan *invocation)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for inv := range jobs {
				r.invoke(ctx, inv)
			}
		})
	}
	for _, inv := range rest {
		jobs <- inv
	}
	close(jobs)
	wg.Wait()

	report := InterleaveReport{Seed: seed, Invocations: len(r.all)}
	var shared []sharedWrite
	if cfg.Shared != nil {
		shared = cfg.Shared.takeOrphans(r)
	}
	for _, inv := range r.all {
		report.Findings = append(report.Findings, r.inspect(tb, inv)...)
	}
	report.Findings = append(report.Findings, r.inspectShared(shared)...)
	for _, f := range report.Findings {
		tb.Errorf("bulkheadtest.Interleave: cross-tenant contamination (seed %d): %s", seed, f)
	}
	return report
}

func (cfg InterleaveConfig) check() error {
	if len(cfg.Tenants) < 2 {
		return fmt.Errorf("need at least two tenants, have %d", len(cfg.Tenants))
	}
	names := map[string]bool{}
	for _, t := range cfg.Tenants {
		switch {
		case t.Name == "":
			return fmt.Errorf("a tenant has no name")
		case names[t.Name]:
			return fmt.Errorf("two tenants are named %q", t.Name)
		case t.Invoke == nil:
			return fmt.Errorf("tenant %q has no Invoke", t.Name)
		case len(t.Canaries) == 0:
			return fmt.Errorf("tenant %q has no canaries", t.Name)
		}
		names[t.Name] = true
		for _, c := range t.Canaries {
			if c == "" {
				return fmt.Errorf("tenant %q has an empty canary", t.Name)
			}
		}
	}
	// A canary inside another tenant's canary would be found wherever that
	// tenant's own data is: a false alarm.
	for i, t := range cfg.Tenants {
		for j, u := range cfg.Tenants {
			if i == j {
				continue
			}
			for _, c := range t.Canaries {
				for _, d := range u.Canaries {
					if strings.Contains(d, c) {
						return fmt.Errorf("tenant %q's canary %q is inside tenant %q's canary %q", t.Name, c, u.Name, d)
					}
				}
			}
		}
	}
	return nil
}

type run struct {
	cfg InterleaveConfig
	all []*invocation

	mu       sync.Mutex
	inFlight []int // invocations in flight, per tenant
}

type invocation struct {
	run                *run
	seq, round, tenant int

	log    lockedBuffer // the invocation's own log
	shared lockedBuffer // what it logged to the shared recorder
	result any
	err    error
	panic  any
}

func (r *run) newInvocation(tenant, round int) *invocation {
	inv := &invocation{run: r, seq: len(r.all) + 1, round: round, tenant: tenant}
	r.all = append(r.all, inv)
	return inv
}

func (r *run) invoke(ctx context.Context, inv *invocation) {
	r.mu.Lock()
	r.inFlight[inv.tenant]++
	r.mu.Unlock()
	defer func() {
		inv.panic = recover()
		r.mu.Lock()
		r.inFlight[inv.tenant]--
		r.mu.Unlock()
	}()
	ctx = context.WithValue(ctx, invocationKey{}, inv)
	inv.result, inv.err = r.cfg.Tenants[inv.tenant].Invoke(ctx)
}

// flying returns the tenants with an invocation in flight.
func (r *run) flying() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for i, n := range r.inFlight {
		if n > 0 {
			out = append(out, i)
		}
	}
	return out
}

func (r *run) inspect(tb testing.TB, inv *invocation) []Finding {
	tb.Helper()
	t := r.cfg.Tenants[inv.tenant]
	result := render(inv.result)
	if inv.panic != nil {
		tb.Errorf("bulkheadtest.Interleave: invocation %d for tenant %s panicked: %v", inv.seq, t.Name, inv.panic)
	} else if inv.err != nil && !r.cfg.AllowErrors {
		tb.Errorf("bulkheadtest.Interleave: invocation %d for tenant %s failed: %v", inv.seq, t.Name, inv.err)
	}
	if r.cfg.RequireOwnCanary && inv.panic == nil && !slices.ContainsFunc(t.Canaries, func(c string) bool { return strings.Contains(result, c) }) {
		tb.Errorf("bulkheadtest.Interleave: invocation %d for tenant %s returned none of its own canaries: %s", inv.seq, t.Name, excerpt(result, 0, 0))
	}
	sources := []struct{ where, text string }{
		{"result", result},
		{"log", inv.log.String()},
		{"shared log", inv.shared.String()},
	}
	if inv.err != nil {
		sources = append(sources, struct{ where, text string }{"error", inv.err.Error()})
	}
	if inv.panic != nil {
		sources = append(sources, struct{ where, text string }{"error", fmt.Sprint(inv.panic)})
	}
	var out []Finding
	for _, s := range sources {
		for owner, u := range r.cfg.Tenants {
			if owner == inv.tenant {
				continue
			}
			for _, c := range u.Canaries {
				if i := strings.Index(s.text, c); i >= 0 {
					out = append(out, Finding{Invocation: inv.seq, Round: inv.round, Tenant: t.Name, Owner: u.Name,
						Canary: c, Where: s.where, Excerpt: excerpt(s.text, i, len(c))})
				}
			}
		}
	}
	return out
}

// inspectShared checks output that no invocation's ctx claimed: a canary
// is evidence unless its tenant had an invocation in flight at the time.
func (r *run) inspectShared(ws []sharedWrite) []Finding {
	var out []Finding
	for _, w := range ws {
		var names []string
		for _, i := range w.flying {
			names = append(names, r.cfg.Tenants[i].Name)
		}
		who := strings.Join(names, ",")
		if who == "" {
			who = "(none in flight)"
		}
		for owner, u := range r.cfg.Tenants {
			if slices.Contains(w.flying, owner) {
				continue
			}
			for _, c := range u.Canaries {
				if i := strings.Index(w.text, c); i >= 0 {
					out = append(out, Finding{Round: -1, Tenant: who, Owner: u.Name,
						Canary: c, Where: "shared output", Excerpt: excerpt(w.text, i, len(c))})
				}
			}
		}
	}
	return out
}

// render is the text a result is searched in: its %+v form (strings
// unescaped), its JSON form (through pointers), and every string and
// []byte inside it (see [texts]), which neither form shows as text: a
// []byte field prints as numbers and as base64, an unexported field not
// at all in JSON.
func render(v any) string {
	if v == nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%+v\n", v)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	w := textWalker{b: &b, seen: map[walked]bool{}, limit: b.Len() + maxRenderText, visits: maxRenderVisits}
	w.walk(reflect.ValueOf(v), 0)
	return b.String()
}

// Bounds of the walk through a result: how deep it goes, how many values
// it visits, and how much text it adds.
const (
	maxRenderDepth  = 32
	maxRenderVisits = 1 << 20
	maxRenderText   = 4 << 20
)

// textWalker appends to b, one a line, every string and []byte (or byte
// array) it reaches from a value: through pointers, interfaces, struct
// fields (unexported ones too), map keys and values, and slice and array
// elements.
type textWalker struct {
	b      *strings.Builder
	seen   map[walked]bool // pointers, maps and slices already walked
	limit  int             // b's length at which the walk stops
	visits int             // values left to visit
}

type walked struct {
	p uintptr
	n int
	t reflect.Type
}

func (w *textWalker) add(s string) {
	if room := w.limit - w.b.Len(); room > 0 {
		w.b.WriteString(s[:min(len(s), room)])
		w.b.WriteByte('\n')
	}
}

// once reports whether v's pointer is walked for the first time; nil
// pointers are never walked.
func (w *textWalker) once(v reflect.Value) bool {
	k := walked{v.Pointer(), 0, v.Type()}
	if v.Kind() == reflect.Slice {
		k.n = v.Len()
	}
	if k.p == 0 || w.seen[k] {
		return false
	}
	w.seen[k] = true
	return true
}

func (w *textWalker) walk(v reflect.Value, depth int) {
	if !v.IsValid() || depth > maxRenderDepth || w.b.Len() >= w.limit || w.visits <= 0 {
		return
	}
	w.visits--
	switch v.Kind() {
	case reflect.String:
		w.add(v.String())
	case reflect.Pointer:
		if w.once(v) {
			w.walk(v.Elem(), depth+1)
		}
	case reflect.Interface:
		w.walk(v.Elem(), depth+1)
	case reflect.Struct:
		for i := range v.NumField() {
			w.walk(v.Field(i), depth+1)
		}
	case reflect.Map:
		if !w.once(v) {
			return
		}
		for it := v.MapRange(); it.Next(); {
			w.walk(it.Key(), depth+1)
			w.walk(it.Value(), depth+1)
		}
	case reflect.Slice:
		switch {
		case v.Len() == 0:
			return
		case v.Type().Elem().Kind() == reflect.Uint8:
			w.add(string(v.Bytes()))
			return
		case !w.once(v):
			return
		}
		for i := range v.Len() {
			w.walk(v.Index(i), depth+1)
		}
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			for i := range b {
				b[i] = byte(v.Index(i).Uint())
			}
			w.add(string(b))
			return
		}
		for i := range v.Len() {
			w.walk(v.Index(i), depth+1)
		}
	}
}

func excerpt(s string, i, n int) string {
	const around = 60
	lo, hi := max(0, i-around), min(len(s), i+n+around)
	out := strings.ReplaceAll(s[lo:hi], "\n", `\n`)
	if lo > 0 {
		out = "…" + out
	}
	if hi < len(s) {
		out += "…"
	}
	return out
}

type invocationKey struct{}

func invocationFrom(ctx context.Context) *invocation {
	inv, _ := ctx.Value(invocationKey{}).(*invocation)
	return inv
}

// LogWriter returns the log of the [Interleave] invocation running in ctx:
// what a handler writes there is checked for other tenants' canaries. Outside
// Interleave it returns io.Discard.
func LogWriter(ctx context.Context) io.Writer {
	if inv := invocationFrom(ctx); inv != nil {
		return &inv.log
	}
	return io.Discard
}

// Logger returns a JSON logger writing to [LogWriter](ctx).
func Logger(ctx context.Context) *slog.Logger {
	return slog.New(slog.NewJSONHandler(LogWriter(ctx), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Recorder captures process-wide output for [Interleave]: the log or
// stdout a handler shares across invocations, which is where a warm
// process leaks. Point the handler's package-level logger at
// [Recorder.Handler], or its output at the Recorder itself (an
// io.Writer), and pass it as InterleaveConfig.Shared.
//
// A record logged with a ctx of an Interleave invocation (slog's
// …Context methods, as handlers should) is attributed to that invocation
// exactly. Anything else is attributed to the tenants with an invocation in
// flight when it was written, and a canary of any other tenant in it is
// evidence. A Recorder serves one Interleave run at a time.
type Recorder struct {
	mu      sync.Mutex
	all     bytes.Buffer
	run     *run
	orphans []sharedWrite
	sink    *recorderSink
}

type sharedWrite struct {
	text   string
	flying []int
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{}
	r.sink = &recorderSink{r: r}
	return r
}

// Write records p, unattributed.
func (r *Recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(p, nil)
	return len(p), nil
}

// String returns everything recorded.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all.String()
}

// Handler returns a slog JSON handler that records into r, attributing
// each record to the Interleave invocation of the ctx it was logged with.
// opts may be nil.
func (r *Recorder) Handler(opts *slog.HandlerOptions) slog.Handler {
	return recorderHandler{r: r, inner: slog.NewJSONHandler(r.sink, opts)}
}

// record stores p; r.mu is held.
func (r *Recorder) record(p []byte, inv *invocation) {
	r.all.Write(p)
	if r.run == nil {
		return
	}
	if inv != nil && inv.run == r.run {
		inv.shared.Write(p)
		return
	}
	r.orphans = append(r.orphans, sharedWrite{text: string(p), flying: r.run.flying()})
}

func (r *Recorder) attach(run *run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.run, r.orphans = run, nil
}

func (r *Recorder) detach(run *run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.run == run {
		r.run = nil
	}
}

func (r *Recorder) takeOrphans(run *run) []sharedWrite {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.run != run {
		return nil
	}
	out := r.orphans
	r.orphans = nil
	return out
}

// recorderSink receives the inner JSON handler's output while
// recorderHandler.Handle holds the Recorder's lock.
type recorderSink struct {
	r      *Recorder
	target *invocation
}

func (s *recorderSink) Write(p []byte) (int, error) {
	s.r.record(p, s.target)
	return len(p), nil
}

type recorderHandler struct {
	r     *Recorder
	inner slog.Handler
}

func (h recorderHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h recorderHandler) Handle(ctx context.Context, rec slog.Record) error {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.r.sink.target = invocationFrom(ctx)
	defer func() { h.r.sink.target = nil }()
	return h.inner.Handle(ctx, rec)
}

func (h recorderHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return recorderHandler{r: h.r, inner: h.inner.WithAttrs(as)}
}

func (h recorderHandler) WithGroup(name string) slog.Handler {
	return recorderHandler{r: h.r, inner: h.inner.WithGroup(name)}
}
