package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Formats lists the output formats Write accepts.
var Formats = []string{"text", "json", "sarif"}

// Write writes rep to w in format text, json or sarif.
func Write(w io.Writer, rep *Report, format string) error {
	switch format {
	case "text", "":
		return WriteText(w, rep)
	case "json":
		return WriteJSON(w, rep)
	case "sarif":
		return WriteSARIF(w, rep)
	}
	return fmt.Errorf("lint: unknown format %q", format)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Summary returns the one-line count of findings by severity.
func (r *Report) Summary() string {
	return fmt.Sprintf("%s, %s, %s", plural(r.Count(Error), "error", "errors"),
		plural(r.Count(Warn), "warning", "warnings"), plural(r.Count(Info), "info", "info"))
}

// WriteText writes rep for people: a header, the findings grouped by
// severity (most severe first), and a summary line.
func WriteText(w io.Writer, rep *Report) error {
	var b strings.Builder
	kind := "database"
	if rep.Bulkhead {
		kind = "bulkhead database"
	}
	fmt.Fprintf(&b, "bulkhead lint: %s %s (PostgreSQL %s), tenant column %s\n", kind, rep.Database, rep.ServerVersion, rep.TenantColumn)
	roles := "none"
	if len(rep.AppRoles) > 0 {
		roles = strings.Join(rep.AppRoles, ", ")
	}
	fmt.Fprintf(&b, "app roles: %s\n", roles)
	fmt.Fprintf(&b, "exposed schemas: %s\n", strings.Join(rep.Schemas, ", "))
	explained := map[string]bool{} // each rule's why is printed once
	for _, sev := range []Severity{Error, Warn, Info} {
		n := rep.Count(sev)
		if n == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s (%d)\n", strings.ToUpper(string(sev)), n)
		for _, f := range rep.Findings {
			if f.Severity != sev {
				continue
			}
			fmt.Fprintf(&b, "\n  %s %s [%s]: %s\n", f.ID, f.Name, f.Category, f.Object)
			fmt.Fprintf(&b, "    %s\n", f.Message)
			if !explained[f.ID+f.Why] {
				explained[f.ID+f.Why] = true
				fmt.Fprintf(&b, "    why: %s\n", f.Why)
			}
			if f.Fix != "" {
				b.WriteString("    fix:\n")
				for _, l := range strings.Split(f.Fix, "\n") {
					fmt.Fprintf(&b, "      %s\n", l)
				}
			}
		}
	}
	fmt.Fprintf(&b, "\n%s\n", rep.Summary())
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes rep as one JSON object: the report's fields, a summary
// with the count per severity, and the findings.
func WriteJSON(w io.Writer, rep *Report) error {
	out := struct {
		*Report
		Summary  map[Severity]int `json:"summary"`
		Findings []Finding        `json:"findings"`
	}{rep, map[Severity]int{Error: rep.Count(Error), Warn: rep.Count(Warn), Info: rep.Count(Info)}, rep.Findings}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	if rep.AppRoles == nil || rep.Schemas == nil {
		r := *rep
		r.AppRoles, r.Schemas = nonNil(r.AppRoles), nonNil(r.Schemas)
		out.Report = &r
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// SARIF 2.1.0, the parts lint uses. Findings are about database objects,
// not files, so results carry logical locations only.

// SARIFSchema is the $schema lint's SARIF names.
const SARIFSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

const (
	informationURI = "https://github.com/bulkhead-dev/bulkhead"
	docsURI        = "https://github.com/bulkhead-dev/bulkhead/blob/main/docs/lint.md"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool       sarifTool      `json:"tool"`
	Results    []sarifResult  `json:"results"`
	Properties map[string]any `json:"properties,omitempty"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifMessage struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifMessage   `json:"shortDescription"`
	FullDescription      sarifMessage   `json:"fullDescription"`
	Help                 sarifMessage   `json:"help"`
	HelpURI              string         `json:"helpUri"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	RuleIndex  int             `json:"ruleIndex"`
	Level      string          `json:"level"`
	Message    sarifMessage    `json:"message"`
	Locations  []sarifLocation `json:"locations"`
	Properties map[string]any  `json:"properties"`
}

type sarifLocation struct {
	LogicalLocations []sarifLogical `json:"logicalLocations"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

func sarifLevel(s Severity) string {
	switch s {
	case Error:
		return "error"
	case Warn:
		return "warning"
	}
	return "note"
}

// sarifKind maps an object kind to SARIF's logical location kinds where
// one fits, and keeps lint's own word otherwise (SARIF allows that).
func sarifKind(kind string) string {
	switch kind {
	case "function":
		return "function"
	case "schema":
		return "namespace"
	case "database":
		return "module"
	}
	return kind
}

// shortName is the last component of a qualified name: the policy name of
// "p ON s.t", the function name of "s.f(int)", the table of "s.t".
func shortName(o Object) string {
	n := o.Name
	if i := strings.Index(n, " ON "); i >= 0 {
		return n[:i]
	}
	if i := strings.IndexByte(n, '('); i >= 0 {
		n = n[:i]
	}
	inQuote := false
	last := 0
	for i := 0; i < len(n); i++ {
		switch n[i] {
		case '"':
			inQuote = !inQuote
		case '.':
			if !inQuote {
				last = i + 1
			}
		}
	}
	return n[last:]
}

// WriteSARIF writes rep as a SARIF 2.1.0 log with one run. Every rule is
// listed, so a result's ruleIndex is stable across runs.
func WriteSARIF(w io.Writer, rep *Report) error {
	drv := sarifDriver{Name: "bulkhead lint", InformationURI: informationURI}
	index := map[string]int{}
	for i, r := range rules {
		index[r.ID] = i
		props := map[string]any{"tags": []string{string(r.Category), "postgresql", "row-level-security"}}
		if r.Splinter != "" {
			props["splinter"] = r.Splinter
		}
		drv.Rules = append(drv.Rules, sarifRule{
			ID:                   r.ID,
			Name:                 r.Name,
			ShortDescription:     sarifMessage{Text: r.Title},
			FullDescription:      sarifMessage{Text: strings.TrimSpace(r.Why + " " + r.Levels)},
			Help:                 sarifMessage{Text: r.Fix, Markdown: r.Fix + "\n\nSee [" + r.ID + "](" + ruleURI(r) + ")."},
			HelpURI:              ruleURI(r),
			DefaultConfiguration: sarifConfig{Level: sarifLevel(r.Severity)},
			Properties:           props,
		})
	}
	run := sarifRun{Tool: sarifTool{Driver: drv}, Results: []sarifResult{},
		Properties: map[string]any{
			"database": rep.Database, "serverVersion": rep.ServerVersion, "bulkhead": rep.Bulkhead,
			"tenantColumn": rep.TenantColumn, "appRoles": nonNil(rep.AppRoles), "schemas": nonNil(rep.Schemas),
		}}
	for _, f := range rep.Findings {
		run.Results = append(run.Results, sarifResult{
			RuleID:    f.ID,
			RuleIndex: index[f.ID],
			Level:     sarifLevel(f.Severity),
			Message:   sarifMessage{Text: f.Message},
			Locations: []sarifLocation{{LogicalLocations: []sarifLogical{{
				Name: shortName(f.Object), FullyQualifiedName: f.Object.Name, Kind: sarifKind(f.Object.Kind),
			}}}},
			Properties: map[string]any{"severity": f.Severity, "category": f.Category, "objectKind": f.Object.Kind, "fix": f.Fix},
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(sarifLog{Schema: SARIFSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}

// ruleURI is the rule's section of docs/lint.md.
func ruleURI(r Rule) string { return docsURI + "#" + ruleAnchor(r) }

// ruleAnchor is the anchor GitHub gives the heading "### <ID> <name>".
func ruleAnchor(r Rule) string { return strings.ToLower(r.ID) + "-" + r.Name }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
