package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// TestProbeBulkhead runs `bulkhead probe --bulkhead` against a real server,
// once with tokens from the environment and a file, once by logging in.
func TestProbeBulkhead(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	a := s.CreateTenant(t, "probe-a", "pool")
	b := s.CreateTenant(t, "probe-b", "silo")
	dir := t.TempDir()
	fileB := filepath.Join(dir, "b.token")
	if err := os.WriteFile(fileB, []byte(b.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROBE_TEST_TOKEN_A", a.AdminToken)

	t.Run("tokens", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := runProbe(t.Context(), []string{"--base-url", s.URL, "--bulkhead", "--token-a-env", "PROBE_TEST_TOKEN_A",
			"--token-b-file", fileB, "--format", "junit"}, &stdout, &stderr)
		if err != nil {
			t.Fatalf("runProbe = %v; stderr:\n%s\n%s", err, stderr.String(), stdout.String())
		}
		var suites struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Suites   []struct {
				Name string `xml:"name,attr"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal(stdout.Bytes(), &suites); err != nil {
			t.Fatalf("stdout is not XML: %v\n%s", err, stdout.String())
		}
		if suites.Tests < 100 || suites.Failures != 0 || len(suites.Suites) != 3 {
			t.Errorf("tests=%d failures=%d suites=%d, want 100+, 0, 3", suites.Tests, suites.Failures, len(suites.Suites))
		}
		if !strings.Contains(stderr.String(), "0 leak, 0 error") {
			t.Errorf("no summary on stderr: %q", stderr.String())
		}
		if strings.Contains(stdout.String()+stderr.String(), a.AdminToken) {
			t.Error("the output holds A's token")
		}
	})

	t.Run("login", func(t *testing.T) {
		for _, tn := range []struct{ file, slug string }{{"a.json", "probe-a"}, {"b.json", "probe-b"}} {
			body := `{"tenant": "` + tn.slug + `", "email": "admin@` + tn.slug + `.test", "password": "${PROBE_TEST_PW_` + strings.ToUpper(tn.slug[6:]) + `}"}`
			if err := os.WriteFile(filepath.Join(dir, tn.file), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		t.Setenv("PROBE_TEST_PW_A", "pw-admin@probe-a.test")
		t.Setenv("PROBE_TEST_PW_B", "pw-admin@probe-b.test")
		var stdout, stderr bytes.Buffer
		err := runProbe(t.Context(), []string{"--base-url", s.URL, "--bulkhead", "--login-url", s.URL + "/v1/auth/token",
			"--login-body-a", filepath.Join(dir, "a.json"), "--login-body-b", filepath.Join(dir, "b.json"), "--format", "json"}, &stdout, &stderr)
		if err != nil {
			t.Fatalf("runProbe = %v; stderr:\n%s", err, stderr.String())
		}
		var rep struct {
			Failed bool           `json:"failed"`
			Counts map[string]int `json:"counts"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("stdout is not JSON: %v", err)
		}
		if rep.Failed || rep.Counts["pass"] < 100 {
			t.Errorf("failed=%v counts=%v", rep.Failed, rep.Counts)
		}
	})
}

// TestProbeLeakExits1 probes a notes API that lists every tenant's notes:
// the command reports the leak and returns findingsError (exit 1).
func TestProbeLeakExits1(t *testing.T) {
	var mu sync.Mutex
	type note struct{ ID, Tenant, Title string }
	var notes []note
	tenants := map[string]string{"Bearer opaque-token-a": "a", "Bearer opaque-token-b": "b"}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		tenant, ok := tenants[r.Header.Get("Authorization")]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == "/notes":
			var in struct{ Title string }
			json.NewDecoder(r.Body).Decode(&in)
			n := note{ID: strconv.Itoa(1000 + len(notes)), Tenant: tenant, Title: in.Title}
			notes = append(notes, n)
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]string{"id": n.ID, "title": n.Title})
		case r.Method == "GET" && r.URL.Path == "/notes":
			out := []map[string]string{}
			for _, n := range notes { // the bug: no tenant filter
				out = append(out, map[string]string{"id": n.ID, "title": n.Title})
			}
			json.NewEncoder(w).Encode(out)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer hs.Close()
	dir := t.TempDir()
	docPath := filepath.Join(dir, "notes.json")
	doc := `{"openapi":"3.0.3","info":{"title":"Leaky","version":"1"},"paths":{"/notes":{
		"get":{"responses":{"200":{"description":"notes"}}},
		"post":{"requestBody":{"content":{"application/json":{"schema":{"type":"object","required":["title"],
			"properties":{"title":{"type":"string"}}}}}},"responses":{"201":{"description":"created"}}}}}}`
	if err := os.WriteFile(docPath, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"a": "opaque-token-a", "b": "opaque-token-b"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	err := runProbe(t.Context(), []string{"--base-url", hs.URL, "--openapi", docPath,
		"--token-a-file", filepath.Join(dir, "a"), "--token-b-file", filepath.Join(dir, "b")}, &stdout, &stderr)
	if !errors.As(err, new(findingsError)) {
		t.Fatalf("runProbe = %v, want findingsError\n%s", err, stdout.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "LEAK         list") || !strings.Contains(out, "token alg-none not tried") {
		t.Errorf("output:\n%s", out)
	}
}

func TestProbeUsage(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	os.WriteFile(tok, []byte("x"), 0o600)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no base url", []string{"--bulkhead", "--token-a-file", tok, "--token-b-file", tok}, "--base-url"},
		{"no api", []string{"--base-url", "http://x", "--token-a-file", tok, "--token-b-file", tok}, "exactly one of"},
		{"two apis", []string{"--base-url", "http://x", "--bulkhead", "--openapi", "f", "--token-a-file", tok, "--token-b-file", tok}, "exactly one of"},
		{"no tokens", []string{"--base-url", "http://x", "--bulkhead"}, "tenant A's token"},
		{"a token twice", []string{"--base-url", "http://x", "--bulkhead", "--token-a-env", "X", "--token-a-file", tok, "--token-b-file", tok}, "one of"},
		{"empty env", []string{"--base-url", "http://x", "--bulkhead", "--token-a-env", "PROBE_TEST_UNSET_VAR", "--token-b-file", tok}, "empty or not set"},
		{"same token", []string{"--base-url", "http://x", "--bulkhead", "--token-a-file", tok, "--token-b-file", tok}, "the same"},
		{"tokens and login", []string{"--base-url", "http://x", "--bulkhead", "--token-a-file", tok, "--login-url", "http://x/login"}, "not both"},
		{"half a login", []string{"--base-url", "http://x", "--bulkhead", "--login-url", "http://x/login"}, "--login-body-a"},
		{"bad format", []string{"--base-url", "http://x", "--bulkhead", "--format", "sarif"}, "--format"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runProbe(t.Context(), tt.args, &stdout, &stderr)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("runProbe(%q) = %v, want a usage error about %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestExpandBody(t *testing.T) {
	t.Setenv("PROBE_TEST_SECRET", `p"w\1`)
	got, err := expandBody(`{"password": "${PROBE_TEST_SECRET}", "cost": "$5"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"password": "p\"w\\1", "cost": "$5"}`; got != want {
		t.Errorf("expandBody = %s, want %s", got, want)
	}
	if _, err := expandBody(`{"password": "${PROBE_TEST_NOT_SET}"}`); err == nil || !strings.Contains(err.Error(), "PROBE_TEST_NOT_SET") {
		t.Errorf("unset variable: err = %v", err)
	}
}
