package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestCommandsDocumented: docs/commands.md's table lists exactly the
// commands `bulkhead help` lists, each linked to a section that exists.
func TestCommandsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/commands.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	rows := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| \\[`([a-z-]+)`\\]\\(#([a-z-]+)\\)").FindAllStringSubmatch(doc, -1) {
		rows[m[1]] = m[2]
	}
	listed := map[string]bool{}
	for _, c := range commands() {
		listed[c.name] = true
		anchor, ok := rows[c.name]
		if !ok {
			t.Errorf("docs/commands.md's table lacks %s", c.name)
			continue
		}
		heading := "## " + strings.ReplaceAll(anchor, "-", " ")
		if !strings.Contains(doc, "\n"+heading+"\n") {
			t.Errorf("%s links to #%s, but there is no heading %q", c.name, anchor, heading)
		}
	}
	for name := range rows {
		if !listed[name] {
			t.Errorf("docs/commands.md's table lists %s, which bulkhead help does not", name)
		}
	}
}
