package policy

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

type keyKind uint8

const (
	kContext     keyKind = iota // Request.Context, by name
	kTenantID                   // Principal.TenantID
	kTier                       // Principal.Tier
	kRole                       // Principal.Role
	kTag                        // Principal.Tags, by tag key
	kSourceIP                   // Request.SourceIP
	kCurrentTime                // Request.Time
	kEpochTime                  // Request.Time, in seconds
)

// keyRef is a compiled condition key.
type keyRef struct {
	kind  keyKind
	name  string // kContext: the key as written; kTag: the tag key
	multi bool
}

// parseKey resolves a condition key, without regard to case as in AWS.
func parseKey(k string) (keyRef, error) {
	ns, rest, ok := strings.Cut(k, ":")
	if !ok || ns == "" || rest == "" || len(k) > 256 || !keyChars(ns, false) || !keyChars(rest, true) {
		return keyRef{}, problemf("%s is not a condition key (want service:name)", quote(k))
	}
	lk := strings.ToLower(k)
	switch lk {
	case "bulkhead:tenantid":
		return keyRef{kind: kTenantID}, nil
	case "bulkhead:tier":
		return keyRef{kind: kTier}, nil
	case "bulkhead:role":
		return keyRef{kind: kRole}, nil
	case "aws:sourceip":
		return keyRef{kind: kSourceIP}, nil
	case "aws:currenttime":
		return keyRef{kind: kCurrentTime}, nil
	case "aws:epochtime":
		return keyRef{kind: kEpochTime}, nil
	}
	for _, prefix := range []string{KeyPrincipalTag, KeyAWSPrincipalTag} {
		if strings.HasPrefix(lk, strings.ToLower(prefix)) {
			tag := k[len(prefix):]
			if tag == "" {
				return keyRef{}, problemf("%s names no tag", quote(k))
			}
			return keyRef{kind: kTag, name: tag}, nil
		}
	}
	if multivaluedKeys[lk] {
		return keyRef{kind: kContext, name: k, multi: true}, nil
	}
	if ownedKeyNamespaces[strings.ToLower(ns)] {
		return keyRef{}, problemf("unknown condition key %s", quote(k))
	}
	return keyRef{kind: kContext, name: k}, nil
}

// keyChars checks a key's namespace (letters, digits, - and _) or the rest
// of it, which may also hold printable ASCII such as the spaces, slashes and
// colons of a tag key, but none of the characters of the variable syntax.
func keyChars(s string, rest bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		case rest && c >= ' ' && c < 0x7f && c != '$' && c != '{' && c != '}' && c != ',' && c != '\'' && c != '"' && c != '\\':
		default:
			return false
		}
	}
	return true
}

// env is what one evaluation looks keys up in.
type env struct {
	req *Request
	p   *Principal
}

// single returns the value of a single-valued key, for a policy variable.
func (e *env) single(k keyRef) (string, bool) {
	v := e.values(k)
	if !v.present || v.n() != 1 {
		return "", false
	}
	return v.str(0), true
}

type valKind uint8

const (
	vList valKind = iota
	vOne
	vIP
	vTime
)

// vals are a key's values in the request: one string, a list, or a typed
// value that is formatted only when a string operator needs it.
type vals struct {
	present bool
	kind    valKind
	one     string
	list    []string
	ip      netip.Addr
	t       time.Time
	epoch   bool
}

// values looks a key up.
//
// Isolation: the principal's keys (tenant, tier, role, tags) come from the
// Principal only, never from Request.Context, so request data cannot claim
// another tenant.
func (e *env) values(k keyRef) vals {
	one := func(s string) vals { return vals{present: s != "", kind: vOne, one: s} }
	switch k.kind {
	case kTenantID:
		return one(string(e.p.TenantID))
	case kTier:
		return one(e.p.Tier)
	case kRole:
		return one(string(e.p.Role))
	case kTag:
		for tk, tv := range e.p.Tags {
			if strings.EqualFold(tk, k.name) {
				return vals{present: true, kind: vOne, one: tv}
			}
		}
		return vals{}
	case kSourceIP:
		if !e.req.SourceIP.IsValid() {
			return vals{}
		}
		return vals{present: true, kind: vIP, ip: e.req.SourceIP.Unmap()}
	case kCurrentTime, kEpochTime:
		if e.req.Time.IsZero() {
			return vals{}
		}
		return vals{present: true, kind: vTime, t: e.req.Time, epoch: k.kind == kEpochTime}
	}
	for ck, cv := range e.req.Context {
		if strings.EqualFold(ck, k.name) {
			return vals{present: true, kind: vList, list: cv}
		}
	}
	return vals{}
}

func (v *vals) n() int {
	if v.kind == vList {
		return len(v.list)
	}
	return 1
}

// str returns value i as text: an address in its usual form, the time in
// RFC 3339 for aws:CurrentTime and in seconds for aws:EpochTime.
func (v *vals) str(i int) string {
	switch v.kind {
	case vList:
		return v.list[i]
	case vIP:
		return v.ip.String()
	case vTime:
		if v.epoch {
			return strconv.FormatInt(v.t.Unix(), 10)
		}
		return v.t.UTC().Format(time.RFC3339)
	}
	return v.one
}

func (v *vals) num(i int) (float64, bool) {
	switch v.kind {
	case vIP:
		return 0, false
	case vTime:
		return float64(v.t.Unix()), v.epoch
	}
	return parseNumber(v.str(i))
}

func (v *vals) time(i int) (time.Time, bool) {
	switch v.kind {
	case vIP:
		return time.Time{}, false
	case vTime:
		if v.epoch {
			// aws:EpochTime is the request time in whole seconds, for
			// the Date operators as for the Numeric ones.
			return time.Unix(v.t.Unix(), 0), true
		}
		return v.t, true
	}
	return parseDate(v.str(i))
}

func (v *vals) addr(i int) (netip.Addr, bool) {
	switch v.kind {
	case vIP:
		return v.ip, true
	case vTime:
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(v.str(i))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseNumber accepts decimal numbers: an optional minus sign, digits, an
// optional fraction and an optional exponent. Not NaN, Inf, hex or
// underscores, which strconv.ParseFloat would take.
func parseNumber(s string) (float64, bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i - j
	}
	if digits() == 0 {
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return 0, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// dateLayouts are the ISO 8601 forms accepted by the Date operators, besides
// epoch seconds. A time without a zone is UTC.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseDate accepts ISO 8601 dates and times (see dateLayouts) and epoch
// seconds.
func parseDate(s string) (time.Time, bool) {
	if s != "" && s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return time.Time{}, false
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > 1<<40 {
			return time.Time{}, false
		}
		return time.Unix(n, 0), true
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseCIDR accepts a CIDR block or a single address (a /32 or /128), IPv4
// or IPv6, without a zone. An IPv4-mapped IPv6 address is taken as IPv4.
func parseCIDR(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, false
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}
