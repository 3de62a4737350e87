package main

import (
	"context"
	"encoding/json"
	"io"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// attackSpec is what the load process reads on stdin.
type attackSpec struct {
	Name     string          `json:"name"`
	Targets  []vegeta.Target `json:"targets"`
	Workers  uint64          `json:"workers"`
	Duration time.Duration   `json:"duration"`
	// Rate paces the attack at this many requests per second (an open
	// loop, at most Workers in flight); 0 is a closed loop, each client
	// sending its next request as soon as it has the answer.
	Rate int `json:"rate,omitempty"`
	// MaxRequests ends the attack after this many requests, even before
	// Duration; 0 is no bound.
	MaxRequests uint64 `json:"max_requests,omitempty"`
	// Niced runs the load process at the lowest CPU priority (nice 19), so
	// that it takes only the CPU the system under test leaves idle, as an
	// attacker's own machines would.
	Niced bool `json:"niced,omitempty"`
	// KeepLatencies returns every request's latency with the result, so
	// that the parent can pool several runs' before taking quantiles.
	KeepLatencies bool `json:"keep_latencies,omitempty"`
}

// attackResult is what it writes on stdout.
type attackResult struct {
	Name       string          `json:"name"`
	Requests   uint64          `json:"requests"`
	Throughput float64         `json:"throughput"` // successful requests per second
	Rate       float64         `json:"rate"`       // requests sent per second
	Success    float64         `json:"success"`
	P50        time.Duration   `json:"p50"`
	P99        time.Duration   `json:"p99"`
	Status     map[string]int  `json:"status"`
	Errors     []string        `json:"errors,omitempty"`
	Latencies  []time.Duration `json:"latencies,omitempty"` // with KeepLatencies, in the order sent

	// Measured by the parent around the run, not by the load process.
	serverCPU, pgCPU time.Duration // per request
	cpuOK            bool
}

// attack runs in its own process: a closed loop of Workers clients, as
// fast as the server answers (or paced at Rate), for Duration or
// MaxRequests, whichever ends first.
func attack(ctx context.Context, in io.Reader, out io.Writer) error {
	var spec attackSpec
	if err := json.NewDecoder(in).Decode(&spec); err != nil {
		return err
	}
	var i atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		n := i.Add(1) - 1
		if spec.MaxRequests > 0 && n >= spec.MaxRequests {
			return vegeta.ErrNoTargets // ends the attack
		}
		*t = spec.Targets[int(n%uint64(len(spec.Targets)))]
		return nil
	}
	a := vegeta.NewAttacker(vegeta.Workers(spec.Workers), vegeta.MaxWorkers(spec.Workers),
		vegeta.Connections(int(spec.Workers)), vegeta.KeepAlive(true), vegeta.Timeout(10*time.Second))
	pacer := vegeta.ConstantPacer{}
	if spec.Rate > 0 {
		pacer = vegeta.ConstantPacer{Freq: spec.Rate, Per: time.Second}
	}
	var m vegeta.Metrics
	var lat []time.Duration
	for res := range a.Attack(targeter, pacer, spec.Duration, spec.Name) {
		if res.Error == vegeta.ErrNoTargets.Error() {
			continue // not a request: the bound was reached
		}
		m.Add(res)
		if spec.KeepLatencies {
			lat = append(lat, res.Latency)
		}
		if ctx.Err() != nil {
			a.Stop()
		}
	}
	m.Close()
	return json.NewEncoder(out).Encode(attackResult{Name: spec.Name, Requests: m.Requests, Throughput: m.Throughput, Rate: m.Rate,
		Success: m.Success, P50: m.Latencies.P50, P99: m.Latencies.P99, Status: m.StatusCodes, Errors: m.Errors, Latencies: lat})
}
