package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// TestPlanLimits: --plan-limits changes the limits it names and keeps the
// defaults of the others; a file with an unknown plan or field, a value
// out of range or a malformed duration is a usage error, before anything
// starts.
func TestPlanLimits(t *testing.T) {
	t.Parallel()
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "plans.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := planLimits(write(`{"basic": {"rate": 10, "statement_time": "50ms"}, "premium": {"concurrent": 8, "statement_time": "0s", "statement_timeout": "1m", "parallel_workers": 2}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, p := got["basic"], got["premium"]
	if b.Rate != 10 || b.StatementTime != 50*time.Millisecond || b.Burst != httpapi.DefaultLimits["basic"].Burst ||
		b.StatementTimeout != httpapi.DefaultLimits["basic"].StatementTimeout {
		t.Errorf("basic = %+v", b)
	}
	if b.ParallelWorkers != 0 {
		t.Errorf("basic's parallel workers = %d; want the default, none", b.ParallelWorkers)
	}
	if p.Concurrent != 8 || p.StatementTime != 0 || p.StatementTimeout != time.Minute || p.Rate != httpapi.DefaultLimits["premium"].Rate ||
		p.ParallelWorkers != 2 {
		t.Errorf("premium = %+v", p)
	}
	if httpapi.DefaultLimits["basic"].Rate == 10 {
		t.Error("the defaults were changed in place")
	}
	if d, err := planLimits(""); err != nil || d["basic"] != httpapi.DefaultLimits["basic"] {
		t.Errorf("without a file: %+v, %v", d, err)
	}
	for _, body := range []string{
		`{"gold": {"rate": 1}}`,
		`{"basic": {"rate": 1, "speed": 2}}`,
		`{"basic": {"rate": 0}}`,
		`{"basic": {"burst": 0}}`,
		`{"basic": {"concurrent": 5000}}`,
		`{"basic": {"statement_timeout": "0s"}}`,
		`{"basic": {"statement_timeout": "2h"}}`,
		`{"basic": {"statement_time": "fast"}}`,
		`{"basic": {"statement_time": "-1s"}}`,
		`{"basic": {"parallel_workers": -1}}`,
		`{"basic": {"parallel_workers": 65}}`,
		`{"basic": {"parallel_workers": "two"}}`,
		`{"basic": {"rate": "ten"}}`,
		`[]`,
	} {
		_, err := planLimits(write(body))
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%s: %v; want a usage error", body, err)
		}
	}
	if _, err := planLimits(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "--plan-limits") {
		t.Errorf("a missing file: %v", err)
	}
	// serve checks the file with its other flags.
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o serveOptions
	o.register(fs)
	if err := fs.Parse([]string{"--plan-limits", write(`{"basic": {"rate": -1}}`)}); err != nil {
		t.Fatal(err)
	}
	if err := o.checkFlags(fs); err == nil {
		t.Error("checkFlags accepted a bad --plan-limits file")
	}
}

// TestWatchdogMaxStatement: the watchdog's bound on app roles' statements
// stays above every plan's statement timeout, which the data API's own
// statements run under as an app role, so it never cancels them.
func TestWatchdogMaxStatement(t *testing.T) {
	limits := map[string]httpapi.Limit{"basic": {StatementTimeout: 5 * time.Second}, "premium": {StatementTimeout: 20 * time.Minute}}
	opts := func(args ...string) *serveOptions {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		var o serveOptions
		o.register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return &o
	}
	if got := opts("--watchdog-max-statement", "1h").watchdogOptions(limits).MaxStatement; got != time.Hour {
		t.Errorf("above every plan: %v, want 1h", got)
	}
	if got := opts("--watchdog-max-statement", "1m").watchdogOptions(limits).MaxStatement; got != 20*time.Minute+statementHeadroom {
		t.Errorf("below the premium plan's 20m: %v, want 20m10s", got)
	}
	w := opts().watchdogOptions(httpapi.DefaultLimits)
	if w.MaxStatement != postgres.DefaultMaxStatement || w.MaxIdleInTransaction != postgres.DefaultMaxIdleInTransaction {
		t.Errorf("the defaults: %+v, want %v and %v", w, postgres.DefaultMaxStatement, postgres.DefaultMaxIdleInTransaction)
	}
	if got := opts("--watchdog-max-idle-in-transaction", "2m").watchdogOptions(limits).MaxIdleInTransaction; got != 2*time.Minute {
		t.Errorf("--watchdog-max-idle-in-transaction 2m: %v", got)
	}
}
