package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(good, []byte(`{"Version":"2012-10-17","Statement":[{"Sid":"NoDeletes","Effect":"Deny","Action":"data:Delete","Resource":"*"}]}`), 0o600)
	os.WriteFile(bad, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"data:Select","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}]}`), 0o600)
	cmd := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, &out, io.Discard)
		return out.String(), err
	}
	out, err := cmd("policy", "validate", good, bad)
	if !errors.As(err, new(findingsError)) || !strings.Contains(out, "good.json: ok") || !strings.Contains(out, "Statement[0]") || !strings.Contains(out, "StringEqualz") {
		t.Fatalf("validate: %q %v", out, err)
	}
	missing := filepath.Join(t.TempDir(), "missing.json")
	if out, err := cmd("policy", "validate", good, missing); !errors.As(err, new(findingsError)) || !strings.Contains(out, "missing.json: cannot read it: no such file or directory") {
		t.Fatalf("validate of a file that is not there: %q %v, want the reason", out, err)
	}
	const acme = "11111111-1111-4111-8111-111111111111"
	const globex = "22222222-2222-4222-8222-222222222222"
	for _, tt := range []struct {
		args []string
		want string
		ok   bool
	}{
		{[]string{"--plan", "premium", "--tenant-id", acme, "--role", "admin", "--action", "data:Delete", "--resource", "brn:bulkhead:data:" + acme + ":table/projects",
			"--context", "data:LeadingKeys=" + acme}, "ALLOW by ReadWriteDeleteOwnTables", true},
		{[]string{"--plan", "basic", "--tenant-id", acme, "--role", "admin", "--action", "data:Delete", "--resource", "brn:bulkhead:data:" + acme + ":table/projects"}, "DENY (implicit)", false},
		{[]string{"--plan", "premium", "--tenant-id", acme, "--action", "data:Select", "--resource", "brn:bulkhead:data:" + globex + ":table/projects"}, "DENY (explicit) by DenyOtherTenantsData", false},
		{[]string{"--plan", "premium", "--tenant-id", acme, "--role", "admin", "--action", "data:Delete", "--resource", "brn:bulkhead:data:" + acme + ":table/projects",
			"--policy", good}, "DENY (explicit) by NoDeletes", false},
	} {
		out, err := cmd(append([]string{"policy", "simulate"}, tt.args...)...)
		if !strings.HasPrefix(out, tt.want) || (err == nil) != tt.ok {
			t.Errorf("simulate %v = %q %v, want %q", tt.args, out, err, tt.want)
		}
	}
	out, err = cmd("policy", "export", "--aws", "--table", "AppTable")
	var doc map[string]any
	if err != nil || json.Unmarshal([]byte(out), &doc) != nil || !strings.Contains(out, "dynamodb:LeadingKeys") || !strings.Contains(out, "${aws:PrincipalTag/TenantID}") {
		t.Fatalf("export: %q %v", out, err)
	}
}
