package rest

import (
	"net/url"
	"strings"
)

// Compared returns the values the filters of a request's query compare
// column with, by any operator, under any negation, at any depth of
// and/or trees, each as written (quotes and list syntax removed), and
// whether the column is compared with anything at all. It parses the
// query as [Builder.Build] does; a query that does not parse returns
// ok=false, and Build then refuses it before any SQL runs.
//
// Isolation: the HTTP layer decides policies before SQL runs, on the
// tenants a request names (its tenant_id filters) and the ids it asks for;
// reading them from the parsed filters, not from raw parameter names,
// means no spelling the parser accepts ("tenant_id", or=(…), in.(…),
// eq(any).{…}) escapes the decision.
func Compared(t *Table, method string, query url.Values, column string) (vals []string, ok bool) {
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
		if c.col == nil || c.col.Name != column {
			return
		}
		for _, v := range c.vals {
			vals = append(vals, strings.Trim(v, `" `))
		}
	}
	for _, c := range q.conds {
		walk(c)
	}
	return vals, true
}
