package policy_test

import (
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/policy"
)

// docs/policies.md: aws:EpochTime is "the request time in seconds, for the
// Date and Numeric operators". Compared by a Date operator, it must be the
// whole second, as the Numeric operators and StringEquals already see it.
// TestEpochTimeDateComparesSeconds: aws:EpochTime is whole seconds for the
// Date operators as for the Numeric ones (a DateEquals on it never matched,
// and LessThanEquals ended a second early).
func TestEpochTimeDateComparesSeconds(t *testing.T) {
	// Deny writes up to and including epoch second 1748779200 (t0).
	d := MustParse(t, doc(`{"Sid":"FreezeUntil","Effect":"Deny","Action":"data:*","Resource":"*",
		"Condition":{"DateLessThanEquals":{"aws:EpochTime":"1748779200"}}}`))
	num := MustParse(t, doc(`{"Sid":"FreezeUntil","Effect":"Deny","Action":"data:*","Resource":"*",
		"Condition":{"NumericLessThanEquals":{"aws:EpochTime":"1748779200"}}}`))
	req := sel(at(t0.Add(500 * time.Millisecond))) // aws:EpochTime is 1748779200
	if got := policy.Evaluate(req, acme, num); got.Effect != policy.ExplicitDeny {
		t.Fatalf("NumericLessThanEquals on aws:EpochTime: %v, want ExplicitDeny", got.Effect)
	}
	if got := policy.Evaluate(req, acme, d); got.Effect != policy.ExplicitDeny {
		t.Errorf("DateLessThanEquals on aws:EpochTime 1748779200 at %d: %v (%s), want ExplicitDeny", req.Time.Unix(), got.Effect, got.Reason)
	}
	eq := MustParse(t, doc(`{"Sid":"BlockSecond","Effect":"Deny","Action":"data:*","Resource":"*",
		"Condition":{"DateEquals":{"aws:EpochTime":"1748779200"}}}`))
	if got := policy.Evaluate(req, acme, eq); got.Effect != policy.ExplicitDeny {
		t.Errorf("DateEquals on aws:EpochTime 1748779200 at %d: %v (%s), want ExplicitDeny", req.Time.Unix(), got.Effect, got.Reason)
	}
}

// docs/policies.md: "Every operator but Null takes the suffix IfExists and
// the prefixes ForAllValues: and ForAnyValue:" (one of them). A document
// stacking both must be refused, not read as the second one.
// TestStackedSetQualifiersRefused: one set qualifier per operator, as AWS
// has it; ForAllValues:ForAnyValue: was read as ForAnyValue.
func TestStackedSetQualifiersRefused(t *testing.T) {
	src := doc(`{"Sid":"D","Effect":"Deny","Action":"data:*","Resource":"*",
		"Condition":{"ForAllValues:ForAnyValue:StringEquals":{"data:LeadingKeys":["acme"]}}}`)
	d, err := policy.Parse([]byte(src))
	if err == nil {
		// Read as ForAllValues it would deny a request with an empty set
		// of leading keys; it is read as ForAnyValue, and allows it.
		got := policy.Evaluate(sel(leading()), acme, MustParse(t, doc(allowAll)), d)
		t.Fatalf("Parse accepted ForAllValues:ForAnyValue:StringEquals; a request with an empty leading-key set is %v", got.Effect)
	}
}

// TestSourceIPUnknown: with the address unknown, a Deny conditioned on it
// applies and an Allow conditioned on it does not, whichever operator.
func TestSourceIPUnknown(t *testing.T) {
	allowOffice := MustParse(t, doc(`{"Sid":"Office","Effect":"Allow","Action":"data:*","Resource":"*",
		"Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}`))
	denyOutside := MustParse(t, doc(allowAll, `{"Sid":"OutsideOffice","Effect":"Deny","Action":"data:*","Resource":"*",
		"Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}`))
	req := sel()
	// Absent, a negated operator is true: that Deny already applied. The
	// positive one below is what dropped out.
	denyAnywhere := MustParse(t, doc(allowAll, `{"Sid":"Anywhere","Effect":"Deny","Action":"data:*","Resource":"*",
		"Condition":{"IpAddress":{"aws:SourceIp":["0.0.0.0/0","::/0"]}}}`))
	if got := policy.Evaluate(req, acme, denyAnywhere); got.Effect != policy.Allow {
		t.Fatalf("address absent, Deny on IpAddress: %v, want it not to apply (the absent key)", got.Effect)
	}
	req.SourceIPUnknown = true
	if got := policy.Evaluate(req, acme, allowOffice); got.Effect == policy.Allow {
		t.Errorf("Allow on an office address, address unknown: %v, want it not to apply", got.Effect)
	}
	if got := policy.Evaluate(req, acme, denyOutside); got.Effect != policy.ExplicitDeny || got.Statement != "OutsideOffice" {
		t.Errorf("Deny outside the office, address unknown: %v %s, want ExplicitDeny by OutsideOffice", got.Effect, got.Statement)
	}
	if got := policy.Evaluate(req, acme, denyAnywhere); got.Effect != policy.ExplicitDeny || got.Statement != "Anywhere" {
		t.Errorf("Deny from anywhere, address unknown: %v %s, want ExplicitDeny by Anywhere", got.Effect, got.Statement)
	}
}
