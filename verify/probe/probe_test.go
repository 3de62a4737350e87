package probe_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/verify/probe"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// leaked returns the names of the checks that leaked ("read",
// "list/alg-none"), sorted, once each.
func leaked(rep *probe.Report) []string {
	var out []string
	for _, r := range rep.Results {
		if r.Verdict == probe.Leak && !slices.Contains(out, r.Name()) {
			out = append(out, r.Name())
		}
	}
	slices.Sort(out)
	return out
}

// ranAsA returns the names of the checks that ran with A's own token.
func ranAsA(rep *probe.Report) []string {
	var out []string
	for _, r := range rep.Results {
		if r.Token == probe.TokenA && !slices.Contains(out, r.Check) {
			out = append(out, r.Check)
		}
	}
	slices.Sort(out)
	return out
}

func withToken(checks []string, tok string) []string {
	var out []string
	for _, c := range checks {
		out = append(out, c+"/"+tok)
	}
	return out
}

func mustLoadNotes(t *testing.T) *probe.API {
	t.Helper()
	b, err := os.ReadFile("testdata/notes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	api, err := probe.LoadOpenAPI(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// textOf renders rep as text, for failure messages.
func textOf(rep *probe.Report) string {
	var buf bytes.Buffer
	probe.WriteText(&buf, rep)
	return buf.String()
}

// TestOpenAPI runs the probe against the notes server, once correct and
// once with each bug, and demands that each bug is caught by exactly the
// checks meant to catch it.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	api := mustLoadNotes(t)
	all := []string{"delete", "filter-id", "filter-value", "list", "plant", "read", "reference", "update"}
	for _, tt := range []struct {
		name string
		bugs bugs
		want []string
	}{
		{"correct", bugs{}, nil},
		{"item read unfiltered", bugs{itemRead: true}, []string{"read"}},
		{"list unfiltered", bugs{list: true}, []string{"filter-id", "filter-value", "list"}},
		{"alg none accepted", bugs{algNone: true}, withToken(all, probe.AlgNone)},
		{"signature unverified", bugs{unverified: true}, withToken(all, probe.TenantClaim)},
		{"reference across tenants", bugs{reference: true}, []string{"reference"}},
		{"writes unfiltered", bugs{writes: true}, []string{"delete", "update"}},
		{"tenant_id from the body", bugs{plant: true}, []string{"plant"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, hs := newNotesServer(t, tt.bugs)
			tenantA, tenantB := "org-"+strings.Repeat("a", 12), "org-"+strings.Repeat("b", 12)
			rep, err := probe.Run(t.Context(), probe.Config{BaseURL: hs.URL, API: api,
				TokenA: srv.token(tenantA, "alice@a.test"), TokenB: srv.token(tenantB, "bob@b.test")})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(all, ranAsA(rep)); diff != "" {
				t.Errorf("checks run as A (-want +got):\n%s", diff)
			}
			// A's token with a header naming B's tenant reaches whatever
			// A's token alone reaches.
			want := slices.Clone(tt.want)
			for _, c := range tt.want {
				if !strings.Contains(c, "/") {
					want = append(want, c+"/"+probe.TenantHeader)
				}
			}
			slices.Sort(want)
			if diff := cmp.Diff(want, leaked(rep)); diff != "" {
				t.Errorf("leaking checks (-want +got):\n%s\n%s", diff, textOf(rep))
			}
			for _, r := range rep.Results {
				if r.Verdict == probe.Error || r.Verdict == probe.Inconclusive || r.Verdict == probe.Skip {
					t.Errorf("%s %s %s: %s: %s", r.Name(), r.Method, r.URL, r.Verdict, r.Reason)
				}
			}
			if got := rep.Failed(); got != (len(tt.want) > 0) {
				t.Errorf("Failed() = %v, want %v", got, len(tt.want) > 0)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.notes) != 0 {
				t.Errorf("%d notes left after the clean-up; notes: %q", len(srv.notes), rep.Notes)
			}
		})
	}
}

// TestInterrupted cancels the run in the middle of the checks: Run
// returns the context's error with the checks that ran, and still deletes
// B's canaries.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	srv, hs := newNotesServer(t, bugs{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv.hook = func() {
		if srv.seen == 20 {
			cancel()
		}
	}
	rep, err := probe.Run(ctx, probe.Config{BaseURL: hs.URL, API: mustLoadNotes(t),
		TokenA: srv.token("org-aaaaaaaaaaaa", "alice"), TokenB: srv.token("org-bbbbbbbbbbbb", "bob")})
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("Run = %v, %v; want a report and context.Canceled", rep, err)
	}
	if len(rep.Results) == 0 || !slices.Contains(rep.Notes, "interrupted: not every check ran") {
		t.Errorf("%d results, notes %q", len(rep.Results), rep.Notes)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.notes) != 0 {
		t.Errorf("%d notes left after an interrupted run", len(srv.notes))
	}
}
