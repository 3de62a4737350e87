package gameday

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// column is what the catalog says about one column.
type column struct {
	name       string
	typ        string // format_type(): usable in a cast
	category   string // pg_type.typcategory
	notNull    bool
	hasDefault bool
	identity   string // "", "a" (always) or "d" (by default)
	generated  string // "" or "s"
	enumFirst  string
}

// uniqueKey is a unique index (a primary key, a unique constraint or a
// unique index). Its name is the constraint name a violation reports.
type uniqueKey struct {
	name    string
	primary bool
	cols    []string
	// partition is set for a key that only a partition has: rows reach it
	// through the table when they route to that partition.
	partition bool
}

// foreignKey is a foreign key of table from that references the table it
// is listed on.
type foreignKey struct {
	name     string
	from     *table
	fromCols []string
	toCols   []string
}

// table is what gameday knows about a table it attacks.
type table struct {
	oid    uint32
	schema string
	name   string
	q      string // quoted schema.name
	cols   []column
	tcol   *column // the tenant column; nil when the table has none
	owner  string
	rls    bool
	forced bool
	kind   string // pg_class.relkind: r, or p for a partitioned table
	keys   []uniqueKey
	// partCols are the columns that route a row to a partition, at every
	// level of the partition tree (none for a plain table).
	partCols []string
	refs     []foreignKey
}

func (t *table) col(name string) *column {
	for i := range t.cols {
		if t.cols[i].name == name {
			return &t.cols[i]
		}
	}
	return nil
}

// pk returns the primary key's columns, or nil.
func (t *table) pk() []string {
	for _, k := range t.keys {
		if k.primary {
			return k.cols
		}
	}
	return nil
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// loadTable reads a table's description from the catalog. With refs, the
// foreign keys that point at it are loaded too, with their tables.
func loadTable(ctx context.Context, q querier, name, tenantColumn string, refs bool) (*table, error) {
	var oid *uint32
	o := query(ctx, q, `SELECT pg_catalog.to_regclass($1)::oid`, []any{name})
	if o.err != nil {
		return nil, fmt.Errorf("gameday: look up table %s: %w", name, o.err)
	}
	if o.str(0) == "NULL" {
		return nil, fmt.Errorf("gameday: no table %s (name it as schema.table)", name)
	}
	var n uint32
	fmt.Sscan(o.str(0), &n)
	oid = &n
	return loadTableOID(ctx, q, *oid, tenantColumn, refs)
}

func loadTableOID(ctx context.Context, q querier, oid uint32, tenantColumn string, refs bool) (*table, error) {
	t := &table{oid: oid}
	o := query(ctx, q, `SELECT n.nspname, c.relname, pg_catalog.pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity, c.relkind::text
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, []any{oid})
	if o.err != nil || len(o.rows) == 0 {
		return nil, fmt.Errorf("gameday: read table %d from the catalog: %v", oid, o)
	}
	r := o.rows[0]
	t.schema, t.name, t.owner = r[0], r[1], r[2]
	t.rls, t.forced, t.kind = r[3] == "true", r[4] == "true", r[5]
	if r[5] != "r" && r[5] != "p" {
		return nil, fmt.Errorf("gameday: %s.%s is not a table (relkind %s)", t.schema, t.name, r[5])
	}
	t.q = ident(t.schema) + "." + ident(t.name)
	o = query(ctx, q, `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), ty.typcategory::text,
			a.attnotnull, a.atthasdef, a.attidentity::text, a.attgenerated::text,
			coalesce((SELECT e.enumlabel FROM pg_catalog.pg_enum e WHERE e.enumtypid = ty.oid ORDER BY e.enumsortorder LIMIT 1), '')
		FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, []any{oid})
	if o.err != nil {
		return nil, fmt.Errorf("gameday: read the columns of %s: %w", t.q, o.err)
	}
	for _, r := range o.rows {
		t.cols = append(t.cols, column{name: r[0], typ: r[1], category: r[2], notNull: r[3] == "true",
			hasDefault: r[4] == "true", identity: r[5], generated: r[6], enumFirst: r[7]})
	}
	t.tcol = t.col(tenantColumn)
	// The table's unique indexes, and those that only a partition has (a
	// partitioned table cannot have UNIQUE (email) without its partition
	// key, a partition can): inserts through the table reach them. A
	// partition's share of the table's own index is the same key.
	o = query(ctx, q, `SELECT ic.relname, i.indisprimary,
			ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum > 0
			        AND (a.attnum = ANY (i.indkey) OR a.attnum IN (SELECT d.refobjsubid FROM pg_catalog.pg_depend d
			             WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid AND d.refobjid = i.indrelid))
			      ORDER BY a.attnum)::text[]::text,
			i.indrelid <> $1
		FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
		WHERE (i.indrelid = $1 OR (i.indrelid IN (SELECT pt.relid FROM pg_catalog.pg_partition_tree($1::pg_catalog.regclass) pt)
		                           AND NOT ic.relispartition))
		  AND i.indisunique AND i.indisvalid
		ORDER BY i.indrelid <> $1, NOT i.indisprimary, ic.relname`, []any{oid})
	if o.err != nil {
		return nil, fmt.Errorf("gameday: read the keys of %s: %w", t.q, o.err)
	}
	for _, r := range o.rows {
		t.keys = append(t.keys, uniqueKey{name: r[0], primary: r[1] == "true", cols: parseArray(r[2]), partition: r[3] == "true"})
	}
	o = query(ctx, q, `SELECT DISTINCT a.attname
		FROM pg_catalog.pg_partition_tree($1::pg_catalog.regclass) pt
		JOIN pg_catalog.pg_partitioned_table p ON p.partrelid = pt.relid
		JOIN pg_catalog.pg_attribute a ON a.attrelid = pt.relid AND a.attnum = ANY (p.partattrs::pg_catalog.int2[])
		ORDER BY 1`, []any{oid})
	if o.err != nil {
		return nil, fmt.Errorf("gameday: read the partition keys of %s: %w", t.q, o.err)
	}
	for _, r := range o.rows {
		t.partCols = append(t.partCols, r[0])
	}
	if !refs {
		return t, nil
	}
	o = query(ctx, q, `SELECT con.conname, con.conrelid,
			ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i) JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)::text[]::text,
			ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i) JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)::text[]::text
		FROM pg_catalog.pg_constraint con WHERE con.contype = 'f' AND con.confrelid = $1 ORDER BY con.conname`, []any{oid})
	if o.err != nil {
		return nil, fmt.Errorf("gameday: read the foreign keys to %s: %w", t.q, o.err)
	}
	for _, r := range o.rows {
		var from uint32
		fmt.Sscan(r[1], &from)
		ft := t
		if from != oid {
			var err error
			if ft, err = loadTableOID(ctx, q, from, tenantColumn, false); err != nil {
				return nil, err
			}
		}
		t.refs = append(t.refs, foreignKey{name: r[0], from: ft, fromCols: parseArray(r[2]), toCols: parseArray(r[3])})
	}
	return t, nil
}

// parseArray splits the text form of a text[] of plain identifiers.
func parseArray(s string) []string {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	if s == "" {
		return nil
	}
	var out []string
	for _, x := range strings.Split(s, ",") {
		out = append(out, strings.Trim(x, `"`))
	}
	return out
}

// row is one row's values as text; a nil value is NULL.
type row map[string]*string

func strp(s string) *string { return &s }

// insert builds an INSERT of one row into t. Columns in set take those
// values (cast from text to the column's type); required columns without a
// default get a generated value; the others keep their defaults. The
// statement's arguments are the set values in column order.
func (t *table) insert(set row, suffix string) (string, []any, error) {
	var cols, vals []string
	var args []any
	override := false
	for _, c := range t.cols {
		if c.generated != "" {
			continue
		}
		v, given := set[c.name]
		if !given {
			if !c.notNull || c.hasDefault || c.identity != "" {
				continue
			}
			g, ok := generate(c)
			if !ok {
				return "", nil, fmt.Errorf("no value can be made up for the required column %s of type %s", c.name, c.typ)
			}
			v = &g
		}
		if c.identity == "a" {
			override = true
		}
		cols = append(cols, ident(c.name))
		if v == nil {
			vals = append(vals, "NULL::"+c.typ)
			continue
		}
		args = append(args, *v)
		vals = append(vals, fmt.Sprintf("$%d::text::%s", len(args), c.typ))
	}
	if len(cols) == 0 {
		return "INSERT INTO " + t.q + " DEFAULT VALUES" + suffix, nil, nil
	}
	ov := ""
	if override {
		ov = " OVERRIDING SYSTEM VALUE"
	}
	return "INSERT INTO " + t.q + " (" + strings.Join(cols, ", ") + ")" + ov + " VALUES (" + strings.Join(vals, ", ") + ")" + suffix, args, nil
}

// returningAll is a RETURNING clause giving every column as text.
func (t *table) returningAll() string {
	var b []string
	for _, c := range t.cols {
		b = append(b, ident(c.name)+"::text")
	}
	return " RETURNING " + strings.Join(b, ", ")
}

// asRow maps the first row of an outcome of returningAll (or selectAll) to
// column names.
func (t *table) asRow(o outcome) row {
	if len(o.rows) == 0 {
		return nil
	}
	r := row{}
	for i, c := range t.cols {
		if i < len(o.rows[0]) {
			if v := o.rows[0][i]; v != "NULL" {
				r[c.name] = strp(v)
			} else {
				r[c.name] = nil
			}
		}
	}
	return r
}

// generate makes up a value for a column: random where it could matter for
// uniqueness, plain otherwise. The value is text, cast by the INSERT.
func generate(c column) (string, bool) {
	typ := strings.ToLower(c.typ)
	switch c.category {
	case "S":
		return "gd" + randHex(5), true
	case "N":
		switch {
		case typ == "smallint":
			return fmt.Sprint(1000 + randInt(31000)), true
		case strings.HasPrefix(typ, "numeric("):
			return fmt.Sprint(1 + randInt(9)), true
		case typ == "oid" || strings.HasPrefix(typ, "reg"):
			return "", false
		}
		return fmt.Sprint(100000000 + randInt(1900000000)), true
	case "U":
		switch typ {
		case "uuid":
			return randUUID(), true
		case "json", "jsonb":
			return "{}", true
		case "bytea":
			return `\x` + randHex(4), true
		}
	case "B":
		return "false", true
	case "D":
		t := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(randInt(3e7)) * time.Second)
		if strings.HasPrefix(typ, "time ") || typ == "time" {
			return t.Format("15:04:05"), true
		}
		return t.Format("2006-01-02 15:04:05"), true
	case "T":
		return "1 second", true
	case "A":
		return "{}", true
	case "E":
		return c.enumFirst, c.enumFirst != ""
	case "I":
		return fmt.Sprintf("192.0.2.%d", 1+randInt(250)), true
	}
	return "", false
}

// randomLike makes a random value of a column's type, for the "absent"
// half of an oracle.
func randomLike(c *column) (string, bool) {
	if c.category == "B" || c.category == "E" {
		return "", false
	}
	return generate(*c)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randInt(n int) int {
	var b [8]byte
	rand.Read(b[:])
	return int(binary.BigEndian.Uint64(b[:]) % uint64(n))
}

func randUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
