package rest

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// gen writes SQL and collects its parameters.
//
// Isolation: the only text gen writes that does not come from its own
// constants is quoteIdent of a name from the Table and a type name from
// columnTypes or selectCasts. Everything from the request is bound.
type gen struct {
	t    *Table
	args []any
}

// text binds v and returns its placeholder as text.
func (g *gen) text(v string) string {
	g.args = append(g.args, v)
	return "$" + strconv.Itoa(len(g.args)) + "::text"
}

// bigint binds v and returns its placeholder as bigint.
func (g *gen) bigint(v int64) string {
	g.args = append(g.args, v)
	return "$" + strconv.Itoa(len(g.args)) + "::bigint"
}

// table returns the quoted, schema-qualified table name.
func (g *gen) table() string {
	return quoteIdent(g.t.Schema) + "." + quoteIdent(g.t.Name)
}

// quoteIdent quotes a name as a PostgreSQL identifier, doubling any double
// quote inside it. checkTable has refused NUL bytes and names longer than
// PostgreSQL would keep.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// colRef returns a column of the table alias _t.
func colRef(c *Column) string {
	return "_t." + quoteIdent(c.Name)
}

// names returns the quoted column names, comma-separated.
func names(cols []*Column) string {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = quoteIdent(c.Name)
	}
	return strings.Join(s, ", ")
}

// renamed reports whether a select renames a column, in which case JSON
// keys are bound parameters rather than column names.
func renamed(items []projItem) bool {
	return slices.ContainsFunc(items, func(it projItem) bool { return it.name != it.col.Name })
}

// maxRenamed is how many columns a renaming select may return:
// json_build_object takes at most 100 arguments.
const maxRenamed = 50

// projection returns the select list (or RETURNING list) for items. When
// the select renames, the outputs are called _c0, _c1, … and body puts
// the requested keys back.
func projection(items []projItem) string {
	rn := renamed(items)
	s := make([]string, len(items))
	for i, it := range items {
		e := colRef(it.col)
		if it.cast != "" {
			e += "::" + it.cast
		}
		switch {
		case rn:
			e += " AS _c" + strconv.Itoa(i)
		case it.cast != "":
			e += " AS " + quoteIdent(it.col.Name)
		}
		s[i] = e
	}
	return strings.Join(s, ", ")
}

// body returns the expression for the body column over the relation rel.
func (g *gen) body(rel string, items []projItem, returns bool, acc accept) string {
	if !returns {
		return "NULL::text"
	}
	row := rel
	if renamed(items) {
		kv := make([]string, len(items))
		for i, it := range items {
			// Isolation: the key is the caller's alias, so it is bound.
			kv[i] = g.text(it.name) + ", " + rel + "._c" + strconv.Itoa(i)
		}
		row = "json_build_object(" + strings.Join(kv, ", ") + ")"
	}
	e := "coalesce(json_agg(" + row + "), '[]'::json)"
	if acc.single {
		e = "(json_agg(" + row + ") -> 0)"
	}
	if acc.strip {
		e = "json_strip_nulls(" + e + ")"
	}
	return e + "::text"
}

// total returns the third result column of a write.
func total(count bool) string {
	if count {
		return "count(*)"
	}
	return "NULL::bigint"
}

// read returns a SELECT.
func (g *gen) read(q *query, limit int64, returns bool, acc accept, count bool) string {
	tbl := g.table()
	where := g.where(q.conds)
	var inner strings.Builder
	inner.WriteString("SELECT " + projection(q.proj) + " FROM " + tbl + " AS _t" + where)
	for i, o := range q.order {
		if i == 0 {
			inner.WriteString(" ORDER BY ")
		} else {
			inner.WriteString(", ")
		}
		inner.WriteString(colRef(o.col))
		if o.col.Type == "json" || o.col.Type == "json[]" {
			// json has no ordering operator; its text has.
			inner.WriteString("::text")
		}
		if o.desc {
			inner.WriteString(" DESC")
		} else {
			inner.WriteString(" ASC")
		}
		if o.nulls != "" {
			inner.WriteString(" " + o.nulls)
		}
	}
	inner.WriteString(" LIMIT " + g.bigint(limit))
	if q.hasOffset {
		inner.WriteString(" OFFSET " + g.bigint(q.offset))
	}
	tot := "NULL::bigint"
	if count {
		// Isolation: an exact count under row security, never an
		// estimate from statistics that span tenants.
		tot = "(SELECT count(*) FROM " + tbl + " AS _t" + where + ")"
	}
	return "SELECT " + g.body("_r", q.proj, returns, acc) + ", count(*), " + tot + " FROM (" + inner.String() + ") AS _r"
}

// write wraps an INSERT, UPDATE or DELETE in the CTE that makes its one
// result row.
func (g *gen) write(dml string, q *query, returns bool, acc accept, count bool) string {
	ret := "1"
	if returns {
		ret = projection(q.proj)
	}
	return "WITH _w AS (" + dml + " RETURNING " + ret + ") SELECT " + g.body("_w", q.proj, returns, acc) + ", count(*), " + total(count) + " FROM _w"
}

// insert returns an INSERT (or upsert) of the body's rows.
func (g *gen) insert(q *query, bd *body, pref prefer, returns bool, acc accept) (string, error) {
	tbl := g.table()
	cols := bd.keys
	if q.columns != nil {
		cols = q.columns
	}
	if pref.missingDefault {
		// PostgREST fills a missing key with the column default. Rows that
		// all have the same keys need no filling; others are refused.
		for _, c := range cols {
			j := slices.Index(bd.keys, c)
			for _, row := range bd.rows {
				if j < 0 || !row[j] {
					return "", errorf(ErrUnsupported, "Prefer: missing=default is supported only when every object has every inserted key; %s is missing from one.", echo(c.Name))
				}
			}
		}
	}
	var dml string
	switch {
	case len(cols) > 0:
		x := make([]string, len(cols))
		for i, c := range cols {
			x[i] = "_x." + quoteIdent(c.Name)
		}
		// json_populate_recordset over the table's own row type converts
		// each value to its column's type without naming any type.
		dml = "INSERT INTO " + tbl + " AS _t (" + names(cols) + ") SELECT " + strings.Join(x, ", ") +
			" FROM json_populate_recordset(NULL::" + tbl + ", " + g.text(bd.json) + "::json) AS _x"
	case len(bd.rows) == 0:
		// Nothing to insert and no columns to name: answer without
		// touching the table.
		body := "NULL::text"
		if returns {
			body = "'[]'::text"
			if acc.single {
				body = "NULL::text"
			}
		}
		tot := "NULL::bigint"
		if pref.count {
			tot = "0::bigint"
		}
		return "SELECT " + body + ", 0::bigint, " + tot, nil
	case len(bd.rows) == 1 && pref.resolution == "":
		dml = "INSERT INTO " + tbl + " AS _t DEFAULT VALUES"
	default:
		return "", errorf(ErrInvalidBody, "The body's objects have no keys; only a single empty object (a row of defaults) can be inserted.")
	}
	if pref.resolution != "" {
		target := q.onConflict
		if target == nil {
			for _, k := range g.t.PrimaryKey {
				target = append(target, colByName(g.t, k))
			}
		}
		if len(target) == 0 {
			return "", errorf(ErrInvalidParameter, "An upsert on %s needs the on_conflict parameter.", echo(g.t.Name))
		}
		dml += " ON CONFLICT (" + names(target) + ")"
		if pref.resolution == "ignore-duplicates" {
			dml += " DO NOTHING"
		} else {
			var set []*Column
			for _, c := range cols {
				if !slices.Contains(target, c) {
					set = append(set, c)
				}
			}
			if len(set) == 0 {
				set = target
			}
			s := make([]string, len(set))
			for i, c := range set {
				s[i] = quoteIdent(c.Name) + " = EXCLUDED." + quoteIdent(c.Name)
			}
			dml += " DO UPDATE SET " + strings.Join(s, ", ")
		}
	}
	return g.write(dml, q, returns, acc, pref.count), nil
}

// update returns an UPDATE of the filtered rows with the body's values.
func (g *gen) update(q *query, bd *body, returns bool, acc accept, count bool) (string, error) {
	tbl := g.table()
	cols := bd.keys
	if q.columns != nil {
		cols = q.columns
	}
	if len(cols) == 0 {
		return "", errorf(ErrInvalidBody, "The body has no columns to update.")
	}
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = quoteIdent(c.Name) + " = _x." + quoteIdent(c.Name)
	}
	arg := g.text(bd.json)
	where := g.where(q.conds)
	dml := "UPDATE " + tbl + " AS _t SET " + strings.Join(set, ", ") +
		" FROM json_populate_record(NULL::" + tbl + ", " + arg + "::json) AS _x" + where
	return g.write(dml, q, returns, acc, count), nil
}

// delete returns a DELETE of the filtered rows.
func (g *gen) delete(q *query, returns bool, acc accept, count bool) string {
	dml := "DELETE FROM " + g.table() + " AS _t" + g.where(q.conds)
	return g.write(dml, q, returns, acc, count)
}

func colByName(t *Table, name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// where returns " WHERE …" for conds, or "" when there are none. Row
// security adds the tenant condition; this never does.
func (g *gen) where(conds []*cond) string {
	if len(conds) == 0 {
		return ""
	}
	s := make([]string, len(conds))
	for i, c := range conds {
		s[i] = g.cond(c)
	}
	return " WHERE " + strings.Join(s, " AND ")
}

// cond returns the SQL for one filter.
func (g *gen) cond(c *cond) string {
	var s string
	switch {
	case c.logic != "":
		kids := make([]string, len(c.kids))
		for i, k := range c.kids {
			kids[i] = g.cond(k)
		}
		s = "(" + strings.Join(kids, " "+c.logic+" ") + ")"
	case c.op == "IS":
		s = colRef(c.col) + " IS " + c.word
	case c.op == "IN" && len(c.vals) == 0:
		s = "FALSE"
	case c.quant != "" && len(c.vals) == 0:
		s = "FALSE"
		if c.quant == "ALL" {
			s = "TRUE"
		}
	default:
		lhs, typ := colRef(c.col), castFor(c.col.Type)
		like := c.op == "LIKE" || c.op == "ILIKE"
		switch {
		case like && !textLike(typ), !like && typ == "":
			// Compare as text: for LIKE on a non-text column, and for a
			// column whose type is not on the allowlist.
			lhs += "::text"
			typ = "text"
		case like:
			typ = "text"
		}
		vals := make([]string, len(c.vals))
		for i, v := range c.vals {
			vals[i] = g.text(v)
			if typ != "text" {
				vals[i] += "::" + typ
			}
		}
		switch {
		case c.op == "IN":
			s = lhs + " IN (" + strings.Join(vals, ", ") + ")"
		case c.quant != "":
			s = lhs + " " + c.op + " " + c.quant + " (ARRAY[" + strings.Join(vals, ", ") + "])"
		default:
			s = lhs + " " + c.op + " " + vals[0]
		}
	}
	if c.not {
		s = "NOT (" + s + ")"
	}
	return s
}

// columnTypes are the column types that filter values are cast to, keyed
// by format_type's spelling without modifiers, and mapped to the SQL
// written. A column of any other type (an enum, json, a domain) is
// compared as text, so its type name never reaches the SQL.
var columnTypes = map[string]string{
	"text":                        "text",
	"character varying":           "character varying",
	"character":                   "bpchar", // character alone means character(1) and would truncate
	"uuid":                        "uuid",
	"boolean":                     "boolean",
	"smallint":                    "smallint",
	"integer":                     "integer",
	"bigint":                      "bigint",
	"numeric":                     "numeric",
	"real":                        "real",
	"double precision":            "double precision",
	"date":                        "date",
	"time without time zone":      "time without time zone",
	"time with time zone":         "time with time zone",
	"timestamp without time zone": "timestamp without time zone",
	"timestamp with time zone":    "timestamp with time zone",
	"interval":                    "interval",
	"jsonb":                       "jsonb",
	"bytea":                       "bytea",
	"inet":                        "inet",
	"cidr":                        "cidr",
	"macaddr":                     "macaddr",
}

// typePattern splits a format_type name into its base, its modifier (as in
// numeric(10,2) or timestamp(3) with time zone), its time zone part and an
// array suffix.
var typePattern = regexp.MustCompile(`^([a-z][a-z ]*?)(?:\(\d+(?:,\d+)?\))?( with time zone| without time zone)?(\[\])?$`)

// castFor returns the SQL type to cast a filter value to for a column of
// type typ, or "" when the type is not on the allowlist. Modifiers are
// dropped: a cast to varchar(3) would truncate the value silently.
func castFor(typ string) string {
	if base, ok := columnTypes[typ]; ok {
		return base // a plain type name: what the pattern would give, without it
	}
	m := typePattern.FindStringSubmatch(typ)
	if m == nil {
		return ""
	}
	base := columnTypes[m[1]+m[2]]
	if base == "" {
		return ""
	}
	return base + m[3]
}

// textLike reports whether values of SQL type typ can be matched with LIKE
// without a cast.
func textLike(typ string) bool {
	return typ == "text" || typ == "character varying" || typ == "bpchar"
}

// validValue reports whether v can be a value of SQL type typ, for the
// types where a quick check gives a clearer error than the database's.
func validValue(typ, v string) bool {
	switch typ {
	case "uuid":
		return canonicalUUID(v) != ""
	case "boolean":
		switch strings.ToLower(v) {
		case "t", "true", "f", "false", "y", "yes", "n", "no", "on", "off", "1", "0":
			return true
		}
		return false
	case "smallint":
		_, err := strconv.ParseInt(v, 10, 16)
		return err == nil
	case "integer":
		_, err := strconv.ParseInt(v, 10, 32)
		return err == nil
	case "bigint":
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	}
	return true
}
