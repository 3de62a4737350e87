package main

import (
	"fmt"
	"os"
	"time"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/internal/strictjson"
)

// alarmRulesFile is the shape of the file --alarm-rules names. Every rule
// left out keeps its default: denial bursts of more than 20 in a minute,
// and every probe, row-security violation and invalid context.
type alarmRulesFile struct {
	Denials *struct {
		Limit  *int   `json:"limit"`
		Window string `json:"window"`
	} `json:"denials"`
	CrossTenantProbe     *bool  `json:"cross_tenant_probe"`
	RowSecurityViolation *bool  `json:"row_security_violation"`
	InvalidContext       *bool  `json:"invalid_context"`
	Quiet                string `json:"quiet"`
}

// alarmRules returns the alarm rules: those of the file at path when one is
// named, else those of the flags.
func alarmRules(path string, limit int, window time.Duration) (audit.Rules, error) {
	r := audit.Rules{DenialLimit: limit, DenialWindow: window, Probe: true, RowSecurity: true, InvalidContext: true}
	if path == "" {
		return r, validRules(r)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return r, usageError{fmt.Sprintf("--alarm-rules: %v", err)}
	}
	var f alarmRulesFile
	if err := strictjson.Decode(b, &f); err != nil {
		return r, usageError{fmt.Sprintf("--alarm-rules %s: %v", path, err)}
	}
	r.DenialLimit, r.DenialWindow = 20, time.Minute
	if f.Denials != nil {
		if f.Denials.Limit != nil {
			r.DenialLimit = *f.Denials.Limit
		}
		if f.Denials.Window != "" {
			if r.DenialWindow, err = time.ParseDuration(f.Denials.Window); err != nil {
				return r, usageError{fmt.Sprintf("--alarm-rules %s: denials.window: %q is not a duration such as \"1m\" or \"30s\"", path, f.Denials.Window)}
			}
		}
	}
	for _, b := range []struct {
		v   *bool
		dst *bool
	}{{f.CrossTenantProbe, &r.Probe}, {f.RowSecurityViolation, &r.RowSecurity}, {f.InvalidContext, &r.InvalidContext}} {
		if b.v != nil {
			*b.dst = *b.v
		}
	}
	if f.Quiet != "" {
		if r.Quiet, err = time.ParseDuration(f.Quiet); err != nil || r.Quiet <= 0 {
			return r, usageError{fmt.Sprintf("--alarm-rules %s: quiet: %q is not a positive duration such as \"5m\"", path, f.Quiet)}
		}
	}
	if err := validRules(r); err != nil {
		return r, usageError{fmt.Sprintf("--alarm-rules %s: %v", path, err)}
	}
	return r, nil
}

func validRules(r audit.Rules) error {
	if r.DenialLimit < 0 {
		return usageError{"the denial limit must be 0 (off) or more"}
	}
	if r.DenialLimit > 0 && r.DenialWindow <= 0 {
		return usageError{"the denial window must be a positive duration"}
	}
	return nil
}
