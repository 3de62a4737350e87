package fault_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/fault"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestKindSurvivesWrapping(t *testing.T) {
	sentinel := fault.E(fault.NotFound, "tenant_not_found", "The tenant does not exist.")
	err := fmt.Errorf("outer: %w", fault.From(sentinel, errors.New("no rows")))
	if fault.KindOf(err) != fault.NotFound || fault.CodeOf(err) != "tenant_not_found" || !errors.Is(err, sentinel) {
		t.Fatalf("KindOf=%v CodeOf=%q Is=%v", fault.KindOf(err), fault.CodeOf(err), errors.Is(err, sentinel))
	}
	var werr error = fault.From(sentinel, errors.New("cause"))
	fault.Wrap(&werr, "postgres.FindTenant(%s)", "acme")
	if !errors.Is(werr, sentinel) || !strings.Contains(werr.Error(), "postgres.FindTenant(acme)") {
		t.Fatalf("Wrap lost the kind or the op: %v", werr)
	}
	if fault.MessageOf(werr) != "The tenant does not exist." {
		t.Fatalf("MessageOf = %q", fault.MessageOf(werr))
	}
}

func TestInternalMessagesNeverLeak(t *testing.T) {
	err := &fault.Error{Kind: fault.Internal, Message: "db password is hunter2", Err: errors.New("secret")}
	if strings.Contains(fault.MessageOf(err), "hunter2") || strings.Contains(fault.MessageOf(errors.New("pq: secret")), "secret") {
		t.Fatal("an internal error's text reached the caller's message")
	}
	if fault.KindOf(context.Canceled) != fault.Canceled || fault.KindOf(fmt.Errorf("x: %w", context.DeadlineExceeded)) != fault.Canceled {
		t.Fatal("context errors are not Canceled")
	}
}

// TestCodesGolden lists every stable error code in the module, so a
// rename shows up in review. Run with -update to accept a change.
func TestCodesGolden(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "--", "../*.go").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v (the test reads the checkout)", err)
	}
	re := regexp.MustCompile(`(?s)fault\.(?:E|Errorf)\(fault\.(\w+),\s*"([a-z_]+)"|Kind: fault\.(\w+), Code: "([a-z_]+)"`)
	set := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			kind, code := m[1], m[2]
			if kind == "" {
				kind, code = m[3], m[4]
			}
			set[code+"\t"+kind] = true
		}
	}
	var lines []string
	for l := range set {
		lines = append(lines, l)
	}
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"
	if *update {
		if err := os.WriteFile("testdata/codes.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/codes.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("error codes changed; review and run go test ./fault -update\ngot:\n%s", got)
	}
}
