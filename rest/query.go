package rest

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Bounds on what one query string may ask for, so that the SQL and its
// parameter list stay small (PostgreSQL allows 65535 parameters).
const (
	maxDepth  = 16    // nesting of or/and trees
	maxValues = 10000 // filter values in all
)

// query is a parsed query string.
type query struct {
	proj       []projItem
	conds      []*cond // ANDed
	order      []orderItem
	limit      int64
	hasLimit   bool
	offset     int64
	hasOffset  bool
	onConflict []*Column // nil unless on_conflict was given
	columns    []*Column // nil unless columns was given
}

// projItem is one output column.
type projItem struct {
	col  *Column
	cast string // SQL type from selectCasts, or ""
	name string // the output key: the alias, else the column name
}

// orderItem is one ORDER BY term.
type orderItem struct {
	col   *Column
	desc  bool
	nulls string // "", "NULLS FIRST" or "NULLS LAST"
}

// cond is a filter: a comparison, or an AND/OR of filters.
type cond struct {
	not bool

	logic string // "AND" or "OR" for a tree, "" for a comparison
	kids  []*cond

	col   *Column
	op    string   // "=", "<>", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IN", "IS", "IS DISTINCT FROM"
	quant string   // "ANY", "ALL" or ""
	vals  []string // the values, verbatim (like patterns already use %)
	word  string   // for IS: "NULL", "TRUE", "FALSE" or "UNKNOWN"
}

// parser holds what parsing needs across parameters.
type parser struct {
	t      *Table
	cols   map[string]*Column
	method string
	nvals  int // values seen, against maxValues
}

// reserved are the query parameters that are not filters.
var reserved = map[string]bool{
	"select": true, "order": true, "limit": true, "offset": true,
	"on_conflict": true, "columns": true, "or": true, "and": true,
	"not.or": true, "not.and": true,
}

// parseQuery parses every parameter, in sorted order so that both the SQL
// and the first error reported are deterministic.
func (p *parser) parseQuery(v url.Values) (*query, error) {
	q := &query{}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sel := "*"
	write := p.method != http.MethodGet && p.method != http.MethodHead
	for _, k := range keys {
		vals := v[k]
		if len(vals) == 0 {
			continue
		}
		if reserved[k] {
			if len(vals) > 1 && k != "or" && k != "and" && k != "not.or" && k != "not.and" {
				return nil, errorf(ErrInvalidParameter, "The parameter %s is given more than once.", echo(k))
			}
		} else if i := strings.LastIndexByte(k, '.'); i >= 0 && reserved[k[i+1:]] {
			// tasks.order=…, tasks.limit=…: modifiers of an embedded resource.
			return nil, errorf(ErrUnsupported, "The parameter %s modifies an embedded resource: embedding is not supported.", echo(k))
		}
		var err error
		switch k {
		case "select":
			sel = vals[0]
		case "order":
			if write {
				return nil, errorf(ErrUnsupported, "The order parameter is not supported on %s.", p.method)
			}
			q.order, err = p.parseOrder(vals[0])
		case "limit":
			if write {
				return nil, errorf(ErrUnsupported, "The limit parameter is not supported on %s.", p.method)
			}
			q.limit, err = parseCount(vals[0])
			if err != nil {
				return nil, errorf(ErrInvalidLimit, "The limit parameter must be a non-negative integer, not %s.", echo(vals[0]))
			}
			q.hasLimit = true
		case "offset":
			if write {
				return nil, errorf(ErrUnsupported, "The offset parameter is not supported on %s.", p.method)
			}
			q.offset, err = parseCount(vals[0])
			if err != nil {
				return nil, errorf(ErrInvalidOffset, "The offset parameter must be a non-negative integer, not %s.", echo(vals[0]))
			}
			q.hasOffset = true
		case "on_conflict":
			if p.method != http.MethodPost {
				return nil, errorf(ErrInvalidParameter, "The on_conflict parameter is only for POST.")
			}
			q.onConflict, err = p.parseColumnList(k, vals[0])
		case "columns":
			if p.method != http.MethodPost && p.method != http.MethodPatch {
				return nil, errorf(ErrInvalidParameter, "The columns parameter is only for POST and PATCH.")
			}
			q.columns, err = p.parseColumnList(k, vals[0])
		case "or", "and", "not.or", "not.and":
			for _, s := range vals {
				var c *cond
				c, err = p.parseTree(k, strings.HasPrefix(k, "not."), strings.TrimPrefix(k, "not."), s, 1)
				if err != nil {
					break
				}
				q.conds = append(q.conds, c)
			}
		default:
			name := unquoteName(k)
			if p.cols[name] == nil && strings.Contains(name, ".") {
				return nil, errorf(ErrUnsupported, "The filter %s is on an embedded resource: embedding is not supported.", echo(k))
			}
			c, err := p.column(k, name)
			if err != nil {
				return nil, err
			}
			for _, s := range vals {
				f, err := p.parseOp(k, c, s, false)
				if err != nil {
					return nil, err
				}
				q.conds = append(q.conds, f)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if len(q.conds) > 0 && p.method == http.MethodPost {
		return nil, errorf(ErrUnsupported, "Filters are not supported on POST.")
	}
	if len(q.conds) == 0 && (p.method == http.MethodPatch || p.method == http.MethodDelete) {
		// A PATCH or DELETE without a filter would touch every row the
		// tenant has: almost always a mistake, so it is refused.
		return nil, errorf(ErrFilterRequired, "A %s needs at least one filter, such as id=eq.<id>.", p.method)
	}
	var err error
	q.proj, err = p.parseSelect(sel)
	if err != nil {
		return nil, err
	}
	return q, nil
}

// column looks a name up among the described columns. param names the
// query parameter, for the message.
func (p *parser) column(param, name string) (*Column, error) {
	if systemColumns[name] {
		return nil, errorf(ErrUnknownColumn, "The parameter %s names the system column %s, which cannot be used.", echo(param), echo(name))
	}
	c := p.cols[name]
	if c == nil {
		if strings.Contains(name, "->") {
			return nil, errorf(ErrUnsupported, "The parameter %s uses a JSON path: JSON paths are not supported.", echo(param))
		}
		return nil, errorf(ErrUnknownColumn, "The parameter %s names %s, which is not a column of %s.", echo(param), echo(name), echo(p.t.Name))
	}
	return c, nil
}

// unquoteName returns the name inside a double-quoted name, or s itself
// when it is not one.
func unquoteName(s string) string {
	if strings.HasPrefix(s, `"`) {
		if name, rest, ok := readQuoted(s); ok && rest == "" {
			return name
		}
	}
	return s
}

// parseCount parses a non-negative decimal integer without sign or spaces.
func parseCount(s string) (int64, error) {
	if s == "" || len(s) > 18 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}

// selectCasts are the only casts select may ask for, mapped to the SQL
// written. Isolation: reg* types (regclass, regrole, …) look names up in
// the catalogs and would turn a select into a catalog oracle, so they and
// anything else off this list are refused.
var selectCasts = map[string]string{
	"text":                     "text",
	"integer":                  "integer",
	"int":                      "integer",
	"int4":                     "integer",
	"bigint":                   "bigint",
	"int8":                     "bigint",
	"numeric":                  "numeric",
	"boolean":                  "boolean",
	"bool":                     "boolean",
	"uuid":                     "uuid",
	"date":                     "date",
	"timestamptz":              "timestamp with time zone",
	"timestamp with time zone": "timestamp with time zone",
	"json":                     "json",
	"jsonb":                    "jsonb",
}

// parseSelect parses select=…; "*" expands to the described columns.
func (p *parser) parseSelect(s string) ([]projItem, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errorf(ErrInvalidSelect, "The select parameter is empty; use select=* for every column.")
	}
	parts, ok := splitTop(s)
	if !ok {
		return nil, errorf(ErrInvalidSelect, "The select parameter has unbalanced quotes or parentheses.")
	}
	var out []projItem
	seen := map[string]bool{}
	add := func(it projItem) error {
		if seen[it.name] {
			return errorf(ErrInvalidSelect, "The select parameter returns the key %s twice.", echo(it.name))
		}
		seen[it.name] = true
		out = append(out, it)
		return nil
	}
	for _, part := range parts {
		part = strings.TrimSpace(part)
		switch {
		case part == "":
			return nil, errorf(ErrInvalidSelect, "The select parameter has an empty item.")
		case part == "*":
			for i := range p.t.Columns {
				c := &p.t.Columns[i]
				if err := add(projItem{col: c, name: c.Name}); err != nil {
					return nil, err
				}
			}
			continue
		case strings.HasPrefix(part, "..."), hasUnquoted(part, "()"):
			return nil, errorf(ErrUnsupported, "The select item %s embeds a resource or aggregates: embedding is not supported.", echo(part))
		case hasUnquoted(part, "!"):
			return nil, errorf(ErrUnsupported, "The select item %s uses a hint: embedding is not supported.", echo(part))
		}
		it, err := p.parseSelectItem(part)
		if err != nil {
			return nil, err
		}
		if err := add(it); err != nil {
			return nil, err
		}
	}
	if len(out) > maxRenamed && renamed(out) {
		return nil, errorf(ErrInvalidSelect, "A select that renames columns may return at most %d of them.", maxRenamed)
	}
	return out, nil
}

// parseSelectItem parses [alias:]name[::cast].
func (p *parser) parseSelectItem(part string) (projItem, error) {
	bad := func() (projItem, error) {
		return projItem{}, errorf(ErrInvalidSelect, "The select item %s is malformed; use name, alias:name or name::type.", echo(part))
	}
	name, rest, ok := readName(part)
	if !ok {
		return bad()
	}
	alias := ""
	if strings.HasPrefix(rest, ":") && !strings.HasPrefix(rest, "::") {
		alias = name
		name, rest, ok = readName(rest[1:])
		if !ok {
			return bad()
		}
	}
	if strings.HasPrefix(rest, "->") {
		return projItem{}, errorf(ErrUnsupported, "The select item %s uses a JSON path: JSON paths are not supported.", echo(part))
	}
	cast := ""
	if after, found := strings.CutPrefix(rest, "::"); found {
		cast = selectCasts[strings.ToLower(strings.TrimSpace(after))]
		if cast == "" {
			return projItem{}, errorf(ErrInvalidSelect, "The select item %s casts to a type that is not allowed; use text, integer, bigint, numeric, boolean, uuid, date, timestamptz, json or jsonb.", echo(part))
		}
		rest = ""
	}
	if rest != "" {
		return bad()
	}
	c, err := p.column("select", name)
	if err != nil {
		return projItem{}, err
	}
	if alias == "" {
		alias = c.Name
	}
	return projItem{col: c, cast: cast, name: alias}, nil
}

// readName reads a quoted or bare name from the start of s. A bare name
// ends at ':' or "->".
func readName(s string) (name, rest string, ok bool) {
	if strings.HasPrefix(s, `"`) {
		return readQuoted(s)
	}
	i := 0
	for i < len(s) && s[i] != ':' && s[i] != '"' && !strings.HasPrefix(s[i:], "->") {
		i++
	}
	return s[:i], s[i:], i > 0
}

// readQuoted reads a double-quoted name, in which "" stands for one
// double quote, from the start of s.
func readQuoted(s string) (name, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		return b.String(), s[i+1:], b.Len() > 0
	}
	return "", "", false
}

// parseOrder parses order=col[.asc|.desc][.nullsfirst|.nullslast],….
func (p *parser) parseOrder(s string) ([]orderItem, error) {
	parts, ok := splitTop(s)
	if !ok {
		return nil, errorf(ErrInvalidOrder, "The order parameter has unbalanced quotes or parentheses.")
	}
	var out []orderItem
	for _, part := range parts {
		if hasUnquoted(part, "()") {
			return nil, errorf(ErrUnsupported, "The order item %s orders by an embedded resource: embedding is not supported.", echo(part))
		}
		var name, mods string
		if strings.HasPrefix(part, `"`) {
			var ok bool
			name, mods, ok = readQuoted(part)
			if !ok {
				return nil, errorf(ErrInvalidOrder, "The order item %s has an unterminated quoted name.", echo(part))
			}
			if mods != "" && mods[0] != '.' {
				return nil, errorf(ErrInvalidOrder, "The order item %s is malformed; use column.asc or column.desc.", echo(part))
			}
		} else {
			name, mods, _ = strings.Cut(part, ".")
			if mods != "" || strings.HasSuffix(part, ".") {
				mods = "." + mods
			}
		}
		if name == "" {
			return nil, errorf(ErrInvalidOrder, "The order parameter has an empty item.")
		}
		c, err := p.column("order", name)
		if err != nil {
			return nil, err
		}
		it := orderItem{col: c}
		var words []string
		if mods != "" {
			words = strings.Split(mods[1:], ".")
		}
		if len(words) > 0 && (words[0] == "asc" || words[0] == "desc") {
			it.desc = words[0] == "desc"
			words = words[1:]
		}
		if len(words) > 0 && (words[0] == "nullsfirst" || words[0] == "nullslast") {
			it.nulls = "NULLS FIRST"
			if words[0] == "nullslast" {
				it.nulls = "NULLS LAST"
			}
			words = words[1:]
		}
		if len(words) > 0 {
			return nil, errorf(ErrInvalidOrder, "The order item %s is malformed; use column[.asc|.desc][.nullsfirst|.nullslast].", echo(part))
		}
		out = append(out, it)
	}
	return out, nil
}

// parseColumnList parses on_conflict=a,b or columns="a","b".
func (p *parser) parseColumnList(param, s string) ([]*Column, error) {
	parts, ok := splitTop(s)
	if !ok {
		return nil, errorf(ErrInvalidParameter, "The %s parameter has unbalanced quotes.", param)
	}
	var out []*Column
	for _, part := range parts {
		c, err := p.column(param, unquoteName(strings.TrimSpace(part)))
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, c) {
			return nil, errorf(ErrInvalidParameter, "The %s parameter names %s twice.", param, echo(c.Name))
		}
		out = append(out, c)
	}
	return out, nil
}

// parseTree parses an or/and tree: (cond,cond,…), where each cond is
// col.op.value, or(…), and(…), not.or(…) or not.and(…).
func (p *parser) parseTree(param string, not bool, logic, s string, depth int) (*cond, error) {
	if depth > maxDepth {
		return nil, errorf(ErrInvalidFilter, "The filter %s nests or/and deeper than %d.", echo(param), maxDepth)
	}
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return nil, errorf(ErrInvalidFilter, "The filter %s must be a parenthesised list such as (a.eq.1,b.eq.2).", echo(param))
	}
	parts, ok := splitTop(s[1 : len(s)-1])
	if !ok {
		return nil, errorf(ErrInvalidFilter, "The filter %s has unbalanced quotes or parentheses.", echo(param))
	}
	c := &cond{not: not, logic: strings.ToUpper(logic)}
	for _, part := range parts {
		var kid *cond
		var err error
		switch {
		case strings.HasPrefix(part, "or("), strings.HasPrefix(part, "and("),
			strings.HasPrefix(part, "not.or("), strings.HasPrefix(part, "not.and("):
			n := strings.HasPrefix(part, "not.")
			rest := strings.TrimPrefix(part, "not.")
			l, body, _ := strings.Cut(rest, "(")
			kid, err = p.parseTree(param, n, l, "("+body, depth+1)
		default:
			var name, rest string
			if strings.HasPrefix(part, `"`) {
				var ok bool
				name, rest, ok = readQuoted(part)
				if !ok {
					return nil, errorf(ErrInvalidFilter, "The filter %s has an unterminated quoted name.", echo(param))
				}
			} else {
				i := strings.IndexByte(part, '.')
				if i < 0 {
					return nil, errorf(ErrInvalidFilter, "The filter %s has the item %s; use column.operator.value.", echo(param), echo(part))
				}
				name, rest = part[:i], part[i:]
			}
			if !strings.HasPrefix(rest, ".") {
				return nil, errorf(ErrInvalidFilter, "The filter %s has the item %s; use column.operator.value.", echo(param), echo(part))
			}
			col, cerr := p.column(param, name)
			if cerr != nil {
				return nil, cerr
			}
			kid, err = p.parseOp(param, col, rest[1:], true)
		}
		if err != nil {
			return nil, err
		}
		c.kids = append(c.kids, kid)
	}
	return c, nil
}

// ops maps the supported PostgREST operators to SQL.
var ops = map[string]string{
	"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=",
	"like": "LIKE", "ilike": "ILIKE", "in": "IN", "is": "IS", "isdistinct": "IS DISTINCT FROM",
}

// quantifiable are the operators that take (any) or (all).
var quantifiable = map[string]bool{
	"eq": true, "gt": true, "gte": true, "lt": true, "lte": true, "like": true, "ilike": true,
}

// unsupportedOps are PostgREST operators that bulkhead does not implement.
var unsupportedOps = map[string]bool{
	"match": true, "imatch": true, "cs": true, "cd": true, "ov": true,
	"sl": true, "sr": true, "nxr": true, "nxl": true, "adj": true,
	"fts": true, "plfts": true, "phfts": true, "wfts": true,
}

// parseOp parses [not.]op[(any|all)].value for column c. In a tree, a value
// may be double-quoted (with backslash escapes) to hold commas and
// parentheses.
func (p *parser) parseOp(param string, c *Column, s string, tree bool) (*cond, error) {
	f := &cond{col: c}
	if rest, ok := strings.CutPrefix(s, "not."); ok {
		f.not, s = true, rest
	}
	opPart, val, found := strings.Cut(s, ".")
	name, mod, hasMod := strings.Cut(opPart, "(")
	switch {
	case unsupportedOps[name]:
		return nil, errorf(ErrUnsupported, "The filter %s uses the operator %s, which is not supported.", echo(param), echo(name))
	case ops[name] == "":
		return nil, errorf(ErrInvalidFilter, "The filter %s has the unknown operator %s; use eq, neq, gt, gte, lt, lte, like, ilike, in, is or isdistinct, optionally after not.", echo(param), echo(opPart))
	case !found:
		return nil, errorf(ErrInvalidFilter, "The filter %s needs a value after the operator, as in %s.%s.", echo(param), name, "value")
	}
	f.op = ops[name]
	if hasMod {
		switch {
		case (mod == "any)" || mod == "all)") && quantifiable[name]:
			f.quant = strings.ToUpper(mod[:3])
		default:
			return nil, errorf(ErrInvalidFilter, "The filter %s has the operator %s; only (any) and (all) may follow eq, gt, gte, lt, lte, like and ilike.", echo(param), echo(opPart))
		}
	}
	switch {
	case name == "is":
		if tree {
			v, err := unquoteValue(val)
			if err != nil {
				return nil, errorf(ErrInvalidFilter, "The filter %s has a badly quoted value.", echo(param))
			}
			val = v
		}
		switch strings.ToLower(val) {
		case "null":
			f.word = "NULL"
		case "true", "false", "unknown":
			if castFor(c.Type) != "boolean" {
				return nil, errorf(ErrInvalidFilter, "The filter %s uses is.%s on %s, which is not a boolean column; use is.null.", echo(param), strings.ToLower(val), echo(c.Name))
			}
			f.word = strings.ToUpper(val)
		default:
			return nil, errorf(ErrInvalidFilter, "The filter %s needs is.null, is.true, is.false or is.unknown.", echo(param))
		}
		return f, nil
	case name == "in" || f.quant != "":
		open, close := byte('('), byte(')')
		if f.quant != "" {
			open, close = '{', '}'
		}
		if len(val) < 2 || val[0] != open || val[len(val)-1] != close {
			return nil, errorf(ErrInvalidFilter, "The filter %s needs a list such as %c1,2%c.", echo(param), open, close)
		}
		list, err := parseList(val[1 : len(val)-1])
		if err != nil {
			return nil, errorf(ErrInvalidFilter, "The filter %s has a malformed list.", echo(param))
		}
		f.vals = list
	default:
		if tree {
			v, err := unquoteValue(val)
			if err != nil {
				return nil, errorf(ErrInvalidFilter, "The filter %s has a badly quoted value.", echo(param))
			}
			val = v
		}
		f.vals = []string{val}
	}
	p.nvals += len(f.vals)
	if p.nvals > maxValues {
		return nil, errorf(ErrInvalidFilter, "The filters have more than %d values.", maxValues)
	}
	if f.op == "LIKE" || f.op == "ILIKE" {
		for i, v := range f.vals {
			f.vals[i] = strings.ReplaceAll(v, "*", "%")
		}
		return f, nil
	}
	cast := castFor(c.Type)
	for _, v := range f.vals {
		if !validValue(cast, v) {
			return nil, errorf(ErrInvalidFilter, "The filter %s has the value %s, which is not a valid %s.", echo(param), echo(v), cast)
		}
	}
	return f, nil
}

// parseList splits the inside of (…) or {…} at commas. Items may be
// double-quoted, with backslash escapes, to hold commas.
func parseList(s string) ([]string, error) {
	if s == "" {
		return []string{}, nil
	}
	parts, ok := splitTop(s)
	if !ok {
		return nil, strconv.ErrSyntax
	}
	out := make([]string, 0, len(parts))
	for _, part := range parts {
		v, err := unquoteValue(part)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// unquoteValue returns s without its surrounding double quotes and
// backslash escapes, or s itself when it is not quoted.
func unquoteValue(s string) (string, error) {
	if !strings.HasPrefix(s, `"`) {
		return s, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			if i == len(s) {
				return "", strconv.ErrSyntax
			}
			b.WriteByte(s[i])
		case '"':
			if i != len(s)-1 {
				return "", strconv.ErrSyntax
			}
			return b.String(), nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", strconv.ErrSyntax
}

// splitTop splits s at commas that are outside double quotes, parentheses
// and braces. It reports false when they do not balance.
func splitTop(s string) ([]string, bool) {
	var parts []string
	depth, start := 0, 0
	quoted := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if quoted {
			switch ch {
			case '\\':
				i++
			case '"':
				quoted = false
			}
			continue
		}
		switch ch {
		case '"':
			quoted = true
		case '(', '{':
			depth++
		case ')', '}':
			depth--
			if depth < 0 {
				return nil, false
			}
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if quoted || depth != 0 {
		return nil, false
	}
	return append(parts, s[start:]), true
}

// hasUnquoted reports whether s has any of chars outside double quotes.
func hasUnquoted(s, chars string) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case !quoted && strings.IndexByte(chars, s[i]) >= 0:
			return true
		}
	}
	return false
}
