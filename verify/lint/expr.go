package lint

import (
	"strings"
)

// This file reads policy expressions as PostgreSQL deparses them
// (pg_get_expr with search_path = pg_catalog, so every function outside
// pg_catalog is schema-qualified). It is a scanner, not a parser: it knows
// string literals, quoted identifiers, parentheses and sub-selects, which
// is what the policy checks need. Matching on raw text instead gets
// PostgreSQL's own spelling of a sub-select, "( SELECT …)", wrong: that is
// splinter 0003's false positive.

type tokKind uint8

const (
	tIdent  tokKind = iota // unquoted identifier or keyword; val is lower case
	tQIdent                // "quoted identifier"; val is unquoted
	tString                // 'literal' or E'literal'; val is the contents
	tNumber
	tOp // operator characters, including =, ->> and ::
	tComma
	tDot
	tOther
)

type token struct {
	kind     tokKind
	val      string
	pos, end int // byte offsets in the expression text
}

// item is a token or a parenthesised group.
type item struct {
	tok   *token
	group *group
}

// group is a parenthesised run of items, or the whole expression.
type group struct {
	open, close int // offsets of "(" and ")"; -1 for the root
	items       []item
	sub         bool // the group is a sub-select: ( SELECT …) or ( WITH …)
}

// expr is a scanned expression.
type expr struct {
	text string
	root *group
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$'
}

const opChars = "+-*/<>=~!@#%^&|`?:"

// scan tokenises s. Unterminated literals run to the end of the text.
func scan(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case (c == 'E' || c == 'e') && i+1 < len(s) && s[i+1] == '\'':
			j, v := scanQuoted(s, i+1, '\'', true)
			toks = append(toks, token{tString, v, i, j})
			i = j
		case c == '\'':
			j, v := scanQuoted(s, i, '\'', false)
			toks = append(toks, token{tString, v, i, j})
			i = j
		case c == '"':
			j, v := scanQuoted(s, i, '"', false)
			toks = append(toks, token{tQIdent, v, i, j})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			toks = append(toks, token{tIdent, strings.ToLower(s[i:j]), i, j})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
				j++
			}
			toks = append(toks, token{tNumber, s[i:j], i, j})
			i = j
		case c == '(' || c == ')' || c == '[' || c == ']':
			toks = append(toks, token{tOther, s[i : i+1], i, i + 1})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i, i + 1})
			i++
		case c == '.':
			toks = append(toks, token{tDot, ".", i, i + 1})
			i++
		case strings.IndexByte(opChars, c) >= 0:
			j := i + 1
			for j < len(s) && strings.IndexByte(opChars, s[j]) >= 0 {
				j++
			}
			toks = append(toks, token{tOp, s[i:j], i, j})
			i = j
		default:
			toks = append(toks, token{tOther, s[i : i+1], i, i + 1})
			i++
		}
	}
	return toks
}

// scanQuoted reads a literal or quoted identifier starting at the quote
// at s[i]; a doubled quote is one quote, and with backslash set a
// backslash escapes the next byte.
func scanQuoted(s string, i int, q byte, backslash bool) (end int, val string) {
	var b strings.Builder
	j := i + 1
	for j < len(s) {
		switch {
		case backslash && s[j] == '\\' && j+1 < len(s):
			b.WriteByte(s[j+1])
			j += 2
		case s[j] == q && j+1 < len(s) && s[j+1] == q:
			b.WriteByte(q)
			j += 2
		case s[j] == q:
			return j + 1, b.String()
		default:
			b.WriteByte(s[j])
			j++
		}
	}
	return j, b.String()
}

// parseExpr scans s and nests its parentheses. Unbalanced parentheses are
// tolerated: a stray ")" is ignored and unclosed groups end with the text.
func parseExpr(s string) *expr {
	toks := scan(s)
	root := &group{open: -1, close: len(s)}
	stack := []*group{root}
	for i := range toks {
		t := &toks[i]
		top := stack[len(stack)-1]
		switch {
		case t.kind == tOther && t.val == "(":
			g := &group{open: t.pos, close: len(s)}
			if i+1 < len(toks) && toks[i+1].kind == tIdent && (toks[i+1].val == "select" || toks[i+1].val == "with") {
				g.sub = true
			}
			top.items = append(top.items, item{group: g})
			stack = append(stack, g)
		case t.kind == tOther && t.val == ")":
			if len(stack) > 1 {
				top.close = t.pos
				stack = stack[:len(stack)-1]
			}
		default:
			top.items = append(top.items, item{tok: t})
		}
	}
	return &expr{text: s, root: root}
}

// identIs reports whether it is an identifier token spelled name (name as
// stored in the catalog: case matters for quoted identifiers).
func (it item) identIs(name string) bool {
	if it.tok == nil {
		return false
	}
	switch it.tok.kind {
	case tIdent:
		return it.tok.val == name
	case tQIdent:
		return it.tok.val == name
	}
	return false
}

func (it item) isIdent() bool {
	return it.tok != nil && (it.tok.kind == tIdent || it.tok.kind == tQIdent)
}

func (it item) isKeyword(kw string) bool {
	return it.tok != nil && it.tok.kind == tIdent && it.tok.val == kw
}

func (it item) isDot() bool { return it.tok != nil && it.tok.kind == tDot }

func (it item) isCast() bool { return it.tok != nil && it.tok.kind == tOp && it.tok.val == "::" }

// references reports whether g, at any depth, names rel.col for some
// column of the relation rel (a correlated reference to the policy's
// table: PostgreSQL qualifies outer columns inside a sub-select).
func (g *group) references(rel string) bool {
	for i, it := range g.items {
		if it.group != nil {
			if it.group.references(rel) {
				return true
			}
			continue
		}
		if it.identIs(rel) && i+2 < len(g.items) && g.items[i+1].isDot() && g.items[i+2].isIdent() &&
			(i == 0 || !g.items[i-1].isDot()) {
			return true
		}
	}
	return false
}

// once reports whether g is a sub-select PostgreSQL evaluates once per
// query (an init-plan): a sub-select that does not refer to the row.
func (g *group) once(rel string) bool {
	return g.sub && !g.references(rel)
}

// mentionsColumn reports whether the expression refers to the column col
// of the policy's table rel: unqualified outside every sub-select (inside
// one, an unqualified name belongs to the sub-select's own tables), or as
// rel.col anywhere.
func (e *expr) mentionsColumn(rel, col string) bool {
	var walk func(g *group, inSub bool) bool
	walk = func(g *group, inSub bool) bool {
		for i, it := range g.items {
			if it.group != nil {
				if walk(it.group, inSub || it.group.sub) {
					return true
				}
				continue
			}
			if !it.identIs(col) {
				continue
			}
			qualified := i > 0 && g.items[i-1].isDot()
			if qualified {
				if i >= 2 && g.items[i-2].identIs(rel) && (i < 3 || !g.items[i-3].isDot()) {
					return true
				}
				continue
			}
			if inSub || it.tok.kind == tIdent && isReservedWord(it.tok.val) {
				continue
			}
			if i+1 < len(g.items) && g.items[i+1].group != nil && !g.items[i+1].group.sub {
				continue // a function call named like the column
			}
			if i > 0 && (g.items[i-1].isKeyword("as") || g.items[i-1].isCast()) {
				continue
			}
			return true
		}
		return false
	}
	return walk(e.root, false)
}

// call is a function call found in an expression.
type call struct {
	schema, name string // schema is empty for an unqualified (pg_catalog) name
	pos, end     int    // the call's text: from the name to the closing ")"
	args         *group
	once         bool // inside a sub-select that runs once per query
}

// String returns the call's qualified name.
func (c call) String() string {
	if c.schema == "" {
		return c.name
	}
	return c.schema + "." + c.name
}

// calls returns every function call in the expression, in text order.
// Keywords that take parentheses (EXISTS, IN, ANY, ARRAY, COALESCE …)
// are returned too; callers match on names.
func (e *expr) calls(rel string) []call {
	var out []call
	var walk func(g *group, once bool)
	walk = func(g *group, once bool) {
		for i, it := range g.items {
			if it.group != nil {
				walk(it.group, once || it.group.once(rel))
				continue
			}
			if !it.isIdent() || i+1 >= len(g.items) || g.items[i+1].group == nil || g.items[i+1].group.sub {
				continue
			}
			if i > 0 && g.items[i-1].isDot() {
				continue // handled at the schema name
			}
			out = append(out, call{name: it.tok.val, pos: it.tok.pos, end: g.items[i+1].group.close + 1, args: g.items[i+1].group, once: once})
		}
		// schema.name( … )
		for i := 0; i+3 < len(g.items); i++ {
			if g.items[i].isIdent() && g.items[i+1].isDot() && g.items[i+2].isIdent() &&
				g.items[i+3].group != nil && !g.items[i+3].group.sub && (i == 0 || !g.items[i-1].isDot()) {
				out = append(out, call{schema: g.items[i].tok.val, name: g.items[i+2].tok.val,
					pos: g.items[i].tok.pos, end: g.items[i+3].group.close + 1, args: g.items[i+3].group, once: once})
			}
		}
	}
	walk(e.root, false)
	// Put the calls in text order (the two passes above interleave).
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].pos < out[j-1].pos; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// multiWordTypes are the words that continue a type name after "::".
var multiWordTypes = map[string]bool{"varying": true, "precision": true, "with": true, "without": true, "time": true, "zone": true}

// constant reports whether g (a call's argument list) depends on no column:
// only literals, casts, operators and calls with constant arguments.
func (g *group) constant() bool {
	for i := 0; i < len(g.items); i++ {
		it := g.items[i]
		if it.group != nil {
			if !it.group.constant() {
				return false
			}
			continue
		}
		if !it.isIdent() {
			continue
		}
		if it.tok.kind == tIdent && isReservedWord(it.tok.val) {
			continue
		}
		if i > 0 && g.items[i-1].isCast() {
			// A type name: skip its qualification and further words.
			for i+2 < len(g.items) && g.items[i+1].isDot() && g.items[i+2].isIdent() {
				i += 2
			}
			for i+1 < len(g.items) && g.items[i+1].tok != nil && g.items[i+1].tok.kind == tIdent && multiWordTypes[g.items[i+1].tok.val] {
				i++
			}
			continue
		}
		if i+1 < len(g.items) && g.items[i+1].group != nil {
			continue // a function name; its arguments are checked as a group
		}
		if i+2 < len(g.items) && g.items[i+1].isDot() && g.items[i+2].isIdent() &&
			i+3 < len(g.items) && g.items[i+3].group != nil {
			i += 2 // schema.function
			continue
		}
		return false
	}
	return true
}

// isReservedWord lists the lower-case keywords a deparsed expression uses
// that are never column names there.
func isReservedWord(w string) bool {
	switch w {
	case "and", "or", "not", "is", "null", "true", "false", "in", "any", "all", "some", "exists",
		"case", "when", "then", "else", "end", "between", "like", "ilike", "similar", "to", "escape",
		"distinct", "from", "select", "where", "as", "array", "row", "coalesce", "nullif", "greatest", "least",
		"current_user", "session_user", "current_role", "user", "current_date", "current_time",
		"current_timestamp", "localtime", "localtimestamp", "current_catalog", "current_schema",
		"collate", "at", "zone", "overlaps", "isnull", "notnull", "unknown", "of", "cast", "with", "symmetric":
		return true
	}
	return false
}

// alwaysTrue reports whether the expression is literally true: true or
// 1 = 1, in any number of parentheses.
func (e *expr) alwaysTrue() bool {
	g := e.root
	for len(g.items) == 1 && g.items[0].group != nil && !g.items[0].group.sub {
		g = g.items[0].group
	}
	var parts []string
	for _, it := range g.items {
		if it.tok == nil {
			return false
		}
		parts = append(parts, strings.ToLower(it.tok.val))
	}
	switch strings.Join(parts, " ") {
	case "true", "1 = 1":
		return true
	}
	return false
}

// fastForm returns the expression with each call in calls wrapped in
// (SELECT …), which PostgreSQL runs once per query as an init-plan.
func (e *expr) fastForm(calls []call) string {
	var b strings.Builder
	last := 0
	for _, c := range calls {
		if c.pos < last {
			continue // nested in a call already wrapped
		}
		b.WriteString(e.text[last:c.pos])
		b.WriteString("(SELECT ")
		b.WriteString(e.text[c.pos:c.end])
		b.WriteString(")")
		last = c.end
	}
	b.WriteString(e.text[last:])
	return b.String()
}

// failOpen reports whether the expression lets every row through when the
// tenant context is missing: COALESCE(…, tenant_col) (the column alone or
// inside a cast or parentheses, after an argument that reads the context),
// "<context call> IS NULL" as one side of an OR, or a CASE that answers
// true for a missing context (WHEN <context> IS NULL THEN true, or ELSE
// true after WHENs that read the context).
func (e *expr) failOpen(rel, col string, isContext func(call) bool) bool {
	part := func(items []item) *expr {
		return &expr{text: e.text, root: &group{open: -1, close: len(e.text), items: items}}
	}
	hasContext := func(items []item) bool {
		for _, c := range part(items).calls(rel) {
			if isContext(c) {
				return true
			}
		}
		return false
	}
	var walk func(g *group) bool
	walk = func(g *group) bool {
		hasOr := false
		for _, it := range g.items {
			if it.isKeyword("or") {
				hasOr = true
			}
		}
		if caseFailsOpen(g.items, hasContext, part) {
			return true
		}
		for i, it := range g.items {
			if it.group == nil {
				continue
			}
			sub := it.group
			if i > 0 && g.items[i-1].isKeyword("coalesce") && coalesceFailsOpen(e, sub, rel, col, hasContext) {
				return true
			}
			if hasOr && isNullTest(sub.items, hasContext) {
				return true
			}
			if walk(sub) {
				return true
			}
		}
		return false
	}
	return walk(e.root)
}

// coalesceFailsOpen reports whether COALESCE's arguments (args) fall back
// to the tenant column: an argument that is the bare column, or one that
// mentions it after an argument that reads the context.
func coalesceFailsOpen(e *expr, args *group, rel, col string, hasContext func([]item) bool) bool {
	context := false
	for _, a := range splitOnComma(args.items) {
		bare := unwrap(a)
		if len(bare) == 1 && bare[0].identIs(col) {
			return true
		}
		arg := &expr{text: e.text, root: &group{open: -1, close: len(e.text), items: a}}
		if context && arg.mentionsColumn(rel, col) {
			return true
		}
		context = context || hasContext(a)
	}
	return false
}

// isNullTest reports whether items are "<x> IS NULL", in any number of
// parentheses, where x reads the context.
func isNullTest(items []item, hasContext func([]item) bool) bool {
	items = unwrap(items)
	n := len(items)
	return n >= 3 && items[n-2].isKeyword("is") && items[n-1].isKeyword("null") && hasContext(items[:n-2])
}

// caseFailsOpen reports whether a CASE at this level of items answers
// true when the context is missing: a WHEN <context> IS NULL whose result
// is true, or an ELSE true reached because every WHEN that reads the
// context is NULL (and none tests for NULL).
func caseFailsOpen(items []item, hasContext func([]item) bool, part func([]item) *expr) bool {
	for i := range items {
		if !items[i].isKeyword("case") {
			continue
		}
		var operand, elseRes []item
		var conds, results [][]item
		state, start, depth := "case", i+1, 0
	scan:
		for j := i + 1; j < len(items); j++ {
			it := items[j]
			switch {
			case it.isKeyword("case"):
				depth++
				continue
			case depth > 0:
				if it.isKeyword("end") {
					depth--
				}
				continue
			case !(it.isKeyword("when") || it.isKeyword("then") || it.isKeyword("else") || it.isKeyword("end")):
				continue
			}
			seg := items[start:j]
			switch state {
			case "case":
				operand = seg
			case "when":
				conds = append(conds, seg)
			case "then":
				results = append(results, seg)
			case "else":
				elseRes = seg
			}
			state, start = it.tok.val, j+1
			if state == "end" {
				break scan
			}
		}
		readsContext, nullTested := len(operand) > 0 && hasContext(operand), false
		for k, cond := range conds {
			if len(operand) == 0 && isNullTest(cond, hasContext) {
				nullTested = true
				if k < len(results) && part(results[k]).alwaysTrue() {
					return true
				}
			}
			readsContext = readsContext || hasContext(cond)
		}
		if elseRes != nil && part(elseRes).alwaysTrue() && readsContext && !nullTested {
			return true
		}
	}
	return false
}

// unwrap strips parentheses that hold the whole of items (not a sub-select).
func unwrap(items []item) []item {
	for len(items) == 1 && items[0].group != nil && !items[0].group.sub {
		items = items[0].group.items
	}
	return items
}

// splitOnComma splits items at the commas at this level.
func splitOnComma(items []item) [][]item {
	var out [][]item
	start := 0
	for i, it := range items {
		if it.tok != nil && it.tok.kind == tComma {
			out = append(out, items[start:i])
			start = i + 1
		}
	}
	return append(out, items[start:])
}

// hasWord reports whether a string literal in the expression contains one
// of words, or an identifier equals one of them.
func (e *expr) hasWord(words ...string) bool {
	for _, t := range scan(e.text) {
		for _, w := range words {
			switch t.kind {
			case tString:
				if strings.Contains(strings.ToLower(t.val), w) {
					return true
				}
			case tIdent, tQIdent:
				if t.val == w {
					return true
				}
			}
		}
	}
	return false
}

// pinsColumn reports whether the expression can only be true for rows
// whose column col is constrained: every branch of a top-level OR must
// mention col, and in an AND one conjunct is enough. "tenant_id = x OR
// true" mentions the column but pins nothing.
func (e *expr) pinsColumn(rel, col string) bool {
	var pins func(items []item) bool
	pins = func(items []item) bool {
		if len(items) == 1 && items[0].group != nil && !items[0].group.sub {
			return pins(items[0].group.items)
		}
		if branches := splitOn(items, "or"); len(branches) > 1 {
			for _, b := range branches {
				if !pins(b) {
					return false
				}
			}
			return true
		}
		if conj := splitOn(items, "and"); len(conj) > 1 {
			for _, c := range conj {
				if pins(c) {
					return true
				}
			}
			return false
		}
		leaf := &expr{text: e.text, root: &group{open: -1, close: len(e.text), items: items}}
		return leaf.mentionsColumn(rel, col)
	}
	return pins(e.root.items)
}

// splitOn splits items at the keyword kw (at this level only).
func splitOn(items []item, kw string) [][]item {
	var out [][]item
	start := 0
	for i, it := range items {
		if it.isKeyword(kw) {
			out = append(out, items[start:i])
			start = i + 1
		}
	}
	return append(out, items[start:])
}
