package policy

import (
	"strings"
)

// compiledDoc is what Validate makes of a Document for evaluation:
// wildcards, variables, numbers, dates and CIDR blocks parsed once.
type compiledDoc struct {
	stmts []compiledStmt
}

type compiledStmt struct {
	sid         string
	index       int
	deny        bool
	notAction   bool
	actions     []pattern
	notResource bool
	resources   []resource
	conds       []cond
}

// Validate checks d against the policy language and compiles it for
// evaluation. Its errors are those of [Parse].
func (d *Document) Validate() error {
	return d.validate("policy.Document.Validate")
}

func (d *Document) validate(op string) error {
	c, err := d.compile()
	if err != nil {
		return invalid(op, "%s", err.Error())
	}
	d.compiled = c
	return nil
}

func (d *Document) compile() (*compiledDoc, error) {
	var vars bool
	switch d.Version {
	case Version2012:
		vars = true
	case Version2008:
	case "":
		return nil, problemf("Version is required (use %q)", Version2012)
	default:
		return nil, problemf("Version %s is not %q or %q", quote(d.Version), Version2012, Version2008)
	}
	switch n := len(d.Statement); {
	case n == 0:
		return nil, errorString("Statement is empty")
	case n > MaxStatements:
		return nil, problemf("%d statements, more than the limit of %d", n, MaxStatements)
	}
	c := &compiledDoc{stmts: make([]compiledStmt, len(d.Statement))}
	sids := map[string]int{}
	for i := range d.Statement {
		s := &d.Statement[i]
		if s.Sid != "" {
			if j, dup := sids[s.Sid]; dup {
				return nil, problemf("%s: Sid is also used by Statement[%d]", label(i, s.Sid), j)
			}
			sids[s.Sid] = i
		}
		if err := s.compile(&c.stmts[i], vars); err != nil {
			return nil, problemf("%s: %v", label(i, s.Sid), err)
		}
		c.stmts[i].index = i
	}
	return c, nil
}

func (s *Statement) compile(c *compiledStmt, vars bool) error {
	if s.Sid != "" && !validSid(s.Sid) {
		return errorString("Sid must be 1 to 128 ASCII letters and digits")
	}
	c.sid = s.Sid
	switch s.Effect {
	case "Allow":
	case "Deny":
		c.deny = true
	case "":
		return errorString("Effect is required")
	default:
		return problemf("Effect must be \"Allow\" or \"Deny\", not %s", quote(s.Effect))
	}

	acts, field := s.Action, "Action"
	switch {
	case s.Action != nil && s.NotAction != nil:
		return errorString("both Action and NotAction are set")
	case s.NotAction != nil:
		acts, field, c.notAction = s.NotAction, "NotAction", true
	case s.Action == nil:
		return errorString("one of Action and NotAction is required")
	}
	if len(acts) == 0 {
		return problemf("%s is empty", field)
	}
	for _, a := range acts {
		if err := checkAction(a); err != nil {
			return problemf("%s: %v", field, err)
		}
		p, _ := parsePattern(a, false, true)
		c.actions = append(c.actions, p)
	}

	res, field := s.Resource, "Resource"
	switch {
	case s.Resource != nil && s.NotResource != nil:
		return errorString("both Resource and NotResource are set")
	case s.NotResource != nil:
		res, field, c.notResource = s.NotResource, "NotResource", true
	case s.Resource == nil:
		return errorString("one of Resource and NotResource is required")
	}
	if len(res) == 0 {
		return problemf("%s is empty", field)
	}
	for _, r := range res {
		if r == "" {
			return problemf("%s: an entry is empty", field)
		}
		p, err := parseResource(r, vars)
		if err != nil {
			return problemf("%s: %v", field, err)
		}
		c.resources = append(c.resources, p)
	}

	conds, err := compileCondition(s.Condition, vars)
	if err != nil {
		return problemf("Condition: %v", err)
	}
	c.conds = conds
	return nil
}

func validSid(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// checkAction accepts "*" and "service:name", where the name may hold the
// wildcards * and ?. An action of one of bulkhead's own services must match
// at least one bulkhead action.
func checkAction(a string) error {
	if a == "*" {
		return nil
	}
	svc, name, ok := strings.Cut(a, ":")
	if !ok || svc == "" || name == "" || len(a) > 128 {
		return problemf("%s is not an action (want service:name or *)", quote(a))
	}
	for i := 0; i < len(svc); i++ {
		if c := svc[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return problemf("%s is not an action (want service:name or *)", quote(a))
		}
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '*' || c == '?') {
			return problemf("%s is not an action (want service:name or *)", quote(a))
		}
	}
	if ownedServices[strings.ToLower(svc)] {
		p, _ := parsePattern(a, false, true)
		for _, known := range actions {
			if glob(p.toks, known, true, nil) {
				return nil
			}
		}
		return problemf("%s matches no bulkhead action", quote(a))
	}
	return nil
}
