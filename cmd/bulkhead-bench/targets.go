package main

import (
	"fmt"
	"io"
	"strings"
)

// The targets issue 7 sets, which the report holds the run against.
const (
	targetThroughput = 0.85 // bulkhead's HTTP throughput over the baseline's, at least
	targetP99        = 1.3  // bulkhead's HTTP p99 over the baseline's, at most
	targetSQL        = 0.95 // pgbench with 4 clients, isolated over plain, at least
	targetFlat       = 1.2  // p99 with more tenants over the first count's, at most
	targetNoisy      = 1.5  // the quiet tenant's p99 during a flood over alone, at most
)

// verdict is one target and whether this run met it.
type verdict struct {
	target string
	met    bool
	detail string
}

// verdicts holds the run's figures against the targets; a target whose
// part of the bench did not run is left out.
func verdicts(results [][2]attackResult, sql []pgbenchResult, noisy noisyReport, scale []scalePoint) []verdict {
	var out []verdict
	if len(results) > 0 {
		worstT, worstP := 0, 0
		ratio := func(i int) float64 { return results[i][1].Throughput / results[i][0].Throughput }
		p99 := func(i int) float64 { return float64(results[i][1].P99) / float64(results[i][0].P99) }
		for i := range results {
			if ratio(i) < ratio(worstT) {
				worstT = i
			}
			if p99(i) > p99(worstP) {
				worstP = i
			}
		}
		out = append(out,
			verdict{fmt.Sprintf("HTTP throughput at least %.2f of the baseline's", targetThroughput), ratio(worstT) >= targetThroughput,
				fmt.Sprintf("lowest %.2f (%s)", ratio(worstT), scenarioOf(results[worstT]))},
			verdict{fmt.Sprintf("HTTP p99 at most %.1f times the baseline's", targetP99), p99(worstP) <= targetP99,
				fmt.Sprintf("highest %.2f (%s)", p99(worstP), scenarioOf(results[worstP]))})
	}
	for _, r := range sql {
		if r.clients == 4 {
			out = append(out, verdict{fmt.Sprintf("SQL level (pgbench, 4 clients) at least %.2f of a plain filter", targetSQL), r.isolated/r.plain >= targetSQL,
				fmt.Sprintf("%.2f", r.isolated/r.plain)})
		}
	}
	if len(scale) > 1 {
		worst := 1
		flat := func(i int) float64 { return float64(scale[i].res.P99) / float64(scale[0].res.P99) }
		for i := 1; i < len(scale); i++ {
			if flat(i) > flat(worst) {
				worst = i
			}
		}
		out = append(out, verdict{fmt.Sprintf("p99 with more tenants within %.1f times the %d-tenant run's", targetFlat, scale[0].tenants), flat(worst) <= targetFlat,
			fmt.Sprintf("highest %.2f (%d tenants)", flat(worst), scale[worst].tenants)})
	}
	// The control floods aim at a bare handler, not at bulkhead: they are
	// not held to the target, and are named after the verdict as what the
	// machine gives any flood at that pace.
	var floods, controls []string
	var over []string
	for _, f := range noisy.floods {
		if f.control {
			controls = append(controls, fmt.Sprintf("%s %.2f", f.name, f.ratio()))
			continue
		}
		floods = append(floods, f.name)
		if f.ratio() > targetNoisy {
			over = append(over, fmt.Sprintf("%s %.2f", f.name, f.ratio()))
		}
	}
	if len(floods) > 0 {
		detail := fmt.Sprintf("none of %d floods above", len(floods))
		if len(over) > 0 {
			detail = fmt.Sprintf("%d of %d floods above: %s", len(over), len(floods), strings.Join(over, "; "))
		}
		if len(controls) > 0 {
			detail += " (not held to the target, " + strings.Join(controls, "; ") + ")"
		}
		quiet := "the quiet tenant's"
		if p := noisy.pace(); p != "" {
			quiet = "the quiet tenant's (" + p + ")"
		}
		out = append(out, verdict{fmt.Sprintf("a flood leaves %s p99 within %.1f times its value alone", quiet, targetNoisy), len(over) == 0, detail})
	}
	return out
}

func scenarioOf(p [2]attackResult) string { return strings.TrimSuffix(p[0].Name, "/baseline") }

// printTargets prints the verdicts, one line each.
func printTargets(w io.Writer, vs []verdict) {
	if len(vs) == 0 {
		return
	}
	fmt.Fprintf(w, "\ntargets (see docs/PERFORMANCE.md; with --rounds, each part's median round)\n")
	for _, v := range vs {
		mark := "not met"
		if v.met {
			mark = "met"
		}
		fmt.Fprintf(w, "  %-7s  %s: %s\n", mark, v.target, v.detail)
	}
}
