package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	var ls []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ls = append(ls, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := quantile(ls, c.q); got != c.want {
			t.Errorf("quantile(1..100 ms, %v) = %v, want %v", c.q, got, c.want)
		}
	}
	if ls[0] != 100*time.Millisecond {
		t.Error("quantile sorted its argument in place")
	}
	if got := quantile(nil, 0.99); got != 0 {
		t.Errorf("quantile(nil) = %v, want 0", got)
	}
}

// TestPooledRatio pools the rounds before taking the p99: one round's
// slow moment, which decides that round's own p99, is one of many in the
// pool.
func TestPooledRatio(t *testing.T) {
	ms := func(n, each int) []time.Duration {
		var out []time.Duration
		for range n {
			out = append(out, time.Duration(each)*time.Millisecond)
		}
		return out
	}
	// Two rounds of 100 requests each. Alone: 1 ms throughout. During:
	// 2 ms throughout, except that the second round has 2 requests at
	// 50 ms, which make that round's p99 50 ms; pooled over 200 requests,
	// the p99 (the 198th) is still 2 ms.
	r1 := floodResult{alone: attackResult{Latencies: ms(100, 1)}, quiet: attackResult{Latencies: ms(100, 2)}}
	r2 := floodResult{alone: attackResult{Latencies: ms(100, 1)}, quiet: attackResult{Latencies: append(ms(98, 2), ms(2, 50)...)}}
	if got := pooledRatio([]floodResult{r1, r2}); got != 2 {
		t.Errorf("pooledRatio = %v, want 2", got)
	}
	if got := pooledRatio([]floodResult{r2}); got != 50 {
		t.Errorf("pooledRatio of the second round alone = %v, want 50", got)
	}
	if got := pooledRatio([]floodResult{{}}); got != 0 {
		t.Errorf("pooledRatio without latencies = %v, want 0", got)
	}
}

// TestProfileFloodFlag: a flood to profile must be one that exists and
// runs, checked before anything starts; and the table of a run with
// rounds shows the pooled ratio.
func TestProfileFloodFlag(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--cpuprofile", "p", "--profile-scenario", "flood nope"},
		{"--cpuprofile", "p", "--profile-scenario", "flood forged", "--floods", "paced"},
		{"--cpuprofile", "p", "--profile-scenario", "flood forged", "--noisy=false"},
	} {
		err := runRefused(args)
		if err == nil || !strings.Contains(err.Error(), "--profile-scenario") {
			t.Errorf("%q: %v, want an error naming --profile-scenario", args, err)
		}
	}
	f := floodResult{name: "paced", alone: side("", 0, time.Millisecond), quiet: side("", 0, 2*time.Millisecond), pooled: 1.75}
	var buf bytes.Buffer
	printNoisy(&buf, noisyReport{floods: []floodResult{f}, rounds: 3})
	if !strings.Contains(buf.String(), "all rounds pooled") || !strings.Contains(buf.String(), "1.75") {
		t.Errorf("the table with 3 rounds says\n%s\nwant an \"all rounds pooled\" column with 1.75", buf.String())
	}
}

// runRefused runs the bench with args under a context that has already
// ended: flags it refuses give their error, and flags it wrongly accepts
// make it fail at its first step, rather than run a whole bench.
func runRefused(args []string) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return run(ctx, args)
}

// TestIdleAfter: the expensive flood's control keeps to the basic plan's
// budget, 0.2 s of statement time a second: a scan of 0.6 s, then 2.4 s
// idle, is 0.6 s in every 3.
func TestIdleAfter(t *testing.T) {
	for _, c := range []struct{ took, per, want time.Duration }{
		{600 * time.Millisecond, 200 * time.Millisecond, 2400 * time.Millisecond},
		{100 * time.Millisecond, 500 * time.Millisecond, 100 * time.Millisecond},
		{time.Second, time.Second, 0},
	} {
		if got := idleAfter(c.took, c.per); got != c.want {
			t.Errorf("idleAfter(%v, %v) = %v, want %v", c.took, c.per, got, c.want)
		}
	}
}

// TestChecksCommand: the checks command refuses a rate or a duration it
// cannot run before checking anything, and runs the checks it is asked
// for.
func TestChecksCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"4"}, {"x", "1s"}, {"0", "1s"}, {"4", "soon"}, {"4", "-1s"}, {"4", "11m"}} {
		var out bytes.Buffer
		if err := checks(t.Context(), args, &out); err == nil || out.Len() != 0 {
			t.Errorf("checks %q: %v, and %q written; want an error and nothing written", args, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := checks(t.Context(), []string{"20", "100ms"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"status":{"200":`) {
		t.Errorf("checks 20 100ms wrote %q, want a result with its checks counted", out.String())
	}
}

func TestStatusNote(t *testing.T) {
	if got, want := statusNote(map[string]int{"503": 20788, "0": 3, "401": 12}), "0 3, 401 12, 503 20788"; got != want {
		t.Errorf("statusNote = %q, want %q", got, want)
	}
	if got := statusNote(nil); got != "no answers" {
		t.Errorf("statusNote(nil) = %q", got)
	}
}

// TestBySecond: the latencies, in the order sent, split into one part per
// second of the run; a slow moment shows in its own second only.
func TestBySecond(t *testing.T) {
	ms := time.Millisecond
	var ls []time.Duration
	for i := range 300 { // three seconds at 100 a second
		ls = append(ls, time.Duration(1+i%3)*ms)
	}
	ls[150], ls[151] = 90*ms, 80*ms // the middle second's slow two percent
	got := bySecond(ls, 3*time.Second)
	want := []time.Duration{3 * ms, 80 * ms, 3 * ms}
	if !slices.Equal(got, want) {
		t.Errorf("bySecond = %v, want %v", got, want)
	}
	if got := timelineNote(got); got != "3.0 80.0 3.0 (ms)" {
		t.Errorf("timelineNote = %q", got)
	}
	if got := bySecond(ls[:2], 10*time.Second); len(got) != 2 {
		t.Errorf("two latencies over 10 s: %v, want a part for each", got)
	}
	if got := bySecond(ls, 500*time.Millisecond); len(got) != 1 {
		t.Errorf("a run shorter than a second: %v, want one part", got)
	}
	if got := bySecond(nil, 3*time.Second); got != nil {
		t.Errorf("no latencies: %v, want none", got)
	}
}
