package policy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/policy"
)

// probes are the requests FuzzParse evaluates each document on.
var probes = []struct {
	req policy.Request
	p   policy.Principal
}{
	{sel(), acme},
	{sel(leading("acme")), acme},
	{sel(leading("acme", "globex"), at(t0), from("10.1.2.3")), acmeAdmin},
	{rq(policy.DataDelete, globexOrders, leading("globex")), globexUser},
	{rq(policy.UsersCreate, policy.ControlResource("acme", policy.KindUser, "")), acmeAdmin},
	{rq("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/app", ctx("dynamodb:LeadingKeys", "acme")), acme},
	{sel(ctx("ext:Rows", "10"), ctx("ext:MFA", "true"), at(t0)), nobody},
}

func FuzzParse(f *testing.F) {
	for _, c := range conformanceCases {
		for _, d := range append(c.docs, c.boundary...) {
			f.Add([]byte(d))
		}
	}
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"ext:A":[1,2.5e3]},"Bool":{"ext:B":true}}}}`))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"brn:bulkhead:data:${aws:PrincipalTag/t, 'x'}:${*}${?}${$}"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := policy.Parse(b)
		if err != nil {
			if !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("Parse(%q) = %v, not an ErrInvalid", b, err)
			}
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal(Parse(%q)) = %v", b, err)
		}
		if len(out) > policy.MaxSize {
			// The canonical form (arrays, quoted numbers, escapes) can be
			// longer than a document that was just under the limit.
			return
		}
		d2, err := policy.Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(%q))) = %v\nmarshalled: %s", b, err, out)
		}
		out2, err := json.Marshal(d2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not stable:\n%s\n%s", out, out2)
		}
		for _, pr := range probes {
			got, want := policy.Evaluate(pr.req, pr.p, d2), policy.Evaluate(pr.req, pr.p, d)
			if got != want {
				t.Fatalf("Evaluate(%+v) on the re-parsed document = %+v, on the original %+v\ndocument: %s", pr.req, got, want, out)
			}
		}
	})
}

// FuzzEvaluate compares Evaluate and EvaluateWithBoundary with refEvaluate,
// a deliberately naive second implementation, on small random documents and
// requests built from the fuzz input.
func FuzzEvaluate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Add([]byte("bulkhead keeps tenants apart; the policy evaluator must agree with its naive twin"))
	f.Add(bytes.Repeat([]byte{0xff, 0x01, 0x7f, 0x33}, 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &chooser{b: b}
		docs := genDocs(c)
		req, p := genRequest(c)
		var parsed []*policy.Document
		for _, d := range docs {
			if err := d.Validate(); err != nil {
				t.Fatalf("generated document does not validate: %v\n%s", err, mustJSON(d))
			}
			parsed = append(parsed, d)
		}
		got := policy.Evaluate(req, p, parsed...)
		eff, ref := refEvaluate(req, p, "doc", docs)
		if got.Effect != eff || got.Statement != ref {
			t.Fatalf("Evaluate = %v by %q (%s), reference %v by %q\nrequest %+v\nprincipal %+v\ndocuments %s", got.Effect, got.Statement, got.Reason, eff, ref, req, p, mustJSON(docs))
		}
		if len(docs) == 2 {
			got := policy.EvaluateWithBoundary(req, p, parsed[1:], parsed[:1])
			eff, ref := refBoundary(req, p, docs[1:], docs[:1])
			if got.Effect != eff || got.Statement != ref {
				t.Fatalf("EvaluateWithBoundary = %v by %q (%s), reference %v by %q\nrequest %+v\nprincipal %+v\ndocuments %s", got.Effect, got.Statement, got.Reason, eff, ref, req, p, mustJSON(docs))
			}
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// chooser turns fuzz bytes into choices; past the end every choice is 0.
type chooser struct{ b []byte }

func (c *chooser) pick(n int) int {
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0])
	c.b = c.b[1:]
	return v % n
}

func (c *chooser) one(xs []string) string { return xs[c.pick(len(xs))] }

func (c *chooser) some(xs []string, max int) []string {
	n := 1 + c.pick(max)
	out := make([]string, n)
	for i := range out {
		out[i] = c.one(xs)
	}
	return out
}

var (
	genActions   = []string{"data:Select", "data:*", "*", "DATA:select", "data:S?lect", "data:Insert", "users:*", "ext:Do*", "data:Sel*"}
	genResources = []string{
		"*", "brn:bulkhead:data:acme:table/*", "brn:bulkhead:data:${bulkhead:TenantID}:table/*", "brn:bulkhead:data:*",
		"brn:bulkhead:data:*:table/orders", "brn:bulkhead:data:${aws:PrincipalTag/team}:*", "brn:bulkhead:data:acme:table/ord?rs",
		"brn:bulkhead:data:${aws:PrincipalTag/t, 'acme'}:table/${*}", "brn:bulkhead:*", "brn:bulkhead:data:*:orders", "brn:*",
		"brn:bulkhead:data:${bulkhead:TenantID}:*", "brn:bulkhead:data:a*e:table/*s", "arn:aws:s3:::b*",
	}
	genOps = []string{
		"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike",
		"NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals",
		"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals",
		"Bool", "IpAddress", "NotIpAddress", "Null",
	}
	genKeys = map[string][]string{
		"String":  {"bulkhead:TenantID", "bulkhead:Tier", "aws:PrincipalTag/team", "bulkhead:PrincipalTag/TEAM", "ext:Owner", "data:LeadingKeys", "ext:Groups", "aws:SourceIp", "aws:EpochTime"},
		"Numeric": {"ext:Rows", "aws:EpochTime", "ext:Groups", "aws:CurrentTime"},
		"Date":    {"aws:CurrentTime", "aws:EpochTime", "ext:Expires"},
		"Bool":    {"ext:MFA", "ext:Owner"},
		"Ip":      {"aws:SourceIp", "ext:Ip"},
		"Null":    {"bulkhead:TenantID", "aws:PrincipalTag/team", "data:LeadingKeys", "ext:Rows", "aws:SourceIp", "aws:CurrentTime"},
	}
	genValues = map[string][]string{
		"String": {"acme", "globex", "red", "${bulkhead:TenantID}", "${aws:PrincipalTag/team}", "a*", "${aws:PrincipalTag/none}",
			"${aws:PrincipalTag/none, 'acme'}", "ACME", "*", "${*}", "basic", "r?d", "${bulkhead:TenantID}*", "10.1.2.3", "1748779200"},
		"Numeric": {"10", "1.5", "-3", "1748779200", "2e3", "1000"},
		"Date":    {"2025-06-01T12:00:00Z", "2025-01-01", "1748779200", "2030-01-01T00:00Z", "2025-06-01T14:00:00+02:00"},
		"Bool":    {"true", "false", "TRUE"},
		"Ip":      {"10.0.0.0/8", "203.0.113.7", "2001:db8::/32", "0.0.0.0/0", "::/0"},
		"Null":    {"true", "false"},
	}
)

func family(op string) string {
	for _, f := range []string{"String", "Numeric", "Date", "Bool", "Null"} {
		if strings.HasPrefix(op, f) {
			return f
		}
	}
	return "Ip"
}

func genDocs(c *chooser) []*policy.Document {
	docs := make([]*policy.Document, 1+c.pick(2))
	for i := range docs {
		d := &policy.Document{Version: policy.Version2012}
		if c.pick(8) == 0 {
			d.Version = policy.Version2008
		}
		d.Statement = make([]policy.Statement, 1+c.pick(3))
		for j := range d.Statement {
			s := &d.Statement[j]
			if c.pick(2) == 0 {
				s.Sid = fmt.Sprintf("S%d%d", i, j)
			}
			s.Effect = "Allow"
			if c.pick(3) == 0 {
				s.Effect = "Deny"
			}
			if c.pick(4) == 0 {
				s.NotAction = c.some(genActions, 2)
			} else {
				s.Action = c.some(genActions, 2)
			}
			if c.pick(4) == 0 {
				s.NotResource = c.some(genResources, 2)
			} else {
				s.Resource = c.some(genResources, 2)
			}
			for range c.pick(3) {
				genCondition(c, s)
			}
		}
		docs[i] = d
	}
	return docs
}

func genCondition(c *chooser, s *policy.Statement) {
	base := c.one(genOps)
	f := family(base)
	key := c.one(genKeys[f])
	multi := strings.EqualFold(key, "data:LeadingKeys")
	builtin := !strings.HasPrefix(key, "ext:") && !multi
	op := base
	if f != "Null" {
		if c.pick(3) == 0 {
			op += "IfExists"
		}
		switch q := c.pick(3); {
		case multi && q == 0, q == 1 && !builtin:
			op = "ForAllValues:" + op
		case q == 2 && !builtin:
			op = "ForAnyValue:" + op
		}
	}
	if s.Condition == nil {
		s.Condition = policy.Condition{}
	}
	if _, dup := s.Condition[op]; !dup {
		s.Condition[op] = map[string][]string{}
	}
	for k := range s.Condition[op] {
		if strings.EqualFold(k, key) {
			return
		}
	}
	s.Condition[op][key] = c.some(genValues[f], 2)
}

func genRequest(c *chooser) (policy.Request, policy.Principal) {
	req := policy.Request{
		Action:   c.one([]string{"data:Select", "data:insert", "users:Create", "ext:DoIt", "data:Delete"}),
		Resource: c.one([]string{acmeOrders, globexOrders, "brn:bulkhead:data:red:table/x", "brn:bulkhead:data:acme:table/*", "brn:bulkhead:data:acme:table/orders:old", "brn:bulkhead:data", "arn:aws:s3:::bucket", "brn:bulkhead:data:acme:orders"}),
	}
	switch c.pick(3) {
	case 1:
		req.Time = t0
	case 2:
		req.Time = t0.AddDate(6, 0, 0)
	}
	if ip := c.one([]string{"", "10.1.2.3", "203.0.113.7", "::ffff:10.0.0.1", "2001:db8::5"}); ip != "" {
		req.SourceIP = netip.MustParseAddr(ip)
	}
	for _, k := range []struct {
		name string
		vals [][]string
	}{
		{"data:LeadingKeys", [][]string{nil, {}, {"acme"}, {"acme", "globex"}, {"globex"}, {"acme", "acme"}}},
		{"ext:Groups", [][]string{nil, {"acme"}, {"a*", "red"}, {"10", "2000"}, {}}},
		{"ext:Rows", [][]string{nil, {"10"}, {"abc"}, {"2e3"}, {"-3"}}},
		{"ext:Expires", [][]string{nil, {"2025-01-01"}, {"soon"}, {"1748779200"}}},
		{"ext:MFA", [][]string{nil, {"true"}, {"False"}, {"yes"}}},
		{"ext:Owner", [][]string{nil, {"acme"}, {"ACME"}, {"*"}, {""}, {"true"}}},
		{"ext:Ip", [][]string{nil, {"10.9.9.9"}, {"nope"}, {"2001:db8::1"}}},
		{"bulkhead:TenantID", [][]string{nil, {"globex"}}},
	} {
		v := k.vals[c.pick(len(k.vals))]
		if v == nil {
			continue
		}
		if req.Context == nil {
			req.Context = map[string][]string{}
		}
		name := k.name
		if c.pick(4) == 0 {
			name = strings.ToUpper(name)
		}
		req.Context[name] = v
	}
	p := policy.Principal{
		TenantID: policy.Principal{}.TenantID,
	}
	p.TenantID = [...]policy.Principal{{}, acme, globexUser}[c.pick(3)].TenantID
	p.Tier = c.one([]string{"", "basic", "premium"})
	p.Role = [...]policy.Principal{{}, acme, acmeAdmin}[c.pick(3)].Role
	if t := c.pick(5); t > 0 {
		p.Tags = map[string]string{c.one([]string{"team", "Team", "t"}): c.one([]string{"red", "acme", "*", ""})}
	}
	return req, p
}

// The reference evaluator. It re-reads every document on every request,
// and is written for obviousness, not speed: strings become runes, patterns
// are matched by recursion, values are parsed when compared.

func refEvaluate(req policy.Request, p policy.Principal, kind string, docs []*policy.Document) (policy.Effect, string) {
	allowRef := ""
	allowed := false
	for i, d := range docs {
		for j, s := range d.Statement {
			if !refApplies(d, s, req, p) {
				continue
			}
			ref := s.Sid
			if ref == "" {
				ref = fmt.Sprintf("%s[%d].Statement[%d]", kind, i, j)
			}
			if s.Effect == "Deny" {
				return policy.ExplicitDeny, ref
			}
			if !allowed {
				allowed, allowRef = true, ref
			}
		}
	}
	if allowed {
		return policy.Allow, allowRef
	}
	return policy.ImplicitDeny, ""
}

func refBoundary(req policy.Request, p policy.Principal, boundary, docs []*policy.Document) (policy.Effect, string) {
	pe, pref := refEvaluate(req, p, "doc", docs)
	if pe == policy.ExplicitDeny {
		return pe, pref
	}
	be, bref := refEvaluate(req, p, "boundary", boundary)
	if be == policy.ExplicitDeny {
		return be, bref
	}
	if pe == policy.Allow && be == policy.Allow {
		return pe, pref
	}
	return policy.ImplicitDeny, ""
}

func refApplies(d *policy.Document, s policy.Statement, req policy.Request, p policy.Principal) bool {
	vars := d.Version == policy.Version2012
	actions, not := s.Action, false
	if s.NotAction != nil {
		actions, not = s.NotAction, true
	}
	matched := false
	for _, a := range actions {
		items, _ := refExpand(a, false, true, req, p)
		if refGlob(refLowerItems(items), []rune(refLowerASCII(req.Action))) {
			matched = true
		}
	}
	if matched == not {
		return false
	}
	if s.NotResource != nil {
		for _, r := range s.NotResource {
			m, ok := refResource(r, vars, req, p)
			if !ok || m {
				return false
			}
		}
	} else {
		matched = false
		for _, r := range s.Resource {
			if m, ok := refResource(r, vars, req, p); ok && m {
				matched = true
			}
		}
		if !matched {
			return false
		}
	}
	for op, keys := range s.Condition {
		for key, values := range keys {
			if !refCondition(op, key, values, vars, req, p) {
				return false
			}
		}
	}
	return true
}

// item is one character of an expanded pattern.
type item struct {
	r    rune
	wild rune // 0, '*' or '?'
	sep  bool // a colon written in the pattern (not one from a variable)
}

// refExpand turns a pattern into items, substituting variables. ok is
// false when a variable has no value and no default.
func refExpand(s string, vars, wild bool, req policy.Request, p policy.Principal) (items []item, ok bool) {
	for s != "" {
		if vars && strings.HasPrefix(s, "${") {
			end := strings.Index(s, "}")
			inner := s[2:end]
			s = s[end+1:]
			var val string
			switch inner {
			case "*", "?", "$":
				val = inner
			default:
				name, def, hasDef := strings.Cut(inner, ",")
				vs, present := refValues(strings.TrimSpace(name), req, p)
				switch {
				case present && len(vs) == 1:
					val = vs[0]
				case hasDef:
					val = strings.Trim(strings.TrimSpace(def), "'")
				default:
					return nil, false
				}
			}
			for _, r := range val {
				items = append(items, item{r: r})
			}
			continue
		}
		r := []rune(s)[0]
		s = s[len(string(r)):]
		switch {
		case wild && (r == '*' || r == '?'):
			items = append(items, item{wild: r})
		default:
			items = append(items, item{r: r, sep: r == ':'})
		}
	}
	return items, true
}

func refGlob(p []item, s []rune) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	switch p[0].wild {
	case '*':
		for len(p) > 1 && p[1].wild == '*' {
			p = p[1:]
		}
		for i := 0; i <= len(s); i++ {
			if refGlob(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return len(s) > 0 && refGlob(p[1:], s[1:])
	}
	return len(s) > 0 && s[0] == p[0].r && refGlob(p[1:], s[1:])
}

func refLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func refLowerItems(items []item) []item {
	out := make([]item, len(items))
	for i, it := range items {
		if 'A' <= it.r && it.r <= 'Z' {
			it.r += 32
		}
		out[i] = it
	}
	return out
}

func refResource(pattern string, vars bool, req policy.Request, p policy.Principal) (matched, ok bool) {
	if pattern == "*" {
		return true, true
	}
	items, ok := refExpand(pattern, vars, true, req, p)
	if !ok {
		return false, false
	}
	n := 6
	if strings.HasPrefix(pattern, "brn:") {
		n = 5
	}
	var segs [][]item
	var cur []item
	for _, it := range items {
		if it.sep && len(segs) < n-1 {
			segs = append(segs, cur)
			cur = nil
			continue
		}
		cur = append(cur, it)
	}
	segs = append(segs, cur)
	names := strings.SplitN(req.Resource, ":", n)
	if len(names) < len(segs) {
		return false, true
	}
	if len(segs) == n && len(names) != n {
		return false, true
	}
	for i := range segs {
		if !refGlob(segs[i], []rune(names[i])) {
			return false, true
		}
	}
	return true, true
}

// refValues returns a key's values in the request, and whether it is
// present.
func refValues(key string, req policy.Request, p policy.Principal) ([]string, bool) {
	lk := strings.ToLower(key)
	nonEmpty := func(s string) ([]string, bool) {
		if s == "" {
			return nil, false
		}
		return []string{s}, true
	}
	switch {
	case lk == "bulkhead:tenantid":
		return nonEmpty(string(p.TenantID))
	case lk == "bulkhead:tier":
		return nonEmpty(p.Tier)
	case lk == "bulkhead:role":
		return nonEmpty(string(p.Role))
	case strings.HasPrefix(lk, "bulkhead:principaltag/"), strings.HasPrefix(lk, "aws:principaltag/"):
		_, tag, _ := strings.Cut(key, "/")
		for k, v := range p.Tags {
			if strings.EqualFold(k, tag) {
				return []string{v}, true
			}
		}
		return nil, false
	case lk == "aws:sourceip":
		if !req.SourceIP.IsValid() {
			return nil, false
		}
		return []string{req.SourceIP.Unmap().String()}, true
	case lk == "aws:currenttime":
		if req.Time.IsZero() {
			return nil, false
		}
		return []string{req.Time.UTC().Format(time.RFC3339)}, true
	case lk == "aws:epochtime":
		if req.Time.IsZero() {
			return nil, false
		}
		return []string{strconv.FormatInt(req.Time.Unix(), 10)}, true
	}
	for k, v := range req.Context {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func refCondition(op, key string, values []string, vars bool, req policy.Request, p policy.Principal) bool {
	forAll, forAny := false, false
	if len(op) > 13 && strings.EqualFold(op[:13], "ForAllValues:") {
		forAll, op = true, op[13:]
	} else if len(op) > 12 && strings.EqualFold(op[:12], "ForAnyValue:") {
		forAny, op = true, op[12:]
	}
	ifExists := false
	if l := len(op); l > 8 && strings.EqualFold(op[l-8:], "IfExists") {
		ifExists, op = true, op[:l-8]
	}
	base := strings.ToLower(op)
	negated := strings.Contains(base, "not")
	reqVals, present := refValues(key, req, p)
	if base == "null" {
		for _, v := range values {
			if strings.EqualFold(v, "true") != present {
				return true
			}
		}
		return false
	}
	if !present {
		if ifExists || forAll {
			return true
		}
		if forAny {
			return false
		}
		return negated
	}
	test := func(rv string) bool {
		for _, pv := range values {
			m, ok := refCompare(base, rv, pv, vars, req, p)
			if negated && (!ok || m) {
				return false
			}
			if !negated && ok && m {
				return true
			}
		}
		return negated
	}
	switch {
	case forAll:
		for _, rv := range reqVals {
			if !test(rv) {
				return false
			}
		}
		return true
	case forAny:
		for _, rv := range reqVals {
			if test(rv) {
				return true
			}
		}
		return false
	}
	if strings.EqualFold(key, "data:LeadingKeys") || len(reqVals) != 1 {
		return false
	}
	return test(reqVals[0])
}

func refCompare(base, rv, pv string, vars bool, req policy.Request, p policy.Principal) (match, ok bool) {
	switch {
	case strings.HasPrefix(base, "string"):
		like := strings.Contains(base, "like")
		items, ok := refExpand(pv, vars, like, req, p)
		if !ok {
			return false, false
		}
		if strings.Contains(base, "ignorecase") {
			var b strings.Builder
			for _, it := range items {
				b.WriteRune(it.r)
			}
			return strings.EqualFold(b.String(), rv), true
		}
		return refGlob(items, []rune(rv)), true
	case strings.HasPrefix(base, "numeric"):
		a, ok1 := refNumber(rv)
		b, ok2 := refNumber(pv)
		if !ok1 || !ok2 {
			return false, false
		}
		return refOrder(base, a, b), true
	case strings.HasPrefix(base, "date"):
		a, ok1 := refDate(rv)
		b, ok2 := refDate(pv)
		if !ok1 || !ok2 {
			return false, false
		}
		return refOrder(base, float64(a.UnixNano()), float64(b.UnixNano())), true
	case base == "bool":
		r := strings.ToLower(rv)
		if r != "true" && r != "false" {
			return false, false
		}
		return r == strings.ToLower(pv), true
	default: // IpAddress, NotIpAddress
		a, err := netip.ParseAddr(rv)
		if err != nil || a.Zone() != "" {
			return false, false
		}
		pfx, err := netip.ParsePrefix(pv)
		if err != nil {
			h := netip.MustParseAddr(pv)
			pfx = netip.PrefixFrom(h, h.BitLen())
		}
		return pfx.Masked().Contains(a.Unmap()), true
	}
}

func refOrder(base string, a, b float64) bool {
	switch {
	case strings.HasSuffix(base, "lessthan"):
		return a < b
	case strings.HasSuffix(base, "lessthanequals"):
		return a <= b
	case strings.HasSuffix(base, "greaterthan"):
		return a > b
	case strings.HasSuffix(base, "greaterthanequals"):
		return a >= b
	}
	return a == b // Equals and NotEquals; the caller negates
}

var refNumberRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

func refNumber(s string) (float64, bool) {
	if !refNumberRE.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

var refEpochRE = regexp.MustCompile(`^[0-9]+$`)

func refDate(s string) (time.Time, bool) {
	if refEpochRE.MatchString(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		return time.Unix(n, 0), err == nil && n <= 1<<40
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
