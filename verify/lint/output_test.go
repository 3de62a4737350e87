package lint

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenReport is a small, fixed report: built directly, not from a
// database, so the golden files do not depend on the server.
func goldenReport() *Report {
	return &Report{
		Database:      "shop",
		ServerVersion: "15.18",
		TenantColumn:  "tenant_id",
		AppRoles:      []string{"authenticator"},
		Schemas:       []string{"api", "public"},
		Findings: finish([]Finding{
			{ID: "L10", Object: Object{Kind: "policy", Name: `tenant_isolation ON public.docs`},
				Message: "Policy tenant_isolation on public.docs evaluates auth.jwt() once per row; in a sub-select it runs once per query.",
				Fix:     "ALTER POLICY tenant_isolation ON public.docs USING ((tenant_id = ((SELECT auth.jwt()) ->> 'tenant_id'::text)));"},
			{ID: "L01", Object: Object{Kind: "table", Name: `public."Invoices"`},
				Message: `Tenant table public."Invoices" has row security off; app roles can select every tenant's rows.`,
				Fix:     "ALTER TABLE public.\"Invoices\" ENABLE ROW LEVEL SECURITY;\nALTER TABLE public.\"Invoices\" FORCE ROW LEVEL SECURITY;"},
			{ID: "L06", Object: Object{Kind: "role", Name: "authenticator"},
				Message: "App role authenticator can SET ROLE service_role, which has BYPASSRLS.",
				Fix:     "REVOKE service_role FROM authenticator;"},
			{ID: "S0028", Severity: Info, Object: Object{Kind: "function", Name: "api.search(text)"},
				Message: "api.search(text) is SECURITY DEFINER (owner api_owner) and app roles can execute it; review what it reads and returns.",
				Fix:     "-- if app roles need not call it:\nREVOKE EXECUTE ON FUNCTION api.search(text) FROM PUBLIC;"},
			{ID: "S0014", Object: Object{Kind: "extension", Name: "pg_trgm"},
				Message: "Extension pg_trgm is installed in schema public.",
				Fix:     "CREATE SCHEMA IF NOT EXISTS extensions;\nALTER EXTENSION pg_trgm SET SCHEMA extensions;"},
			// Superseded by the L10 on the same policy: dropped.
			{ID: "S0003", Object: Object{Kind: "policy", Name: `tenant_isolation ON public.docs`}, Message: "per row"},
		}),
	}
}

func TestGolden(t *testing.T) {
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, goldenReport(), format); err != nil {
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
				t.Fatalf("%v (run go test ./verify/lint -run TestGolden -update)", err)
			}
			if diff := cmp.Diff(string(want), buf.String()); diff != "" {
				t.Errorf("%s output changed; review and run with -update (-want +got):\n%s", format, diff)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	rep := goldenReport()
	var got []string
	for _, f := range rep.Findings {
		got = append(got, string(f.Severity)+" "+f.ID+" "+f.Object.Name)
		if f.Name == "" || f.Why == "" || f.Category == "" {
			t.Errorf("finish left %s without its rule's name, why or category", f.ID)
		}
	}
	want := []string{
		`error L01 public."Invoices"`,
		"error L06 authenticator",
		"error L10 tenant_isolation ON public.docs",
		"warn S0014 pg_trgm",
		"info S0028 api.search(text)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings after finish (-want +got):\n%s", diff)
	}
	if !rep.Fails(Warn) || !rep.Fails(Error) || rep.Count(Info) != 1 {
		t.Errorf("Fails/Count disagree with the findings")
	}
	if (&Report{}).Fails(Info) {
		t.Error("an empty report fails")
	}
}

// TestSARIFShape checks the SARIF log against the parts of the 2.1.0
// schema that consumers rely on.
func TestSARIFShape(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, goldenReport()); err != nil {
		t.Fatal(err)
	}
	var log struct {
		Schema  string `json:"$schema"`
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name           string `json:"name"`
					InformationURI string `json:"informationUri"`
					Rules          []struct {
						ID                   string            `json:"id"`
						Name                 string            `json:"name"`
						ShortDescription     map[string]string `json:"shortDescription"`
						FullDescription      map[string]string `json:"fullDescription"`
						Help                 map[string]string `json:"help"`
						DefaultConfiguration struct {
							Level string `json:"level"`
						} `json:"defaultConfiguration"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string            `json:"ruleId"`
				RuleIndex int               `json:"ruleIndex"`
				Level     string            `json:"level"`
				Message   map[string]string `json:"message"`
				Locations []struct {
					LogicalLocations []struct {
						Name               string `json:"name"`
						FullyQualifiedName string `json:"fullyQualifiedName"`
						Kind               string `json:"kind"`
					} `json:"logicalLocations"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	dec := json.NewDecoder(&buf)
	if err := dec.Decode(&log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || log.Schema != SARIFSchema || len(log.Runs) != 1 {
		t.Fatalf("version %q, $schema %q, %d runs", log.Version, log.Schema, len(log.Runs))
	}
	levels := map[string]bool{"error": true, "warning": true, "note": true, "none": true}
	drv := log.Runs[0].Tool.Driver
	if drv.Name == "" || drv.InformationURI == "" || len(drv.Rules) != len(Rules()) {
		t.Fatalf("driver %q %q with %d rules", drv.Name, drv.InformationURI, len(drv.Rules))
	}
	for _, r := range drv.Rules {
		if r.ID == "" || r.Name == "" || r.ShortDescription["text"] == "" || r.FullDescription["text"] == "" ||
			r.Help["text"] == "" || !levels[r.DefaultConfiguration.Level] {
			t.Errorf("incomplete rule %+v", r)
		}
	}
	res := log.Runs[0].Results
	if len(res) != len(goldenReport().Findings) {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		if drv.Rules[r.RuleIndex].ID != r.RuleID || !levels[r.Level] || r.Message["text"] == "" ||
			len(r.Locations) != 1 || len(r.Locations[0].LogicalLocations) != 1 ||
			r.Locations[0].LogicalLocations[0].FullyQualifiedName == "" || r.Locations[0].LogicalLocations[0].Name == "" {
			t.Errorf("incomplete result %+v", r)
		}
	}
}

func TestShortName(t *testing.T) {
	for _, tt := range []struct {
		o    Object
		want string
	}{
		{Object{"policy", "p ON s.t"}, "p"},
		{Object{"function", "s.f(integer, text)"}, "f"},
		{Object{"table", `"my.schema"."T"`}, `"T"`},
		{Object{"role", "app"}, "app"},
	} {
		if got := shortName(tt.o); got != tt.want {
			t.Errorf("shortName(%v) = %q, want %q", tt.o, got, tt.want)
		}
	}
}

// TestRules keeps the rule table tidy: unique ids, every field set, and
// supersession only between existing rules.
func TestRules(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID] || seen[r.Name] {
			t.Errorf("duplicate rule %s %s", r.ID, r.Name)
		}
		seen[r.ID], seen[r.Name] = true, true
		if r.Title == "" || r.Why == "" || r.Fix == "" || r.Severity == "" || r.Category == "" {
			t.Errorf("rule %s is incomplete", r.ID)
		}
		for _, s := range r.Supersedes {
			if _, ok := ruleByID[s]; !ok {
				t.Errorf("rule %s supersedes unknown %s", r.ID, s)
			}
		}
	}
}

// TestDocs keeps the rule sections of docs/lint.md in step with Rules():
// they are generated between the rules:begin and rules:end markers. Run
// with -update to rewrite them.
func TestDocs(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "lint.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	const begin, end = "<!-- rules:begin", "<!-- rules:end -->"
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the rules markers", path)
	}
	i += strings.Index(doc[i:], "-->") + len("-->\n")
	got, want := doc[i:j], rulesMarkdown()
	if *update && got != want {
		if err := os.WriteFile(path, []byte(doc[:i]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("docs/lint.md is out of date; run go test ./verify/lint -run TestDocs -update (-want +got):\n%s", diff)
	}
}

// rulesMarkdown renders every rule as a section of docs/lint.md.
func rulesMarkdown() string {
	var b strings.Builder
	b.WriteString("| id | name | severity | category | what it finds |\n|---|---|---|---|---|\n")
	for _, r := range Rules() {
		fmt.Fprintf(&b, "| [%s](#%s) | `%s` | %s | %s | %s |\n", r.ID, ruleAnchor(r), r.Name, r.Severity, r.Category, r.Title)
	}
	for _, r := range Rules() {
		fmt.Fprintf(&b, "\n### %s %s\n\n**%s.** Severity %s, category %s.", r.ID, r.Name, r.Title, r.Severity, r.Category)
		if r.Splinter != "" {
			fmt.Fprintf(&b, " Derived from splinter %s.", r.Splinter)
		}
		if len(r.Supersedes) > 0 {
			fmt.Fprintf(&b, " Supersedes %s on the same object.", strings.Join(r.Supersedes, ", "))
		}
		fmt.Fprintf(&b, "\n\n- **Why it matters:** %s\n", r.Why)
		if r.Levels != "" {
			fmt.Fprintf(&b, "- **Severity and scope:** %s\n", r.Levels)
		}
		fmt.Fprintf(&b, "- **How to fix:** %s\n", r.Fix)
	}
	return b.String()
}
