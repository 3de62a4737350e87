package main_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVetTool builds bulkheadvet and runs it, as go vet's -vettool and on
// its own, over a copy of testdata/vetmod: a module with the seed's bad
// handler in ./bad and its good handler in ./good.
func TestVetTool(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("exec.LookPath(go) = %v; the test needs the go command", err)
	}
	bin := filepath.Join(t.TempDir(), "bulkheadvet")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mod := t.TempDir()
	if err := os.CopyFS(mod, os.DirFS(filepath.Join("testdata", "vetmod"))); err != nil {
		t.Fatal(err)
	}
	line := lineOf(t, filepath.Join(mod, "bad", "main.go"), "cachedTenantConfig = cfg")
	want := regexp.MustCompile(fmt.Sprintf(`bad[/\\]main\.go:%d:\d+: package-level variable cachedTenantConfig is written on a path reachable from handler HandleRequest; it outlives the invocation and can reach the next tenant`, line))

	for _, tt := range []struct {
		name     string
		args     []string
		findings bool
	}{
		{"VetToolBad", []string{goTool, "vet", "-vettool=" + bin, "./..."}, true},
		{"VetToolGood", []string{goTool, "vet", "-vettool=" + bin, "./good"}, false},
		{"StandaloneBad", []string{bin, "./..."}, true},
		{"StandaloneGood", []string{bin, "./good"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(tt.args[0], tt.args[1:]...)
			cmd.Dir = mod
			// Offline and exactly this module: no proxy, workspace or
			// toolchain switch, and no GOFLAGS from the caller.
			cmd.Env = append(os.Environ(), "GOFLAGS=", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("%s: %v", strings.Join(tt.args, " "), err)
			}
			switch {
			case tt.findings && err == nil:
				t.Errorf("%s exited 0, want non-zero\n%s", strings.Join(tt.args, " "), out)
			case tt.findings && !want.Match(out):
				t.Errorf("%s output does not match %s:\n%s", strings.Join(tt.args, " "), want, out)
			case !tt.findings && err != nil:
				t.Errorf("%s: %v, want exit 0\n%s", strings.Join(tt.args, " "), err, out)
			}
			if tt.findings {
				if n := bytes.Count(out, []byte("package-level variable")); n != 1 {
					t.Errorf("%s reported %d findings, want 1:\n%s", strings.Join(tt.args, " "), n, out)
				}
			}
		})
	}
}

// lineOf returns the number of the first line of file that contains s.
func lineOf(tb testing.TB, file, s string) int {
	tb.Helper()
	f, err := os.Open(file)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), s) {
			return n
		}
	}
	tb.Fatalf("%s has no line containing %q", file, s)
	return 0
}
