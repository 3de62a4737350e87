package gameday

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Verdict is what one scenario showed.
type Verdict string

// The verdicts. Report.Failed is true when any scenario leaked or was
// inconclusive.
const (
	// Blocked: the attack failed, and the control shows the probe would
	// have seen B's rows had it been allowed to.
	Blocked Verdict = "blocked"
	// Leaked: the attack reached tenant B: it read or wrote B's rows,
	// learned something about them (existence, count, values), or disrupted
	// sessions serving other tenants in a way the database could refuse.
	Leaked Verdict = "leaked"
	// Contained: the attack worked, but the design bounds it to the
	// attacker's own function role or to a short window, and says how.
	Contained Verdict = "contained"
	// Info: an observation or a residual risk that the database cannot
	// refuse; not a failure.
	Info Verdict = "info"
	// NotApplicable: the scenario does not apply to this target.
	NotApplicable Verdict = "not_applicable"
	// Inconclusive: the attack saw nothing, but neither did the control,
	// or the probe could not be run: nothing is proven.
	Inconclusive Verdict = "inconclusive"
)

// verdicts in report order.
var verdicts = []Verdict{Leaked, Inconclusive, Contained, Info, Blocked, NotApplicable}

// Severity ranks a leaked, contained or info result.
type Severity string

// The severities.
const (
	High   Severity = "high"   // B's rows are read or written
	Medium Severity = "medium" // B's sessions are disrupted, or B's secrets could be harvested
	Low    Severity = "low"    // existence, counts or frequencies of B's rows
)

// Step is one statement of the evidence: what ran, as whom, and what came
// back (truncated).
type Step struct {
	As   string   `json:"as,omitempty"` // "A", "B (control)", "no context", "admin", …
	SQL  string   `json:"sql"`
	Args []string `json:"args,omitempty"` // signed contexts appear by name, never in full
	Got  string   `json:"got"`
}

// Result is one scenario's outcome.
type Result struct {
	ID       string   `json:"id"`       // "A07"
	Scenario string   `json:"scenario"` // "A07 forge the context"
	Pair     string   `json:"pair,omitempty"`
	Verdict  Verdict  `json:"verdict"`
	Severity Severity `json:"severity,omitempty"`
	Summary  string   `json:"summary"`
	Evidence []Step   `json:"evidence,omitempty"`
}

// Report is a whole run.
type Report struct {
	Mode     string          `json:"mode"`  // "bulkhead" or "database"
	Login    string          `json:"login"` // the app login role the attacks ran as
	Target   string          `json:"target"`
	Started  time.Time       `json:"started"`
	Duration string          `json:"duration"`
	Notes    []string        `json:"notes,omitempty"`
	Results  []Result        `json:"results"`
	Counts   map[Verdict]int `json:"counts"`
}

// Failed reports whether any scenario leaked or was inconclusive.
func (r *Report) Failed() bool { return r.Counts[Leaked] > 0 || r.Counts[Inconclusive] > 0 }

// Find returns the results of a scenario (by its full name, such as
// "A09 TRUNCATE"), in every pair.
func (r *Report) Find(scenario string) []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Scenario == scenario {
			out = append(out, x)
		}
	}
	return out
}

func (r *Report) count() {
	r.Counts = map[Verdict]int{}
	for _, v := range verdicts {
		r.Counts[v] = 0
	}
	for _, x := range r.Results {
		r.Counts[x.Verdict]++
	}
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes one line per scenario, verdict first, then a summary.
// With verbose, the evidence of every scenario follows its line; without,
// only that of leaked, contained and inconclusive ones.
func (r *Report) WriteText(w io.Writer, verbose bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "gameday (%s) as %s against %s\n", r.Mode, r.Login, r.Target)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, x := range r.Results {
		name := x.Scenario
		if x.Pair != "" {
			name += " [" + x.Pair + "]"
		}
		sev := ""
		if x.Severity != "" {
			sev = " (" + string(x.Severity) + ")"
		}
		fmt.Fprintf(&b, "%-14s %s%s: %s\n", strings.ToUpper(string(x.Verdict)), name, sev, oneLine(x.Summary, 240))
		if verbose || x.Verdict == Leaked || x.Verdict == Contained || x.Verdict == Inconclusive {
			for _, s := range x.Evidence {
				as := ""
				if s.As != "" {
					as = "[" + s.As + "] "
				}
				args := ""
				if len(s.Args) > 0 {
					args = " -- args: " + strings.Join(s.Args, ", ")
				}
				fmt.Fprintf(&b, "    %s%s%s\n      → %s\n", as, oneLine(s.SQL, 300), args, oneLine(s.Got, 300))
			}
		}
	}
	fmt.Fprintf(&b, "summary: %d scenarios in %s:", len(r.Results), r.Duration)
	for i, v := range verdicts {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %d %s", sep, r.Counts[v], strings.ReplaceAll(string(v), "_", " "))
	}
	b.WriteString("\n")
	if r.Failed() {
		b.WriteString("result: FAILED (a scenario leaked or was inconclusive)\n")
	} else {
		b.WriteString("result: no leaks\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine collapses whitespace and truncates s to n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, n)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
