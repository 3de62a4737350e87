package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// TestVerifierCommand: bulkhead verifier switches a database to the
// native verifier and back, says which it runs, and refuses bad usage
// and a library it cannot load without changing anything.
func TestVerifierCommand(t *testing.T) {
	lib := pgtest.NativeLibrary(t)
	pg := pgtest.NewDB(t)
	cmd := cli(pg.AdminURL)
	// The suite may run every database on the native verifier.
	if _, err := cmd("verifier", "plpgsql"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"verifier", "bogus"},
		{"verifier", "status", "extra"},
		{"verifier", "status", "--library", lib},
		{"verifier", "plpgsql", "--library", lib},
		{"verifier", "native", "--json"},
		{"verifier", "native", "--library"},
	} {
		if _, err := cmd(args...); !errors.As(err, new(usageError)) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if _, err := cmd("verifier", "native", "--library", "/nonexistent/bulkhead_verifier.so"); fault.CodeOf(err) != "native_library_missing" {
		t.Errorf("a missing library: %v", err)
	}
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"verifier", "status"}, "bulkhead.context(): plpgsql, from bulkhead's migrations\n"},
		{[]string{"verifier", "native", "--library", lib}, "bulkhead.context(): native (" + lib + "), the checks of migration 25\n"},
		{[]string{"verifier", "status", "--json"}, `{"kind":"native","library":"` + lib + `"}` + "\n"},
		{[]string{"verifier", "plpgsql"}, "bulkhead.context(): plpgsql, from bulkhead's migrations\n"},
		{[]string{"verifier", "plpgsql"}, "bulkhead.context(): plpgsql, from bulkhead's migrations\n"},
		{[]string{"verifier", "status", "--json"}, `{"kind":"plpgsql"}` + "\n"},
	} {
		out, err := cmd(step.args...)
		if err != nil || out != step.want {
			t.Errorf("%s: %q, %v; want %q", strings.Join(step.args, " "), out, err, step.want)
		}
	}
}
