package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/bulkhead-dev/bulkhead/internal/buildinfo"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// versionReport is what `bulkhead version --json` prints.
type versionReport struct {
	Version    string `json:"version"`
	Revision   string `json:"revision"`
	Modified   bool   `json:"modified"`
	CommitTime string `json:"commit_time"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
	// SchemaVersion is the newest versioned migration this build applies,
	// TenantTables the tenant-table version it brings silos to.
	SchemaVersion int64 `json:"schema_version"`
	TenantTables  int   `json:"tenant_tables_version"`
}

// runVersion prints which build this is and which database schema it
// migrates to. It needs no database.
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "version [--json]", stderr)
	asJSON := fs.Bool("json", false, "print a JSON object instead of text")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	i := buildinfo.Read()
	r := versionReport{
		Version: i.Version, Revision: i.Revision, Modified: i.Modified, CommitTime: i.CommitTime,
		Go: i.Go, Platform: i.Platform,
		SchemaVersion: postgres.SchemaVersion(), TenantTables: postgres.TenantSchemaVersion,
	}
	if *asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	rev := "unknown (the build recorded no commit)"
	if i.Revision != "" {
		rev = i.Revision
		if i.Modified {
			rev += " (with uncommitted changes)"
		}
	}
	fmt.Fprintf(stdout, "bulkhead %s\n", i.Version)
	fmt.Fprintf(stdout, "  commit         %s\n", rev)
	if i.CommitTime != "" {
		fmt.Fprintf(stdout, "  commit time    %s\n", i.CommitTime)
	}
	fmt.Fprintf(stdout, "  go             %s %s\n", i.Go, i.Platform)
	_, err := fmt.Fprintf(stdout, "  schema         migration %d, tenant tables version %d\n", r.SchemaVersion, r.TenantTables)
	return err
}
