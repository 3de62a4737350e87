package main

import (
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/internal/strictjson"
)

// planLimitsFile is the shape of the file --plan-limits names: for each
// plan, the limits it changes; every one left out keeps its default
// (httpapi.DefaultLimits).
type planLimitsFile struct {
	Basic   *planLimit `json:"basic"`
	Premium *planLimit `json:"premium"`
}

type planLimit struct {
	Rate             *float64 `json:"rate"`
	Burst            *int     `json:"burst"`
	Concurrent       *int     `json:"concurrent"`
	StatementTimeout string   `json:"statement_timeout"`
	StatementTime    string   `json:"statement_time"`
	ParallelWorkers  *int     `json:"parallel_workers"`
}

// planLimits returns the limits per plan: the defaults, changed by the
// file at path when one is named.
func planLimits(path string) (map[string]httpapi.Limit, error) {
	out := maps.Clone(httpapi.DefaultLimits)
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--plan-limits: %v", err)}
	}
	var f planLimitsFile
	if err := strictjson.Decode(b, &f); err != nil {
		return nil, usageError{fmt.Sprintf("--plan-limits %s: %v", path, err)}
	}
	for name, p := range map[string]*planLimit{"basic": f.Basic, "premium": f.Premium} {
		if p == nil {
			continue
		}
		l, err := p.apply(out[name])
		if err != nil {
			return nil, usageError{fmt.Sprintf("--plan-limits %s: %s.%v", path, name, err)}
		}
		out[name] = l
	}
	return out, nil
}

// apply changes l by p, checking each value's range.
func (p *planLimit) apply(l httpapi.Limit) (httpapi.Limit, error) {
	if p.Rate != nil {
		if *p.Rate <= 0 || *p.Rate > 1e6 {
			return l, fmt.Errorf("rate: %v is not 0 to 1000000 requests a second (0 excluded)", *p.Rate)
		}
		l.Rate = *p.Rate
	}
	if p.Burst != nil {
		if *p.Burst < 1 || *p.Burst > 10_000_000 {
			return l, fmt.Errorf("burst: %d is not 1 to 10000000", *p.Burst)
		}
		l.Burst = *p.Burst
	}
	if p.Concurrent != nil {
		if *p.Concurrent < 1 || *p.Concurrent > 1024 {
			return l, fmt.Errorf("concurrent: %d is not 1 to 1024", *p.Concurrent)
		}
		l.Concurrent = *p.Concurrent
	}
	if p.ParallelWorkers != nil {
		if *p.ParallelWorkers < 0 || *p.ParallelWorkers > 64 {
			return l, fmt.Errorf("parallel_workers: %d is not 0 to 64", *p.ParallelWorkers)
		}
		l.ParallelWorkers = *p.ParallelWorkers
	}
	for _, d := range []struct {
		name    string
		text    string
		to      *time.Duration
		zeroOK  bool
		longest time.Duration
	}{
		{"statement_timeout", p.StatementTimeout, &l.StatementTimeout, false, time.Hour},
		{"statement_time", p.StatementTime, &l.StatementTime, true, time.Hour},
	} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil || v < 0 || v > d.longest || (v == 0 && !d.zeroOK) {
			return l, fmt.Errorf("%s: %q is not a duration such as \"5s\" or \"200ms\", up to %v", d.name, d.text, d.longest)
		}
		*d.to = v
	}
	return l, nil
}
