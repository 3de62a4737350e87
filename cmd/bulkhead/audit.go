package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "audit verify [--checkpoints FILE] | tail [-f] [--tenant ID] [-n N] | prune --before TIME --yes"
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(stderr, "usage: bulkhead "+synopsis)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	if sub != "verify" && sub != "tail" && sub != "prune" {
		return usageError{fmt.Sprintf("unknown audit subcommand %q; usage: bulkhead %s", sub, synopsis)}
	}
	fs := newFlags("audit "+sub, synopsis, stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	checkpoints := fs.String("checkpoints", "", "a JSON-lines audit log (serve --audit-log) whose signed checkpoints must match the chain (catches a cut-off tail)")
	follow := fs.Bool("f", false, "keep printing new events")
	slug := fs.String("tenant", "", "only this tenant's events")
	n := fs.Int("n", 20, "how many of the latest events to print first")
	before := fs.String("before", "", "prune: remove chained events older than this RFC 3339 time")
	yes := fs.Bool("yes", false, "prune: confirm")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noPositional(fs, ""); err != nil {
		return err
	}
	if *n < 0 {
		return usageError{fmt.Sprintf("-n must not be negative (%d)", *n)}
	}
	db, err := openStore(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "verify":
		var ext []audit.Checkpoint
		if *checkpoints != "" {
			if ext, err = readCheckpoints(*checkpoints); err != nil {
				return err
			}
		}
		rep, err := db.VerifyAudit(ctx, ext, func(n int64) { fmt.Fprintf(stderr, "\rread %d events", n) })
		fmt.Fprintln(stderr)
		if err != nil {
			return err
		}
		if rep.Break != nil {
			fmt.Fprintf(stdout, "TAMPERED: %s\n", rep.Break.Error())
			return findingsError{}
		}
		fmt.Fprintf(stdout, "ok: %d events chained, %d signed checkpoints match\n", rep.Events, rep.Checkpoints)
		if rep.Retained != nil {
			fmt.Fprintf(stdout, "the chain starts after event %d: %d older events were removed on %s (signed retention record)\n",
				rep.Retained.ThroughSeq, rep.Retained.Removed, rep.Retained.At.Format(time.RFC3339))
		}
		return nil
	case "prune":
		t, err := time.Parse(time.RFC3339, *before)
		if err != nil || !*yes {
			return usageError{"usage: bulkhead audit prune --before 2026-01-01T00:00:00Z --yes"}
		}
		ret, err := db.PruneAudit(ctx, t)
		if err != nil {
			return err
		}
		if ret == nil {
			fmt.Fprintln(stdout, "nothing older than", t.Format(time.RFC3339))
			return nil
		}
		fmt.Fprintf(stdout, "removed %d events through %d; signed retention record by key %s\n", ret.Removed, ret.ThroughSeq, ret.KeyID)
		return nil
	case "tail":
		f := postgres.EventFilter{PlatformOnly: true, Limit: 1000}
		if *slug != "" {
			t, err := db.FindTenantBySlug(ctx, tenant.Slug(*slug), true)
			if err != nil {
				return err
			}
			id := string(t.ID)
			f.TenantID = &id
		}
		// Start n events before the end.
		var all []json.RawMessage
		for {
			page, err := db.FindEvents(ctx, f)
			if err != nil {
				return err
			}
			evs, last := page.Events, page.Next
			all = append(all, evs...)
			if len(all) > *n {
				all = all[len(all)-*n:]
			}
			if len(evs) < f.Limit {
				if last > 0 {
					f.After = last
				}
				break
			}
			f.After = last
		}
		for _, e := range all {
			fmt.Fprintln(stdout, string(e))
		}
		for *follow {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			page, err := db.FindEvents(ctx, f)
			if err != nil {
				return err
			}
			evs, last := page.Events, page.Next
			for _, e := range evs {
				fmt.Fprintln(stdout, string(e))
			}
			if last > 0 {
				f.After = last
			}
		}
		return nil
	}
	return usageError{fmt.Sprintf("unknown audit subcommand %q", sub)}
}

// readCheckpoints reads the checkpoint lines of a JSON-lines audit log.
func readCheckpoints(path string) ([]audit.Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []audit.Checkpoint
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l sinkLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if l.Type == "checkpoint" && l.Checkpoint != nil {
			out = append(out, *l.Checkpoint)
		}
	}
	return out, sc.Err()
}
