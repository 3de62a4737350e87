package main

import (
	"bytes"
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
	noisy := noisyReport{floods: []floodResult{{name: "paced", alone: side("", 0, time.Millisecond), quiet: side("", 0, 1500*time.Microsecond)}}}
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
	if !strings.Contains(vs[4].detail, "1 of 2 floods above: logins 2.00") {
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
		err := run(t.Context(), []string{"--quiet-rate", v})
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
