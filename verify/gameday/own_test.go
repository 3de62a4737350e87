package gameday_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/verify/gameday"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// knownFindings are leaks gameday finds in bulkhead itself, reported to be
// fixed there. The test fails on any other leak, and on a known one that
// no longer shows (so this list shrinks as fixes land).
var knownFindings = map[string]string{}

// wantContained are the attacks that work against bulkhead but reach only
// the attacking function's own login role, or last only until a context's
// exp; anything else contained is a regression.
var wantContained = map[string]bool{
	"A21 context survives the transaction":   true, // until exp, this role only; DB.Tx resets with DISCARD ALL
	"D02 ALTER ROLE … SET":                   true, // this role only; the watchdog resets it
	"D02 ALTER ROLE … PASSWORD":              true, // locks out this function only
	"D11 LOCK TABLE":                         true, // the watchdog ends the session
	"D11 temporary files and statement time": true, // temp_file_limit holds; the watchdog cancels long statements
}

// TestOwnDatabase runs gameday against a freshly migrated bulkhead
// database twice: with --keep, then again reusing what the first run left,
// which the second run removes.
func TestOwnDatabase(t *testing.T) {
	t.Parallel()
	d := pgtest.NewDB(t)
	cfg := gameday.OwnConfig{DatabaseURL: d.AdminURL, Keep: true}
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	first, err := gameday.RunOwn(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkOwn(t, first)

	// More tenants than one page, all sorting before the canaries: the
	// second run still finds what the first kept.
	conn, err := pgx.Connect(t.Context(), d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `INSERT INTO bulkhead_control.tenants (slug, name, tier, placement)
		SELECT 'filler-' || g, 'filler', 'pool', 'pool' FROM generate_series(1, 10001) g`); err != nil {
		t.Fatal(err)
	}

	cfg.Keep = false
	second, err := gameday.RunOwn(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if second.Login != first.Login {
		t.Errorf("second run attacked as %s, want the kept function %s reused", second.Login, first.Login)
	}
	if len(second.Results) != len(first.Results) {
		t.Errorf("second run: %d results, first %d", len(second.Results), len(first.Results))
	}

	// Nothing is left behind.
	var tenants, roles, functions int
	err = conn.QueryRow(t.Context(), `SELECT
		(SELECT count(*) FROM bulkhead_control.tenants WHERE slug LIKE 'gameday-%' AND status <> 'offboarded'),
		(SELECT count(*) FROM pg_roles WHERE rolname = $1),
		(SELECT count(*) FROM bulkhead_control.functions WHERE login_role = $1)`, first.Login).Scan(&tenants, &roles, &functions)
	if err != nil || tenants != 0 || roles != 0 || functions != 0 {
		t.Errorf("after cleanup: %d canary tenants, %d roles, %d functions (%v); want none", tenants, roles, functions, err)
	}
}

// signedContext matches the head of a v1 context token.
var signedContext = regexp.MustCompile(`v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]{40,}`)

func checkOwn(t *testing.T, rep *gameday.Report) {
	t.Helper()
	var b strings.Builder
	rep.WriteText(&b, false)
	t.Log("\n" + b.String())

	seen := map[string]bool{}
	var contained, info []string
	for _, r := range rep.Results {
		key := r.Scenario
		if r.Pair != "" {
			key += " [" + r.Pair + "]"
		}
		switch r.Verdict {
		case gameday.Leaked:
			if why, ok := knownFindings[key]; ok {
				seen[key] = true
				t.Logf("known finding, to be fixed in bulkhead: %s: %s", key, why)
				continue
			}
			t.Errorf("bulkhead leaks: %s: %s", key, r.Summary)
		case gameday.Inconclusive:
			t.Errorf("inconclusive: %s: %s", key, r.Summary)
		case gameday.Contained:
			contained = append(contained, key)
			if !wantContained[r.Scenario] {
				t.Errorf("contained, want blocked: %s: %s", key, r.Summary)
			}
		case gameday.Info:
			info = append(info, key)
		}
	}
	// The function's statements are bounded: temp_file_limit, which it
	// cannot lift, and the watchdog for their time.
	if rs := rep.Find("D11 temporary files and statement time"); len(rs) != 1 || rs[0].Verdict != gameday.Contained || !strings.Contains(rs[0].Summary, "temp_file_limit is 1GB") || !strings.Contains(rs[0].Summary, "may hold 20 sessions") {
		t.Errorf("D11 temporary files = %+v, want contained with temp_file_limit 1GB and 20 sessions", rs)
	}
	for k := range knownFindings {
		if !seen[k] {
			t.Errorf("known finding %q no longer leaks: remove it from knownFindings", k)
		}
	}
	sort.Strings(contained)
	sort.Strings(info)
	t.Logf("contained: %s", strings.Join(contained, "; "))
	t.Logf("info: %s", strings.Join(info, "; "))

	// Every pair ran, and the scenarios the catalog asks of bulkhead are
	// all there.
	for _, pair := range []string{"pool→pool", "pool→silo", "silo→silo"} {
		n := 0
		for _, r := range rep.Results {
			if r.Pair == pair {
				n++
			}
		}
		if n < 30 {
			t.Errorf("pair %s: %d results, want every per-pair scenario", pair, n)
		}
	}
	for _, id := range []string{"R0", "R1", "R2", "R3", "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10", "A11",
		"A13", "A14", "A15", "A16", "A17", "A21", "A28", "A22", "A23", "A24", "A25", "A30", "A32", "A33",
		"D01", "D02", "D03", "D04", "D10", "D11", "D13", "D18"} {
		found := false
		for _, r := range rep.Results {
			found = found || r.ID == id
		}
		if !found {
			t.Errorf("no result for %s", id)
		}
	}
	// The forgeries of the signed context are each blocked with a working
	// control.
	forged := 0
	for _, r := range rep.Results {
		if r.ID == "A07" {
			forged++
			if r.Verdict != gameday.Blocked || !strings.Contains(r.Summary, "control: B's own context sees") {
				t.Errorf("%s [%s] = %s: %s; want blocked against a working control", r.Scenario, r.Pair, r.Verdict, r.Summary)
			}
		}
	}
	if forged < 3*10 {
		t.Errorf("%d forged-context results, want 10 per pair", forged)
	}
	// Evidence never carries a signed context.
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if tok := signedContext.FindString(js.String()); tok != "" {
		t.Errorf("the JSON report shows a signed context: %s", tok)
	}
	var back gameday.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != len(rep.Results) || back.Counts[gameday.Blocked] != rep.Counts[gameday.Blocked] {
		t.Errorf("JSON round trip: %v, %d results", err, len(back.Results))
	}
}
