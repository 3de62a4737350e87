package probe_test

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/verify/probe"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenReport is a small, fixed report with every verdict, built
// directly so that the golden files depend on nothing that runs.
func goldenReport() *probe.Report {
	ms := time.Millisecond
	return &probe.Report{
		Target:   "https://api.example.test",
		API:      "openapi: Notes 1.0.0",
		Started:  time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC),
		Duration: 1234 * ms,
		Notes:    []string{"token tenant-claim not tried: no tenant-like claim (tenant_id, org_id, …) differs between A's and B's tokens"},
		Results: []probe.Result{
			{Suite: "/notes", Check: "read", Token: probe.TokenA, Method: "GET", Path: "/notes/{id}", URL: "/notes/5e0c6d1a-0b7e-4a57-9a43-2f7f3c1d9b10",
				Status: 200, Verdict: probe.Leak, Reason: "the answer holds B's canary in title and B's id",
				Evidence: `{"id":"5e0c6d1a-0b7e-4a57-9a43-2f7f3c1d9b10","title":"canary-3f9a0c1d2e4b"}`, Duration: 12 * ms},
			{Suite: "/notes", Check: "read", Token: probe.AlgNone, Method: "GET", Path: "/notes/{id}", URL: "/notes/5e0c6d1a-0b7e-4a57-9a43-2f7f3c1d9b10",
				Status: 401, Verdict: probe.Pass, Reason: "refused: 401", Duration: 3 * ms},
			{Suite: "/notes", Check: "list", Token: probe.TokenA, Method: "GET", Path: "/notes", URL: "/notes",
				Status: 200, Verdict: probe.Pass, Reason: "200 without B's data", Duration: 4 * ms},
			{Suite: "/notes", Check: "filter-value", Token: probe.TokenA, Method: "GET", Path: "/notes?q={v:title}", URL: "/notes?q=canary-3f9a0c1d2e4b",
				Status: 200, Verdict: probe.Inconclusive, Reason: "B's own token does not see B's canary with this request either, so it proves nothing (200 without B's data, as with random values in place of B's)", Duration: 5 * ms},
			{Suite: "/notes", Check: "delete", Token: probe.Expired, Method: "DELETE", Path: "/notes/{id}", URL: "/notes/5e0c6d1a-0b7e-4a57-9a43-2f7f3c1d9b10",
				Status: 204, Verdict: probe.Leak, Reason: "B's object is gone after this request (204)", Duration: 7 * ms},
			{Suite: "/folders", Check: "plant", Token: probe.TokenA, Method: "POST", Path: "/folders", URL: "/folders",
				Verdict: probe.Skip, Reason: "cannot build the request: B's tenant is unknown"},
			{Suite: "/folders", Check: "update", Token: probe.TokenA, Method: "PATCH", Path: "/folders/{id}", URL: "/folders/17",
				Verdict: probe.Error, Reason: `Patch "https://api.example.test/folders/17": context deadline exceeded`, Duration: 30 * time.Second},
		},
	}
}

func TestGolden(t *testing.T) {
	for _, format := range probe.Formats {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := probe.Write(&buf, goldenReport(), format); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "report."+format+".golden")
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./verify/probe -run TestGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), buf.String()); diff != "" {
				t.Errorf("%s output changed; review and run with -update (-want +got):\n%s", format, diff)
			}
		})
	}
}

// xmlNode is any XML element, for checking the JUnit shape.
type xmlNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []xmlNode  `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n xmlNode) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// junitSchema is what the Jenkins JUnit plugin's junit-10.xsd allows of
// the elements the probe writes: their attributes (required ones marked
// with a *) and children.
var junitSchema = map[string]struct{ attrs, children []string }{
	"testsuites": {[]string{"name", "time", "tests", "failures", "errors"}, []string{"testsuite"}},
	"testsuite": {[]string{"name*", "tests*", "failures*", "errors*", "group", "time", "skipped", "timestamp", "hostname", "id", "package", "file", "log", "url"},
		[]string{"testsuite", "properties", "testcase", "system-out", "system-err"}},
	"properties": {nil, []string{"property"}},
	"property":   {[]string{"name*", "value*"}, nil},
	"testcase":   {[]string{"name*", "time", "classname", "group"}, []string{"skipped", "error", "failure", "system-out", "system-err"}},
	"failure":    {[]string{"type", "message"}, nil},
	"error":      {[]string{"type", "message"}, nil},
	"skipped":    {[]string{"type", "message"}, nil},
	"system-out": {nil, nil},
	"system-err": {nil, nil},
}

func checkJUnit(t *testing.T, n xmlNode, path string) {
	t.Helper()
	name := n.XMLName.Local
	path += "/" + name
	s, ok := junitSchema[name]
	if !ok {
		t.Errorf("%s: element not in the schema", path)
		return
	}
	for _, a := range n.Attrs {
		if !slices.Contains(s.attrs, a.Name.Local) && !slices.Contains(s.attrs, a.Name.Local+"*") {
			t.Errorf("%s: attribute %s not in the schema", path, a.Name.Local)
		}
	}
	for _, a := range s.attrs {
		if req, ok := cutStar(a); ok {
			if _, has := n.attr(req); !has {
				t.Errorf("%s: required attribute %s missing", path, req)
			}
		}
	}
	if v, ok := n.attr("time"); ok {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			t.Errorf("%s: time %q is not a number", path, v)
		}
	}
	for _, c := range n.Nodes {
		if !slices.Contains(s.children, c.XMLName.Local) {
			t.Errorf("%s: child %s not allowed", path, c.XMLName.Local)
		}
		checkJUnit(t, c, path)
	}
}

func cutStar(s string) (string, bool) {
	if len(s) > 0 && s[len(s)-1] == '*' {
		return s[:len(s)-1], true
	}
	return "", false
}

// TestJUnitShape checks the JUnit output against junit-10.xsd's rules and
// checks that its counts add up.
func TestJUnitShape(t *testing.T) {
	var buf bytes.Buffer
	if err := probe.WriteJUnit(&buf, goldenReport()); err != nil {
		t.Fatal(err)
	}
	var root xmlNode
	if err := xml.Unmarshal(buf.Bytes(), &root); err != nil {
		t.Fatalf("not XML: %v\n%s", err, buf.String())
	}
	checkJUnit(t, root, "")
	type counts struct{ Tests, Failures, Errors, Skipped int }
	var total counts
	for _, s := range root.Nodes {
		var got counts
		for _, c := range s.Nodes {
			if c.XMLName.Local != "testcase" {
				continue
			}
			got.Tests++
			for _, k := range c.Nodes {
				switch k.XMLName.Local {
				case "failure":
					got.Failures++
				case "error":
					got.Errors++
				case "skipped":
					got.Skipped++
				}
			}
		}
		var want counts
		for _, f := range []struct {
			name string
			n    *int
		}{{"tests", &want.Tests}, {"failures", &want.Failures}, {"errors", &want.Errors}, {"skipped", &want.Skipped}} {
			v, _ := s.attr(f.name)
			*f.n, _ = strconv.Atoi(v)
		}
		if got != want {
			t.Errorf("testsuite %v: attributes say %+v, test cases %+v", s.Attrs, want, got)
		}
		total.Tests += got.Tests
		total.Failures += got.Failures
		total.Errors += got.Errors
	}
	if v, _ := root.attr("tests"); v != strconv.Itoa(total.Tests) {
		t.Errorf("testsuites tests=%s, want %d", v, total.Tests)
	}
	if v, _ := root.attr("failures"); v != strconv.Itoa(total.Failures) || total.Failures != 2 {
		t.Errorf("testsuites failures=%s, want %d (2 leaks)", v, total.Failures)
	}
}
