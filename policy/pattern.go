package policy

import (
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tLit   tokKind = iota // literal text
	tStar                 // *: any run of characters
	tQuest                // ?: any one character
	tVar                  // ${key} or ${key, 'default'}
)

type token struct {
	kind   tokKind
	lit    string // tLit
	key    keyRef // tVar
	def    string // tVar with a default
	hasDef bool
}

// pattern is a compiled string with optional wildcards and policy
// variables. Values substituted for variables are always literal: a tag
// value of "*" matches only "*", never everything.
type pattern struct {
	toks []token
	vars bool // has a tVar token
}

// parsePattern compiles s. Under vars, ${...} is a policy variable or one of
// the escapes ${*}, ${?} and ${$}; otherwise it is literal text. Under wild,
// * and ? are wildcards; otherwise literal.
func parsePattern(s string, vars, wild bool) (pattern, error) {
	var p pattern
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.toks = append(p.toks, token{kind: tLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch {
		case vars && strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return pattern{}, problemf("unterminated policy variable at %s", quote(s[i:]))
			}
			inner := s[i+2 : i+2+end]
			i += end + 3
			switch inner {
			case "*", "?", "$":
				lit.WriteString(inner)
				continue
			}
			t, err := parseVariable(inner)
			if err != nil {
				return pattern{}, err
			}
			flush()
			p.toks = append(p.toks, t)
			p.vars = true
		case wild && s[i] == '*':
			flush()
			if n := len(p.toks); n == 0 || p.toks[n-1].kind != tStar {
				p.toks = append(p.toks, token{kind: tStar})
			}
			i++
		case wild && s[i] == '?':
			flush()
			p.toks = append(p.toks, token{kind: tQuest})
			i++
		default:
			lit.WriteByte(s[i])
			i++
		}
	}
	flush()
	return p, nil
}

// parseVariable parses the inside of ${...}: a single-valued condition key,
// optionally followed by a comma and a default value in single quotes.
func parseVariable(inner string) (token, error) {
	name, def, hasDef := strings.Cut(inner, ",")
	name = strings.TrimSpace(name)
	if hasDef {
		def = strings.TrimSpace(def)
		if len(def) < 2 || def[0] != '\'' || def[len(def)-1] != '\'' || strings.Contains(def[1:len(def)-1], "'") {
			return token{}, problemf("policy variable %s: a default value must be in single quotes, as in ${%s, 'default'}", quote("${"+inner+"}"), name)
		}
		def = def[1 : len(def)-1]
	}
	k, err := parseKey(name)
	if err != nil {
		return token{}, problemf("policy variable %s: %v", quote("${"+inner+"}"), err)
	}
	if k.multi {
		return token{}, problemf("policy variable %s: %s is multivalued and cannot be a variable", quote("${"+inner+"}"), quote(name))
	}
	return token{kind: tVar, key: k, def: def, hasDef: hasDef}, nil
}

// value returns the text of a literal or variable token, and false for a
// variable with no value and no default.
func (t *token) value(e *env) (string, bool) {
	if t.kind != tVar {
		return t.lit, true
	}
	if v, ok := e.single(t.key); ok {
		return v, true
	}
	return t.def, t.hasDef
}

// resolved reports whether every variable of p has a value.
func (p *pattern) resolved(e *env) bool {
	if !p.vars {
		return true
	}
	for i := range p.toks {
		if _, ok := p.toks[i].value(e); !ok {
			return false
		}
	}
	return true
}

// glob reports whether s matches toks, where * matches any run of
// characters and ? any one character. fold compares ASCII letters without
// regard to case. Every variable in toks must be resolved.
func glob(toks []token, s string, fold bool, e *env) bool {
	ti, si := 0, 0
	starTi, starSi := -1, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case tStar:
				starTi, starSi = ti, si
				ti++
				continue
			case tQuest:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					ti++
					continue
				}
			default:
				v, _ := t.value(e)
				if hasPrefix(s[si:], v, fold) {
					si += len(v)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		// Mismatch: let the last * take one more character.
		if starTi < 0 || starSi >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starSi:])
		starSi += n
		ti, si = starTi+1, starSi
	}
}

// equal reports whether s is exactly the text of toks (no wildcards).
func equal(toks []token, s string, e *env) bool {
	for i := range toks {
		v, _ := toks[i].value(e)
		if !strings.HasPrefix(s, v) {
			return false
		}
		s = s[len(v):]
	}
	return s == ""
}

// text returns the resolved text of toks (no wildcards).
func text(toks []token, e *env) string {
	if len(toks) == 1 {
		v, _ := toks[0].value(e)
		return v
	}
	var b strings.Builder
	for i := range toks {
		v, _ := toks[i].value(e)
		b.WriteString(v)
	}
	return b.String()
}

func hasPrefix(s, prefix string, fold bool) bool {
	if len(s) < len(prefix) {
		return false
	}
	if !fold {
		return s[:len(prefix)] == prefix
	}
	for i := 0; i < len(prefix); i++ {
		if lower(s[i]) != lower(prefix[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// resource is a compiled Resource or NotResource entry.
//
// A resource name is split at its colons into segments: 5 for a brn
// (brn:bulkhead:<service>:<tenant>:<resource>), 6 for an AWS arn, the last
// segment taking the rest. Pattern and name are matched segment by segment,
// so wildcards stay inside their segment, except that a pattern with fewer
// segments than its scheme, whose last segment ends in *, matches the
// remaining segments too ("brn:bulkhead:data:*" matches every data
// resource), as AWS documents for a trailing *. The pattern "*" alone
// matches every name.
type resource struct {
	any  bool
	n    int // segments of the scheme
	segs []pattern
	all  pattern // every token, for resolved()
}

func parseResource(s string, vars bool) (resource, error) {
	if s == "*" {
		return resource{any: true}, nil
	}
	all, err := parsePattern(s, vars, true)
	if err != nil {
		return resource{}, err
	}
	var n int
	switch {
	case strings.HasPrefix(s, "brn:"):
		n = 5
	case strings.HasPrefix(s, "arn:"):
		n = 6
	default:
		return resource{}, problemf("%s is not *, a brn (brn:bulkhead:<service>:<tenant>:<kind>/<name>) or an arn", quote(s))
	}
	r := resource{n: n, all: all}
	cur := pattern{}
	for _, t := range all.toks {
		if t.kind != tLit {
			cur.toks = append(cur.toks, t)
			cur.vars = cur.vars || t.kind == tVar
			continue
		}
		lit := t.lit
		for len(r.segs) < n-1 {
			before, after, found := strings.Cut(lit, ":")
			if !found {
				break
			}
			if before != "" {
				cur.toks = append(cur.toks, token{kind: tLit, lit: before})
			}
			r.segs = append(r.segs, cur)
			cur = pattern{}
			lit = after
		}
		if lit != "" {
			cur.toks = append(cur.toks, token{kind: tLit, lit: lit})
		}
	}
	r.segs = append(r.segs, cur)
	if len(r.segs) < n {
		last := r.segs[len(r.segs)-1].toks
		if len(last) == 0 || last[len(last)-1].kind != tStar {
			return resource{}, problemf("%s has %d of the %d colon-separated segments of its scheme; a shorter pattern must end in *", quote(s), len(r.segs), n)
		}
	}
	return r, nil
}

// match reports whether name matches r. ok is false when a variable of r
// has no value: such an entry matches nothing, and it also keeps a
// NotResource statement from applying.
func (r *resource) match(name string, e *env) (matched, ok bool) {
	if r.any {
		return true, true
	}
	if !r.all.resolved(e) {
		return false, false
	}
	rest := name
	for i := range r.segs {
		seg := rest
		last := i == r.n-1
		if !last {
			j := strings.IndexByte(rest, ':')
			if j < 0 {
				if i != len(r.segs)-1 {
					return false, true
				}
			} else {
				seg, rest = rest[:j], rest[j+1:]
			}
		}
		if !glob(r.segs[i].toks, seg, false, e) {
			return false, true
		}
	}
	return true, true
}
