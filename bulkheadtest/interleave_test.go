package bulkheadtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/bulkheadtest"
)

// The seed's example, ported to Go. An event names its tenant; the
// "database" holds each tenant's config, whose secret is the canary.

type event struct{ TenantID string }

type tenantConfig struct {
	Tenant string
	Secret string
}

var configStore = map[string]tenantConfig{
	"acme":    {Tenant: "acme", Secret: "acme-canary-7f3a"},
	"globex":  {Tenant: "globex", Secret: "globex-canary-91c2"},
	"initech": {Tenant: "initech", Secret: "initech-canary-0d5e"},
}

func fetchConfig(_ context.Context, tenantID string) (tenantConfig, error) {
	c, ok := configStore[tenantID]
	if !ok {
		return tenantConfig{}, errors.New("no such tenant")
	}
	return c, nil
}

// BAD: a package variable persists across invocations. (The mutex only
// keeps the race detector quiet: a thread-safe global leaks all the same.)
var (
	cachedMu           sync.Mutex
	cachedTenantConfig *tenantConfig
)

func badHandler(ctx context.Context, ev event) (string, error) {
	cachedMu.Lock()
	defer cachedMu.Unlock()
	if cachedTenantConfig == nil {
		c, err := fetchConfig(ctx, ev.TenantID)
		if err != nil {
			return "", err
		}
		cachedTenantConfig = &c
	}
	// Risk: the next invocation might use the wrong config.
	return "config: " + cachedTenantConfig.Secret, nil
}

// GOOD: scoped to the handler.
func goodHandler(ctx context.Context, ev event) (string, error) {
	c, err := fetchConfig(ctx, ev.TenantID)
	if err != nil {
		return "", err
	}
	return "config: " + c.Secret, nil
}

func resetBad(t *testing.T) {
	t.Cleanup(func() {
		cachedMu.Lock()
		cachedTenantConfig = nil
		cachedMu.Unlock()
	})
}

// tenants returns Interleave tenants that invoke h with their own event.
func tenants(h func(context.Context, event) (string, error)) []bulkheadtest.InterleaveTenant {
	var out []bulkheadtest.InterleaveTenant
	for _, id := range []string{"acme", "globex", "initech"} {
		out = append(out, bulkheadtest.InterleaveTenant{
			Name:     id,
			Canaries: []string{configStore[id].Secret},
			Invoke: func(ctx context.Context) (any, error) {
				return h(ctx, event{TenantID: id})
			},
		})
	}
	return out
}

// spyTB records failures instead of failing, to prove Interleave fails.
type spyTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  []string
}

func (s *spyTB) Helper() {}

func (s *spyTB) Errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors = append(s.errors, fmt.Sprintf(format, args...))
}

func (s *spyTB) Error(args ...any) { s.Errorf("%s", fmt.Sprint(args...)) }

func (s *spyTB) Fatalf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fatal = append(s.fatal, fmt.Sprintf(format, args...))
}

func (s *spyTB) Fatal(args ...any) { s.Fatalf("%s", fmt.Sprint(args...)) }

func TestInterleaveCatchesBAD(t *testing.T) {
	// Deterministic: whatever the seed and the concurrency, the warm-up
	// pass runs the second tenant after the first in this process.
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			resetBad(t)
			cachedMu.Lock()
			cachedTenantConfig = nil
			cachedMu.Unlock()
			spy := &spyTB{TB: t}
			rep := bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{
				Tenants: tenants(badHandler), Seed: seed, Concurrency: 4, Rounds: 3,
			})
			if len(rep.Findings) == 0 || len(spy.errors) == 0 {
				t.Fatalf("Interleave(BAD) found nothing; errors %q", spy.errors)
			}
			f := rep.Findings[0]
			if f.Round != 0 || f.Invocation != 2 || f.Where != "result" || f.Tenant == f.Owner {
				t.Errorf("first finding = %+v, want the warm-up's second invocation's result", f)
			}
			if !strings.Contains(spy.errors[0], f.Canary) || !strings.Contains(spy.errors[0], "contamination") {
				t.Errorf("failure %q does not show the evidence", spy.errors[0])
			}
		})
	}
}

func TestInterleavePassesGOOD(t *testing.T) {
	rep := bulkheadtest.Interleave(t, bulkheadtest.InterleaveConfig{
		Tenants: tenants(goodHandler), Concurrency: 8, Rounds: 20, RequireOwnCanary: true,
	})
	if want := 3 * 21; rep.Invocations != want {
		t.Errorf("Invocations = %d, want %d", rep.Invocations, want)
	}
}

// A logger that keeps attributes across invocations (the Lambda
// Powertools "appended keys" bug): caught in what the handler logged to the
// process-wide logger, attributed by ctx.
func TestInterleaveCatchesSharedLoggerState(t *testing.T) {
	rec := bulkheadtest.NewRecorder()
	var mu sync.Mutex
	logger := slog.New(rec.Handler(nil))
	h := func(ctx context.Context, ev event) (string, error) {
		c, err := fetchConfig(ctx, ev.TenantID)
		if err != nil {
			return "", err
		}
		mu.Lock()
		logger = logger.With("secret", c.Secret) // BAD: the global logger grows
		l := logger
		mu.Unlock()
		l.InfoContext(ctx, "handled")
		return "ok", nil
	}
	spy := &spyTB{TB: t}
	rep := bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: tenants(h), Shared: rec, Seed: 7})
	if len(rep.Findings) == 0 || rep.Findings[0].Where != "shared log" {
		t.Fatalf("Interleave(appending logger) = %+v, want a shared log finding", rep.Findings)
	}

	// The same logger used well passes.
	good := func(ctx context.Context, ev event) (string, error) {
		c, err := fetchConfig(ctx, ev.TenantID)
		if err != nil {
			return "", err
		}
		slog.New(rec.Handler(nil)).InfoContext(ctx, "handled", "secret", c.Secret)
		return "ok", nil
	}
	rep = bulkheadtest.Interleave(t, bulkheadtest.InterleaveConfig{Tenants: tenants(good), Shared: rec, Concurrency: 8})
	if !strings.Contains(rec.String(), "globex-canary-91c2") {
		t.Errorf("the recorder kept nothing: %q", rec.String())
	}
}

// Output without a ctx (fmt to a shared writer) cannot be attributed
// exactly: a canary is evidence when its tenant had nothing in flight.
func TestInterleaveUnattributedOutput(t *testing.T) {
	rec := bulkheadtest.NewRecorder()
	var mu sync.Mutex
	var last string
	bad := func(ctx context.Context, ev event) (string, error) {
		c, err := fetchConfig(ctx, ev.TenantID)
		if err != nil {
			return "", err
		}
		mu.Lock()
		prev := last
		last = c.Secret
		mu.Unlock()
		fmt.Fprintf(rec, "previous request used %s\n", prev) // BAD: another tenant's value
		return "ok", nil
	}
	spy := &spyTB{TB: t}
	rep := bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: tenants(bad), Shared: rec, Seed: 3})
	if len(rep.Findings) == 0 || rep.Findings[0].Where != "shared output" {
		t.Fatalf("Interleave(unattributed leak) = %+v, want a shared output finding", rep.Findings)
	}

	good := func(ctx context.Context, ev event) (string, error) {
		c, err := fetchConfig(ctx, ev.TenantID)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(rec, "handled %s\n", c.Secret)
		return "ok", nil
	}
	bulkheadtest.Interleave(t, bulkheadtest.InterleaveConfig{Tenants: tenants(good), Shared: rec, Concurrency: 8})
}

// What a handler writes to its invocation's log is checked too.
func TestInterleaveInvocationLog(t *testing.T) {
	resetBad(t)
	h := func(ctx context.Context, ev event) (string, error) {
		s, err := badHandler(ctx, ev)
		bulkheadtest.Logger(ctx).InfoContext(ctx, "answered", "body", s)
		return "ok", err // the result is clean; the log is not
	}
	spy := &spyTB{TB: t}
	rep := bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: tenants(h), Seed: 11})
	if len(rep.Findings) == 0 || rep.Findings[0].Where != "log" {
		t.Fatalf("Interleave(leaky log) = %+v, want a log finding", rep.Findings)
	}
}

func TestInterleaveFailsOnErrorsAndMissingData(t *testing.T) {
	failing := func(context.Context, event) (string, error) { return "", errors.New("database down") }
	spy := &spyTB{TB: t}
	bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: tenants(failing), Rounds: 1})
	if len(spy.errors) != 6 || !strings.Contains(spy.errors[0], "database down") {
		t.Errorf("a handler that always fails: errors %q, want one per invocation", spy.errors)
	}
	spy = &spyTB{TB: t}
	bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: tenants(failing), Rounds: 1, AllowErrors: true})
	if len(spy.errors) != 0 {
		t.Errorf("AllowErrors: errors %q", spy.errors)
	}
	empty := func(context.Context, event) (string, error) { return "nothing", nil }
	spy = &spyTB{TB: t}
	bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: tenants(empty), Rounds: 1, RequireOwnCanary: true})
	if len(spy.errors) != 6 {
		t.Errorf("RequireOwnCanary with no data: errors %q", spy.errors)
	}
	panicky := func(context.Context, event) (string, error) { panic("boom") }
	spy = &spyTB{TB: t}
	bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: tenants(panicky), Rounds: 1, AllowErrors: true})
	if len(spy.errors) != 6 || !strings.Contains(spy.errors[0], "panicked") {
		t.Errorf("a panicking handler: errors %q", spy.errors)
	}
}

func TestInterleaveConfigErrors(t *testing.T) {
	invoke := func(context.Context) (any, error) { return nil, nil }
	for _, tt := range []struct {
		name    string
		tenants []bulkheadtest.InterleaveTenant
		want    string
	}{
		{"OneTenant", []bulkheadtest.InterleaveTenant{{Name: "a", Canaries: []string{"x"}, Invoke: invoke}}, "two tenants"},
		{"NoCanary", []bulkheadtest.InterleaveTenant{{Name: "a", Canaries: []string{"x"}, Invoke: invoke}, {Name: "b", Invoke: invoke}}, "no canaries"},
		{"SameName", []bulkheadtest.InterleaveTenant{{Name: "a", Canaries: []string{"x"}, Invoke: invoke}, {Name: "a", Canaries: []string{"y"}, Invoke: invoke}}, "two tenants are named"},
		{"NestedCanary", []bulkheadtest.InterleaveTenant{{Name: "a", Canaries: []string{"acme"}, Invoke: invoke}, {Name: "b", Canaries: []string{"acme-two"}, Invoke: invoke}}, "inside"},
		{"NoInvoke", []bulkheadtest.InterleaveTenant{{Name: "a", Canaries: []string{"x"}, Invoke: invoke}, {Name: "b", Canaries: []string{"y"}}}, "no Invoke"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spy := &spyTB{TB: t}
			bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: tt.tenants})
			if len(spy.fatal) != 1 || !strings.Contains(spy.fatal[0], tt.want) {
				t.Errorf("Interleave fatal = %q, want %q", spy.fatal, tt.want)
			}
		})
	}
}

// BAD user code: a per-process cache filled on first use, served to every
// tenant, behind an ordinary HTTP handler.
var (
	httpCacheMu sync.Mutex
	httpCache   map[string]string
)

func badHTTPHandler(w http.ResponseWriter, r *http.Request) {
	tenantID := r.Header.Get("X-Tenant")
	httpCacheMu.Lock()
	if httpCache == nil {
		c, _ := fetchConfig(r.Context(), tenantID)
		httpCache = map[string]string{"secret": c.Secret} // BAD: not keyed by tenant
	}
	s := httpCache["secret"]
	httpCacheMu.Unlock()
	w.Write([]byte(`{"config":"` + s + `"}`))
}

type httpResponse struct {
	Status int
	Body   []byte
}

// The handler's answer returned as a struct with the body as []byte (a
// natural Go response type). Interleave must catch the cache.
func TestInterleaveSearchesInsideResults(t *testing.T) {
	for _, tt := range []struct {
		name string
		wrap func(*httptest.ResponseRecorder) any
	}{
		{"struct with []byte Body", func(rec *httptest.ResponseRecorder) any {
			return httpResponse{Status: rec.Code, Body: rec.Body.Bytes()}
		}},
		{"pointer to a struct with an unexported body", func(rec *httptest.ResponseRecorder) any {
			return &struct {
				status int
				body   []byte
			}{rec.Code, rec.Body.Bytes()}
		}},
		{"map of any to []byte", func(rec *httptest.ResponseRecorder) any {
			return map[string]any{"status": rec.Code, "body": rec.Body.Bytes()}
		}},
		{"slice of interfaces holding a byte array", func(rec *httptest.ResponseRecorder) any {
			var a [64]byte
			copy(a[:], rec.Body.Bytes())
			return []any{rec.Code, &a}
		}},
		{"json.RawMessage in a struct", func(rec *httptest.ResponseRecorder) any {
			return struct{ Body json.RawMessage }{rec.Body.Bytes()}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			httpCacheMu.Lock()
			httpCache = nil
			httpCacheMu.Unlock()
			var ts []bulkheadtest.InterleaveTenant
			for _, id := range []string{"acme", "globex", "initech"} {
				ts = append(ts, bulkheadtest.InterleaveTenant{
					Name: id, Canaries: []string{configStore[id].Secret},
					Invoke: func(ctx context.Context) (any, error) {
						req := httptest.NewRequestWithContext(ctx, "GET", "/config", nil)
						req.Header.Set("X-Tenant", id)
						rec := httptest.NewRecorder()
						badHTTPHandler(rec, req)
						return tt.wrap(rec), nil
					},
				})
			}
			spy := &spyTB{TB: t}
			rep := bulkheadtest.Interleave(spy, bulkheadtest.InterleaveConfig{Tenants: ts, Seed: 1})
			if len(rep.Findings) == 0 {
				t.Errorf("Interleave found no contamination in %d invocations; every tenant after the first got %q's config (errors: %d)",
					rep.Invocations, "the first tenant", len(spy.errors))
			}
		})
	}
}
