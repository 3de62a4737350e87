package policy

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

type family uint8

const (
	fString family = iota
	fStringFold
	fLike
	fNumeric
	fDate
	fBool
	fIP
	fNull
)

type comparison uint8

const (
	cmpEq comparison = iota
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)

type operator struct {
	name    string // canonical
	family  family
	cmp     comparison
	negated bool
}

var operators = func() map[string]operator {
	m := map[string]operator{}
	add := func(name string, f family, c comparison, neg bool) {
		m[strings.ToLower(name)] = operator{name, f, c, neg}
	}
	add("StringEquals", fString, cmpEq, false)
	add("StringNotEquals", fString, cmpEq, true)
	add("StringEqualsIgnoreCase", fStringFold, cmpEq, false)
	add("StringNotEqualsIgnoreCase", fStringFold, cmpEq, true)
	add("StringLike", fLike, cmpEq, false)
	add("StringNotLike", fLike, cmpEq, true)
	for _, f := range []struct {
		prefix string
		family family
	}{{"Numeric", fNumeric}, {"Date", fDate}} {
		add(f.prefix+"Equals", f.family, cmpEq, false)
		add(f.prefix+"NotEquals", f.family, cmpEq, true)
		add(f.prefix+"LessThan", f.family, cmpLt, false)
		add(f.prefix+"LessThanEquals", f.family, cmpLe, false)
		add(f.prefix+"GreaterThan", f.family, cmpGt, false)
		add(f.prefix+"GreaterThanEquals", f.family, cmpGe, false)
	}
	add("Bool", fBool, cmpEq, false)
	add("IpAddress", fIP, cmpEq, false)
	add("NotIpAddress", fIP, cmpEq, true)
	add("Null", fNull, cmpEq, false)
	return m
}()

// unsupported are AWS operators that bulkhead's resources have no use for.
var unsupported = map[string]bool{
	"arnequals": true, "arnlike": true, "arnnotequals": true, "arnnotlike": true, "binaryequals": true,
}

type setQualifier uint8

const (
	setNone setQualifier = iota
	setForAll
	setForAny
)

// cond is one compiled operator-key pair of a condition block.
type cond struct {
	op       operator
	set      setQualifier
	ifExists bool
	key      keyRef
	values   []cvalue
}

// cvalue is one compiled policy value.
type cvalue struct {
	pat  pattern      // string families
	num  float64      // fNumeric
	t    time.Time    // fDate
	cidr netip.Prefix // fIP
	b    bool         // fBool, fNull
}

// parseOperator splits "ForAllValues:StringEqualsIfExists" into its parts.
// Operator names are matched without regard to case, as AWS does.
func parseOperator(name string) (operator, setQualifier, bool, error) {
	base, set := name, setNone
	for _, q := range []struct {
		prefix string
		set    setQualifier
	}{{"ForAllValues:", setForAll}, {"ForAnyValue:", setForAny}} {
		if len(base) >= len(q.prefix) && strings.EqualFold(base[:len(q.prefix)], q.prefix) {
			base, set = base[len(q.prefix):], q.set
			break
		}
	}
	lb := strings.ToLower(base)
	op, ok := operators[lb]
	ifExists := false
	if !ok && strings.HasSuffix(lb, "ifexists") {
		op, ok = operators[strings.TrimSuffix(lb, "ifexists")]
		ifExists = true
	}
	switch {
	case !ok && unsupported[strings.TrimSuffix(lb, "ifexists")]:
		return operator{}, 0, false, problemf("unsupported operator %s", quote(name))
	case !ok:
		return operator{}, 0, false, problemf("unknown operator %s", quote(name))
	case op.family == fNull && ifExists:
		return operator{}, 0, false, problemf("%s: Null does not take IfExists", quote(name))
	case op.family == fNull && set != setNone:
		return operator{}, 0, false, problemf("%s: Null does not take ForAllValues: or ForAnyValue:", quote(name))
	}
	return op, set, ifExists, nil
}

// compileCondition checks and compiles a condition block, in a fixed order
// (by operator, then key) so that evaluation and messages are repeatable.
func compileCondition(c Condition, vars bool) ([]cond, error) {
	ops := make([]string, 0, len(c))
	for name := range c {
		ops = append(ops, name)
	}
	slices.Sort(ops)
	var out []cond
	seenOp := map[string]string{}
	for _, name := range ops {
		op, set, ifExists, err := parseOperator(name)
		if err != nil {
			return nil, err
		}
		canon := strings.ToLower(name)
		if prev, dup := seenOp[canon]; dup {
			return nil, problemf("operators %s and %s are the same", quote(prev), quote(name))
		}
		seenOp[canon] = name
		keys := make([]string, 0, len(c[name]))
		for k := range c[name] {
			keys = append(keys, k)
		}
		if len(keys) == 0 {
			return nil, problemf("%s has no condition keys", name)
		}
		slices.Sort(keys)
		seenKey := map[string]string{}
		for _, k := range keys {
			lk := strings.ToLower(k)
			if prev, dup := seenKey[lk]; dup {
				return nil, problemf("%s: keys %s and %s differ only in case", name, quote(prev), quote(k))
			}
			seenKey[lk] = k
			key, err := parseKey(k)
			if err != nil {
				return nil, problemf("%s: %v", name, err)
			}
			switch {
			case op.family == fNull:
			case key.multi && set == setNone:
				return nil, problemf("%s: %s is multivalued: use ForAllValues:%s or ForAnyValue:%s", name, quote(k), name, name)
			case !key.multi && key.kind != kContext && set != setNone:
				return nil, problemf("%s: %s is single-valued: drop the set qualifier", name, quote(k))
			}
			vs := c[name][k]
			if len(vs) == 0 {
				return nil, problemf("%s: %s has no values", name, quote(k))
			}
			cd := cond{op: op, set: set, ifExists: ifExists, key: key, values: make([]cvalue, len(vs))}
			for i, v := range vs {
				if err := cd.values[i].compile(op.family, v, vars); err != nil {
					return nil, problemf("%s: %s: %v", name, quote(k), err)
				}
			}
			out = append(out, cd)
		}
	}
	return out, nil
}

func (cv *cvalue) compile(f family, v string, vars bool) error {
	var ok bool
	switch f {
	case fString, fStringFold, fLike:
		// Policy variables are substituted in string comparisons only,
		// as in AWS.
		p, err := parsePattern(v, vars, f == fLike)
		if err != nil {
			return err
		}
		cv.pat = p
		return nil
	case fNumeric:
		if cv.num, ok = parseNumber(v); !ok {
			return problemf("%s is not a number", quote(v))
		}
	case fDate:
		if cv.t, ok = parseDate(v); !ok {
			return problemf("%s is not an ISO 8601 date and time or epoch seconds", quote(v))
		}
	case fIP:
		if cv.cidr, ok = parseCIDR(v); !ok {
			return problemf("%s is not a CIDR block or IP address", quote(v))
		}
	case fBool, fNull:
		switch {
		case strings.EqualFold(v, "true"):
			cv.b = true
		case strings.EqualFold(v, "false"):
		default:
			return problemf("%s is not true or false", quote(v))
		}
	}
	return nil
}

// eval evaluates one operator-key pair, following AWS:
//
//   - Null is true when any of its values is "true" and the key is absent,
//     or "false" and the key is present.
//   - An absent key: IfExists and ForAllValues are true, ForAnyValue is
//     false, a plain negated operator (StringNotEquals, NotIpAddress…) is
//     true and a plain positive one false.
//   - A plain operator needs exactly one value in the request; on a set
//     (a multivalued key, or several values) it is false.
//   - ForAllValues is true when every request value passes (so an empty set
//     passes), ForAnyValue when at least one does.
//   - A request value passes a positive operator when it matches any policy
//     value (OR), and a negated one when it matches none (NOR).
func (c *cond) eval(e *env) bool {
	v := e.values(c.key)
	if c.op.family == fNull {
		for i := range c.values {
			if c.values[i].b != v.present {
				return true
			}
		}
		return false
	}
	if !v.present {
		switch {
		case c.ifExists || c.set == setForAll:
			return true
		case c.set == setForAny:
			return false
		}
		return c.op.negated
	}
	switch c.set {
	case setForAll:
		for i := 0; i < v.n(); i++ {
			if !c.test(&v, i, e) {
				return false
			}
		}
		return true
	case setForAny:
		for i := 0; i < v.n(); i++ {
			if c.test(&v, i, e) {
				return true
			}
		}
		return false
	}
	if c.key.multi || v.n() != 1 {
		return false
	}
	return c.test(&v, 0, e)
}

// test applies the operator to request value i. A comparison that cannot be
// made, because a policy variable has no value or the request value is not
// of the operator's type, counts as failed both ways: it matches nothing,
// and it keeps a negated operator from passing.
func (c *cond) test(v *vals, i int, e *env) bool {
	for j := range c.values {
		m, ok := c.compare(v, i, &c.values[j], e)
		if !ok {
			if c.op.negated {
				return false
			}
			continue
		}
		if m {
			return !c.op.negated
		}
	}
	return c.op.negated
}

func (c *cond) compare(v *vals, i int, pv *cvalue, e *env) (match, ok bool) {
	switch c.op.family {
	case fString:
		if !pv.pat.resolved(e) {
			return false, false
		}
		return equal(pv.pat.toks, v.str(i), e), true
	case fStringFold:
		if !pv.pat.resolved(e) {
			return false, false
		}
		return strings.EqualFold(text(pv.pat.toks, e), v.str(i)), true
	case fLike:
		if !pv.pat.resolved(e) {
			return false, false
		}
		return glob(pv.pat.toks, v.str(i), false, e), true
	case fNumeric:
		n, ok := v.num(i)
		if !ok {
			return false, false
		}
		return compare(n, pv.num, c.op.cmp), true
	case fDate:
		t, ok := v.time(i)
		if !ok {
			return false, false
		}
		return compare(t.Compare(pv.t), 0, c.op.cmp), true
	case fBool:
		s := v.str(i)
		if !strings.EqualFold(s, "true") && !strings.EqualFold(s, "false") {
			return false, false
		}
		return strings.EqualFold(s, "true") == pv.b, true
	case fIP:
		a, ok := v.addr(i)
		if !ok {
			return false, false
		}
		return pv.cidr.Contains(a), true
	}
	return false, false
}

func compare[T int | float64](a, b T, c comparison) bool {
	switch c {
	case cmpLt:
		return a < b
	case cmpLe:
		return a <= b
	case cmpGt:
		return a > b
	case cmpGe:
		return a >= b
	}
	return a == b
}
