package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/bulkhead-dev/bulkhead"
)

// The bench onboards its tenants the ways an operator does in bulk: the
// pool tenants of --scale through the API's POST /v1/tenants/batch, the
// silos of --silos through `bulkhead tenants import`. The rates it reports
// are those paths' rates, progress output and checks included.

// batchSize is how many tenants one POST /v1/tenants/batch carries: the
// endpoint's maximum.
const batchSize = 1000

// onboardBatch creates the pool tenants slug(from) … slug(to-1) through
// POST /v1/tenants/batch on the server at base, as a platform
// administrator, and fails unless every one of them is created (or, when
// a run is resumed, already there).
func onboardBatch(ctx context.Context, auth *bulkhead.Auth, base string, slug func(int) string, from, to int) error {
	type item struct {
		ID string `json:"id"`
	}
	for lo := from; lo < to; lo += batchSize {
		hi := min(lo+batchSize, to)
		items := make([]item, 0, hi-lo)
		for i := lo; i < hi; i++ {
			items = append(items, item{ID: slug(i)})
		}
		// A fresh token each request: a platform-admin token lives
		// minutes, and 100,000 tenants take longer.
		tok, _, err := auth.IssueAdminToken(ctx, "bulkhead-bench", 0)
		if err != nil {
			return err
		}
		body, _ := json.Marshal(items)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/tenants/batch", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("POST /v1/tenants/batch: %w", err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("POST /v1/tenants/batch: %w", err)
		}
		if err := checkBatch(resp.StatusCode, got, len(items)); err != nil {
			return fmt.Errorf("POST /v1/tenants/batch (tenants %d to %d): %w", lo, hi-1, err)
		}
		fmt.Fprintf(os.Stderr, "\rbench: onboarded %d/%d tenants through the API", hi, to)
	}
	return nil
}

// checkBatch checks a POST /v1/tenants/batch answer: 200, one result per
// item, each created or already there.
func checkBatch(status int, body []byte, want int) error {
	if status != http.StatusOK {
		return fmt.Errorf("status %d: %.300s", status, body)
	}
	var r struct {
		Results []struct {
			ID      string `json:"id"`
			Result  string `json:"result"`
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if len(r.Results) != want {
		return fmt.Errorf("%d results for %d tenants", len(r.Results), want)
	}
	for _, x := range r.Results {
		if x.Result != "created" && x.Result != "exists" {
			return fmt.Errorf("%s: %s %s: %s", x.ID, x.Result, x.Code, x.Message)
		}
	}
	return nil
}

// importLine is one line of a `bulkhead tenants import` file.
type importLine struct {
	ID   string `json:"id"`
	Tier string `json:"tier"`
	Plan string `json:"plan"`
}

// importSummary matches the summary `bulkhead tenants import` prints.
var importSummary = regexp.MustCompile(`(?m)^(\d+) created, (\d+) already there, (\d+) failed in `)

// importTenants onboards lines by running `bin tenants import` on a file
// of them in dir, with the command's default concurrency and its progress
// on the bench's stderr. It fails unless the command says it created
// every one.
func importTenants(ctx context.Context, bin, adminURL, dir string, lines []importLine) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, l := range lines {
		enc.Encode(l)
	}
	file := filepath.Join(dir, "tenants.jsonl")
	if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
		return err
	}
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "tenants", "import", file, "--database-url", adminURL)
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s tenants import: %w\n%s", bin, err, stdout.Bytes())
	}
	m := importSummary.FindSubmatch(stdout.Bytes())
	if m == nil {
		return fmt.Errorf("%s tenants import printed no summary:\n%s", bin, stdout.Bytes())
	}
	if n, _ := strconv.Atoi(string(m[1])); n != len(lines) {
		return fmt.Errorf("%s tenants import created %d of %d tenants:\n%s", bin, n, len(lines), stdout.Bytes())
	}
	return nil
}

// bulkheadBinary finds the bulkhead command that --silos onboards
// through: the flag's path, else a bulkhead next to this executable (where
// make bench builds it), else one on PATH.
func bulkheadBinary(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			return "", fmt.Errorf("--bulkhead-bin: %w", err)
		}
		return flag, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "bulkhead")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("bulkhead"); err == nil {
		return p, nil
	}
	return "", errors.New("--silos onboards through `bulkhead tenants import` and found no bulkhead command: run make bench (which builds bin/bulkhead), or pass --bulkhead-bin PATH")
}

// perSecond is n per second over d.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
