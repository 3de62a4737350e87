package rest

import (
	"net/url"
	"slices"
	"strings"
)

// Compared returns, for each of columns, the values the filters of a
// request's query compare it with, by any operator, under any negation, at
// any depth of and/or trees, each as written (quotes and list syntax
// removed). It parses the query once, as [Builder.Build] does; a query
// that does not parse returns ok=false, and Build then refuses it before
// any SQL runs.
//
// Isolation: the HTTP layer decides policies before SQL runs, on the
// tenants a request names (its tenant_id filters) and the ids it asks for;
// reading them from the parsed filters, not from raw parameter names,
// means no spelling the parser accepts ("tenant_id", or=(…), in.(…),
// eq(any).{…}) escapes the decision.
func Compared(t *Table, method string, query url.Values, columns ...string) (vals map[string][]string, ok bool) {
	cols, err := checkTable(t)
	if err != nil {
		return nil, false
	}
	p := &parser{t: t, cols: cols, method: method}
	q, err := p.parseQuery(query)
	if err != nil {
		return nil, false
	}
	var walk func(c *cond)
	walk = func(c *cond) {
		if c.logic != "" {
			for _, k := range c.kids {
				walk(k)
			}
			return
		}
		if c.col == nil || !slices.Contains(columns, c.col.Name) {
			return
		}
		for _, v := range c.vals {
			vals[c.col.Name] = append(vals[c.col.Name], strings.Trim(v, `" `))
		}
	}
	vals = map[string][]string{}
	for _, c := range q.conds {
		walk(c)
	}
	return vals, true
}
