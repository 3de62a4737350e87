package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func side(name string, rps float64, p99 time.Duration) attackResult {
	return attackResult{Name: name, Throughput: rps, P99: p99}
}

// TestVerdicts: each target is held against the worst figure of its part
// of the run, at its boundary, and a part that did not run gives no line.
func TestVerdicts(t *testing.T) {
	t.Parallel()
	results := [][2]attackResult{
		{side("list/baseline", 1000, time.Millisecond), side("list/bulkhead", 900, 1200*time.Microsecond)},
		{side("get/baseline", 1000, time.Millisecond), side("get/bulkhead", 850, 1300*time.Microsecond)},
	}
	sql := []pgbenchResult{{name: "4", clients: 4, plain: 100, isolated: 95}, {name: "1", clients: 1, plain: 100, isolated: 10}}
	scale := []scalePoint{{tenants: 10, res: side("", 0, time.Millisecond)}, {tenants: 1000, res: side("", 0, 1200*time.Microsecond)}}
	noisy := noisyReport{floods: []floodResult{{name: "paced", alone: side("", 0, time.Millisecond), quiet: side("", 0, 1500*time.Microsecond)},
		// A control flood (at a bare handler, not at bulkhead) is named but not held to the target.
		{name: "control", control: true, alone: side("", 0, time.Millisecond), quiet: side("", 0, 3*time.Millisecond)}}}
	vs := verdicts(results, sql, noisy, scale)
	if len(vs) != 5 {
		t.Fatalf("%d verdicts, want 5: %+v", len(vs), vs)
	}
	for _, v := range vs {
		if !v.met {
			t.Errorf("at the boundary, %q not met: %s", v.target, v.detail)
		}
	}
	if !strings.Contains(vs[0].detail, "0.85 (get)") || !strings.Contains(vs[1].detail, "1.30 (get)") {
		t.Errorf("the worst scenario not named: %q, %q", vs[0].detail, vs[1].detail)
	}
	if want := "none of 1 floods above (not held to the target, control 3.00)"; vs[4].detail != want {
		t.Errorf("the floods' verdict says %q, want %q", vs[4].detail, want)
	}

	// Past each boundary.
	results[1][1] = side("get/bulkhead", 849, 1301*time.Microsecond)
	sql[0].isolated = 94
	scale[1].res.P99 = 1201 * time.Microsecond
	noisy.floods = append(noisy.floods, floodResult{name: "logins", alone: side("", 0, time.Millisecond), quiet: side("", 0, 2*time.Millisecond)})
	vs = verdicts(results, sql, noisy, scale)
	for _, v := range vs {
		if v.met {
			t.Errorf("past the boundary, %q met: %s", v.target, v.detail)
		}
	}
	if !strings.Contains(vs[4].detail, "1 of 2 floods above: logins 2.00 (not held") {
		t.Errorf("the floods above the target not listed: %q", vs[4].detail)
	}
	var b bytes.Buffer
	printTargets(&b, vs)
	if n := strings.Count(b.String(), "not met"); n != 5 {
		t.Errorf("printed %d 'not met' lines, want 5:\n%s", n, b.String())
	}

	if vs := verdicts(nil, nil, noisyReport{}, scale[:1]); len(vs) != 0 {
		t.Errorf("verdicts for parts that did not run: %+v", vs)
	}
}

// TestQuietRateFlag: the quiet tenant's pace is checked before anything
// starts, and the noisy table says how the quiet tenant was loaded.
func TestQuietRateFlag(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"-1", "100001"} {
		err := runRefused([]string{"--quiet-rate", v})
		if err == nil || !strings.Contains(err.Error(), "quiet-rate") {
			t.Errorf("--quiet-rate %s: %v, want an error naming the flag", v, err)
		}
	}
	f := floodResult{name: "paced", alone: side("", 0, time.Millisecond), quiet: side("", 0, 1500*time.Microsecond)}
	for rate, want := range map[int][2]string{
		0:   {"a quiet premium tenant, 2 clients, closed loop", "leaves the quiet tenant's p99"},
		200: {"a quiet premium tenant, paced at 200 rps", "leaves the quiet tenant's (paced at 200 rps) p99"},
	} {
		noisy := noisyReport{floods: []floodResult{f}, rounds: 1, quietRate: rate}
		var buf bytes.Buffer
		printNoisy(&buf, noisy)
		if !strings.Contains(buf.String(), want[0]) {
			t.Errorf("quiet rate %d: the table says\n%s\nwant %q in it", rate, buf.String(), want[0])
		}
		vs := verdicts(nil, nil, noisy, nil)
		if len(vs) != 1 || !strings.Contains(vs[0].target, want[1]) {
			t.Errorf("quiet rate %d: verdicts %+v, want one whose target says %q", rate, vs, want[1])
		}
	}
}

// TestBulkOnboardingAndMigrate runs the bench end to end, small, on its own
// PostgreSQL: the pool tenants of --scale go through POST
// /v1/tenants/batch (two requests' worth), the silos of --silos through
// `bulkhead tenants import`, and `bulkhead migrate` brings every silo back
// to the latest version. The bench checks each path's answers itself and
// exits 1 on any shortfall; this checks that it ran them and said so.
func TestBulkOnboardingAndMigrate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bench, bulkhead := filepath.Join(dir, "bulkhead-bench"), filepath.Join(dir, "bulkhead")
	for bin, pkg := range map[string]string{bench: ".", bulkhead: "../bulkhead"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	cmd := exec.CommandContext(t.Context(), bench, "--duration", "1s", "--warmup", "0", "--tenants", "1", "--rows", "10",
		"--tax=false", "--pgbench=false", "--noisy=false", "--scale", "1,1200", "--silos", "4", "--bulkhead-bin", bulkhead)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\s+1200\s+1199\s+\S+\s+\d+/s\s`),
		regexp.MustCompile(`4 silo tenants: onboarded through bulkhead tenants import in \S+ \(\d+/s\)`),
		regexp.MustCompile(`bulkhead migrate --concurrency 4, every silo from tenant-table version 1 to \d+: 4 silos in \S+ \(\d+/s\)`),
	} {
		if !want.MatchString(stdout.String()) {
			t.Errorf("the report has no line matching %s:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "imported 4/4 tenants") || !strings.Contains(stderr.String(), "4/4 silos") {
		t.Errorf("the commands' progress is not on stderr:\n%s", stderr.String())
	}
}

// TestCheckBatch: a batch answer counts only when every item was created
// or already there, one result per item.
func TestCheckBatch(t *testing.T) {
	t.Parallel()
	ok := `{"results":[{"id":"a","result":"created"},{"id":"b","result":"exists"}]}`
	if err := checkBatch(200, []byte(ok), 2); err != nil {
		t.Errorf("a whole batch refused: %v", err)
	}
	for _, c := range []struct {
		status int
		body   string
		items  int
		want   string
	}{
		{200, ok, 3, "2 results for 3 tenants"},
		{200, `{"results":[{"id":"a","result":"created"},{"id":"b","result":"failed","code":"tenant_exists","message":"taken"}]}`, 2, "b: failed tenant_exists: taken"},
		{413, `{"code":"too_many_rows"}`, 2, "status 413"},
		{200, `[`, 2, "answer"},
	} {
		if err := checkBatch(c.status, []byte(c.body), c.items); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("checkBatch(%d, %s): %v, want an error with %q", c.status, c.body, err, c.want)
		}
	}
}
