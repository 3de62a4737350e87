package tenantstate_test

import (
	"testing"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/bulkhead-dev/bulkhead/vet/tenantstate"
)

// TestAnalyzer runs the analyzer over each package in testdata/src, whose
// "// want" comments list the reports expected; any other report fails.
func TestAnalyzer(t *testing.T) {
	for _, tt := range []struct {
		pkg  string
		what string
	}{
		{"seedbad", "the seed's bad handler: a config cached on first use, reported"},
		{"seedgood", "the seed's good handler: the config fetched every time, not reported"},
		{"mapcache", "package-level maps and a sync.Map written as caches, keyed by request or tenant"},
		{"mutations", "append, element writes, ++, container and buffer methods, decoding; atomic counters allowed"},
		{"fields", "field writes, through pointers and aliases; local copies, shadows and new objects not reported"},
		{"transitive", "writes in helpers, through pointer parameters, receivers, type switches and local funcs; main's calls not"},
		{"once", "sync.Once capturing the request reported; sync.Once from configuration not"},
		{"httphandlers", "http handler functions, ServeHTTP receivers, middleware closures; test fakes not reported"},
		{"methodvalue", "a method value and a lambda.Handler started as handlers"},
		{"closures", "function literals as handlers, inline, in a variable and from a factory"},
		{"suppress", "//bulkhead:ok with a reason suppresses, also for a helper's callers; without one it does not"},
		{"config", "constants, configuration in init and main, reads, shadows, mutexes, counters: not reported"},
		{"tenantcache", "bulkhead's lambda.TenantCache not reported; lambda.Wrap finds handlers"},
		{"named", "handlers by name and by //bulkhead:handler; look-alikes are not handlers"},
	} {
		t.Run(tt.pkg, func(t *testing.T) {
			t.Log(tt.what)
			analysistest.Run(t, analysistest.TestData(), tenantstate.Analyzer, tt.pkg)
		})
	}
}

// TestSeed checks that the seed's bad handler gets exactly one report, at
// the write that fills the cache.
func TestSeed(t *testing.T) {
	results := analysistest.Run(t, analysistest.TestData(), tenantstate.Analyzer, "seedbad")
	if len(results) != 1 {
		t.Fatalf("analysistest.Run(seedbad) = %d results, want 1", len(results))
	}
	if got := len(results[0].Action.Diagnostics); got != 1 {
		t.Errorf("seedbad: %d diagnostics, want 1", got)
	}
}

func TestAnalyzerValid(t *testing.T) {
	if err := analysis.Validate([]*analysis.Analyzer{tenantstate.Analyzer}); err != nil {
		t.Errorf("analysis.Validate(tenantstate.Analyzer) = %v, want nil", err)
	}
}
