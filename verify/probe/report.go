package probe

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// Verdict is what one check showed.
type Verdict string

// The verdicts. Report.Failed is true when any check leaked or could not
// run.
const (
	// Pass: the request did not reach B's data.
	Pass Verdict = "pass"
	// Leak: the answer held B's data, the server found B's object for A,
	// a write changed or deleted B's object, or a tampered token was
	// accepted.
	Leak Verdict = "leak"
	// Inconclusive: A saw nothing, but neither did B with the same
	// request, so the check could not have seen a leak.
	Inconclusive Verdict = "inconclusive"
	// Skip: the check could not be built (no id, no tenant claim…).
	Skip Verdict = "skip"
	// Error: the request failed (network, timeout) or the probe could not
	// set up B's canary.
	Error Verdict = "error"
)

// verdicts in report order.
var verdicts = []Verdict{Leak, Error, Inconclusive, Skip, Pass}

// Result is one check: one request, as A or with one tampered token.
type Result struct {
	Suite    string        `json:"suite"`  // the resource, "/notes"
	Check    string        `json:"check"`  // "read", "list", "filter-id"…
	Token    string        `json:"token"`  // "A" or a tampered variant
	Method   string        `json:"method"` // "GET"
	Path     string        `json:"path"`   // the template, "/notes/{id}"
	URL      string        `json:"url"`    // what was sent, "/notes/8c1…"
	Status   int           `json:"status"` // the answer's status; 0 when there was none
	Verdict  Verdict       `json:"verdict"`
	Reason   string        `json:"reason"` // why, in a sentence
	Evidence string        `json:"evidence,omitempty"`
	Duration time.Duration `json:"-"`
}

// Name is the check's name with its token: "read", "read/alg-none".
func (r Result) Name() string {
	if r.Token == TokenA || r.Token == "" {
		return r.Check
	}
	return r.Check + "/" + r.Token
}

// Report is a whole run.
type Report struct {
	Target   string          `json:"target"` // the base URL
	API      string          `json:"api"`    // "bulkhead" or the OpenAPI document's title and version
	Started  time.Time       `json:"started"`
	Duration time.Duration   `json:"-"`
	Notes    []string        `json:"notes,omitempty"`
	Results  []Result        `json:"results"`
	Counts   map[Verdict]int `json:"counts"`
}

// count fills Counts.
func (rep *Report) count() {
	rep.Counts = map[Verdict]int{}
	for _, v := range verdicts {
		rep.Counts[v] = 0
	}
	for _, r := range rep.Results {
		rep.Counts[r.Verdict]++
	}
}

// Failed reports whether any check leaked or ended in an error.
func (rep *Report) Failed() bool {
	for _, r := range rep.Results {
		if r.Verdict == Leak || r.Verdict == Error {
			return true
		}
	}
	return false
}

// Summary returns the one-line count of results by verdict.
func (rep *Report) Summary() string {
	rep.count()
	var parts []string
	for _, v := range verdicts {
		parts = append(parts, fmt.Sprintf("%d %s", rep.Counts[v], v))
	}
	return strings.Join(parts, ", ")
}

// Formats lists the output formats Write accepts.
var Formats = []string{"text", "json", "junit"}

// Write writes rep to w in format text, json or junit.
func Write(w io.Writer, rep *Report, format string) error {
	switch format {
	case "text", "":
		return WriteText(w, rep)
	case "json":
		return WriteJSON(w, rep)
	case "junit":
		return WriteJUnit(w, rep)
	}
	return fmt.Errorf("probe: unknown format %q", format)
}

// suites returns the suite names in the order of their first result.
func (rep *Report) suites() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if !seen[r.Suite] {
			seen[r.Suite] = true
			out = append(out, r.Suite)
		}
	}
	return out
}

// WriteText writes one line per check, grouped by resource:
//
//	LEAK  read            A             GET /notes/5e0c…  200  the answer holds B's canary value of title
func WriteText(w io.Writer, rep *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "bulkhead probe: %s (%s)\n", rep.Target, rep.API)
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, s := range rep.suites() {
		fmt.Fprintf(&b, "\n%s\n", s)
		for _, r := range rep.Results {
			if r.Suite != s {
				continue
			}
			status := "-"
			if r.Status != 0 {
				status = fmt.Sprint(r.Status)
			}
			fmt.Fprintf(&b, "  %-12s %-14s %-13s %s %s  %s  %s\n", strings.ToUpper(string(r.Verdict)), r.Check, r.Token, r.Method, r.URL, status, r.Reason)
			if r.Evidence != "" && r.Verdict == Leak {
				fmt.Fprintf(&b, "  %-12s evidence: %s\n", "", r.Evidence)
			}
		}
	}
	fmt.Fprintf(&b, "\n%s\n", rep.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes rep as one JSON object.
func WriteJSON(w io.Writer, rep *Report) error {
	rep.count()
	type result struct {
		Result
		Name       string `json:"name"`
		DurationMS int64  `json:"duration_ms"`
	}
	out := struct {
		*Report
		Duration string   `json:"duration"`
		Failed   bool     `json:"failed"`
		Results  []result `json:"results"`
	}{Report: rep, Duration: rep.Duration.Round(time.Millisecond).String(), Failed: rep.Failed(), Results: []result{}}
	for _, r := range rep.Results {
		out.Results = append(out.Results, result{r, r.Name(), r.Duration.Milliseconds()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// JUnit XML, as the Jenkins JUnit plugin's junit-10.xsd describes it:
// testsuites › testsuite (name, tests, failures, errors required) ›
// testcase (name required) › failure | error | skipped | system-out.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties *junitProps     `xml:"properties,omitempty"`
	Cases      []junitTestcase `xml:"testcase"`
}

type junitProps struct {
	Props []junitProp `xml:"property"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitTestcase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes rep as JUnit XML: a testsuite per resource, a testcase
// per check, a <failure> per leak, an <error> per check that could not
// run, and <skipped> for skipped and inconclusive checks. Test case names
// use the path template, so they stay the same from run to run.
func WriteJUnit(w io.Writer, rep *Report) error {
	out := junitSuites{Name: "bulkhead probe " + rep.Target}
	var total time.Duration
	for _, s := range rep.suites() {
		js := junitSuite{Name: s}
		if !rep.Started.IsZero() {
			js.Timestamp = rep.Started.UTC().Format("2006-01-02T15:04:05")
		}
		js.Properties = &junitProps{Props: []junitProp{{"target", rep.Target}, {"api", rep.API}}}
		var d time.Duration
		for _, r := range rep.Results {
			if r.Suite != s {
				continue
			}
			d += r.Duration
			tc := junitTestcase{
				Name:      fmt.Sprintf("%s as %s: %s %s", r.Check, r.Token, r.Method, r.Path),
				Classname: "probe." + strings.Trim(strings.NewReplacer("/", ".", "{", "", "}", "").Replace(s), "."),
				Time:      seconds(r.Duration),
			}
			detail := fmt.Sprintf("%s %s as %s: %s", r.Method, r.URL, r.Token, statusText(r.Status))
			if r.Evidence != "" {
				detail += "\nevidence: " + r.Evidence
			}
			switch r.Verdict {
			case Leak:
				js.Failures++
				tc.Failure = &junitMessage{Message: r.Reason, Type: "leak", Text: detail}
			case Error:
				js.Errors++
				tc.Error = &junitMessage{Message: r.Reason, Type: "error", Text: detail}
			case Skip:
				js.Skipped++
				tc.Skipped = &junitMessage{Message: r.Reason}
			case Inconclusive:
				js.Skipped++
				tc.Skipped = &junitMessage{Message: "inconclusive: " + r.Reason, Text: detail}
			default:
				tc.SystemOut = detail + "\n" + r.Reason
			}
			js.Cases = append(js.Cases, tc)
		}
		js.Tests = len(js.Cases)
		js.Time = seconds(d)
		total += d
		out.Tests += js.Tests
		out.Failures += js.Failures
		out.Errors += js.Errors
		out.Suites = append(out.Suites, js)
	}
	out.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func statusText(code int) string {
	if code == 0 {
		return "no answer"
	}
	return fmt.Sprint(code)
}
