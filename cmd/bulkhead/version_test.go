package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/buildinfo"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// TestVersion: `bulkhead version` and `bulkhead --version` say which build
// this is and which schema it migrates to, in text and in JSON, without a
// database; a stray argument is a usage error.
func TestVersion(t *testing.T) {
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	ctx := context.Background()
	i := buildinfo.Read()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var out bytes.Buffer
		if err := run(ctx, args, &out, io.Discard); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, want := range []string{
			"bulkhead " + i.Version + "\n",
			fmt.Sprintf("schema         migration %d, tenant tables version %d\n", postgres.SchemaVersion(), postgres.TenantSchemaVersion),
			i.Go + " " + i.Platform,
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v printed\n%s\nwithout %q", args, out.String(), want)
			}
		}
	}

	var out bytes.Buffer
	if err := run(ctx, []string{"version", "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var r versionReport
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("version --json: %v", err)
	}
	want := versionReport{Version: i.Version, Revision: i.Revision, Modified: i.Modified, CommitTime: i.CommitTime,
		Go: i.Go, Platform: i.Platform, SchemaVersion: postgres.SchemaVersion(), TenantTables: postgres.TenantSchemaVersion}
	if r != want || r.SchemaVersion == 0 || r.TenantTables == 0 {
		t.Errorf("version --json = %+v, want %+v", r, want)
	}

	if err := run(ctx, []string{"version", "extra"}, io.Discard, io.Discard); !isUsage(err) {
		t.Errorf("version extra: %v, want a usage error", err)
	}
}
