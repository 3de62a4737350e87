package rest

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// Column describes one column of a [Table].
type Column struct {
	Name string
	// Type is the column's PostgreSQL type as format_type() gives it, such
	// as "uuid", "text", "timestamp with time zone" or "numeric(10,2)".
	Type       string
	NotNull    bool
	HasDefault bool
}

// Table describes one table exposed through the data API. It comes from
// bulkhead's catalog, never from the request, and is the only source of
// identifiers in the SQL that [Build] writes.
type Table struct {
	// Schema is the already-routed schema: "app" for the pool or "t_<hex>"
	// for a silo.
	Schema string
	Name   string
	// Columns are the columns the data API may read and write, in the
	// order select=* returns them.
	Columns []Column
	// TenantColumn is the column that holds the owning tenant's ID, such
	// as "tenant_id", or empty for a table without one.
	TenantColumn string
	// PrimaryKey names the conflict target of an upsert without
	// on_conflict. It may be empty.
	PrimaryKey []string
}

// Request is one data-API request on one table.
type Request struct {
	// Method is GET, HEAD, POST, PATCH or DELETE.
	Method string
	Query  url.Values
	// Header supplies Prefer and Accept. Range is ignored, and so are
	// Accept-Profile and Content-Profile: routing is decided upstream.
	Header http.Header
	// Body is the JSON body of a POST or PATCH.
	Body []byte
	// TenantID is the caller's tenant UUID, verified upstream. It is used
	// only to refuse a body whose tenant column names another tenant.
	TenantID string
}

// Statement is one SQL statement to run in the caller's tenant-scoped
// transaction.
//
// # Result
//
// The statement returns exactly one row of three columns:
//
//  1. body (text): the JSON to send back, or NULL when Returns is false.
//     It is an array of objects, or, when Single is set, the first object
//     alone (NULL when there is no row).
//  2. rows (bigint): the number of rows read (after limit and offset) or
//     written (inserted, updated or deleted), whether or not they are
//     returned. PostgREST's Content-Range is Offset to Offset+rows-1.
//  3. total (bigint): when Count is set, the number of rows that match the
//     filters without limit and offset (for writes, the same as rows);
//     otherwise NULL.
//
// When Single is set, the HTTP layer answers one object if rows is 1 and an
// error otherwise (rolling back a write). Reads fetch at most two rows then.
type Statement struct {
	SQL string
	// Args are the parameters: a string for every $n::text and an int64
	// for every $n::bigint.
	Args []any
	// Returns reports whether the body column carries rows to send
	// (GET, or a write with Prefer: return=representation).
	Returns bool
	// Single reports that Accept asked for application/vnd.pgrst.object+json.
	Single bool
	// Count reports that Prefer asked for a count (exact, planned or
	// estimated; all are answered exactly) and that total is set.
	Count bool
	// Offset is the offset of the first row read, for Content-Range.
	Offset int64
	// Rollback reports Prefer: tx=rollback: the HTTP layer answers as usual
	// and then rolls the transaction back.
	Rollback bool
	// MaxAffected is Prefer: max-affected, or 0 for no limit: the HTTP layer
	// rolls back and answers an error when a write touched more rows.
	MaxAffected int64
}

// Default limits used when a [Builder] field is zero.
const (
	DefaultMaxLimit = 1000 // rows one read may return
	DefaultMaxRows  = 1000 // objects one POST body may hold
)

// Builder builds statements with configurable limits. Its zero value uses
// the defaults.
type Builder struct {
	// MaxLimit caps the rows a read returns. A larger limit, or none, is
	// lowered to it. Zero means DefaultMaxLimit.
	MaxLimit int64
	// MaxRows caps the objects in a POST body; more is [ErrTooManyRows].
	// Zero means DefaultMaxRows.
	MaxRows int
}

// Build turns r into a statement on t with the default limits. See
// [Builder.Build].
func Build(t *Table, r Request) (*Statement, error) {
	return Builder{}.Build(t, r)
}

// Build turns r into one SQL statement on t. It does no I/O.
//
// Bad requests return a [*fault.Error] of kind Invalid (see the ErrX
// variables for the codes), [ErrTooManyRows] (TooLarge) or
// [ErrTenantMismatch] (Denied). A table description that cannot be used
// safely is [ErrInvalidTable] (Internal).
func (b Builder) Build(t *Table, r Request) (_ *Statement, err error) {
	defer fault.Wrap(&err, "rest.Build")
	if b.MaxLimit <= 0 {
		b.MaxLimit = DefaultMaxLimit
	}
	if b.MaxRows <= 0 {
		b.MaxRows = DefaultMaxRows
	}
	cols, err := checkTable(t)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodDelete:
	default:
		return nil, errorf(ErrUnsupported, "The method %s is not supported.", echo(r.Method))
	}
	pref, err := parsePrefer(r.Header)
	if err != nil {
		return nil, err
	}
	acc, err := parseAccept(r.Header)
	if err != nil {
		return nil, err
	}
	p := &parser{t: t, cols: cols, method: r.Method}
	q, err := p.parseQuery(r.Query)
	if err != nil {
		return nil, err
	}
	st := &Statement{
		Single:      acc.single,
		Count:       pref.count,
		Rollback:    pref.rollback,
		MaxAffected: pref.maxAffected,
	}
	g := &gen{t: t}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		st.Returns = r.Method == http.MethodGet
		st.Offset = q.offset
		limit := min(q.limit, b.MaxLimit)
		if !q.hasLimit {
			limit = b.MaxLimit
		}
		if acc.single {
			// Two rows are enough to tell "one" from "more than one".
			limit = min(limit, 2)
		}
		st.SQL = g.read(q, limit, st.Returns, acc, pref.count)
	case http.MethodPost:
		st.Returns = pref.ret == "representation"
		bd, err := decodeBody(r.Body, p, r.TenantID, true, b.MaxRows)
		if err != nil {
			return nil, err
		}
		st.SQL, err = g.insert(q, bd, pref, st.Returns, acc)
		if err != nil {
			return nil, err
		}
	case http.MethodPatch:
		st.Returns = pref.ret == "representation"
		bd, err := decodeBody(r.Body, p, r.TenantID, false, 1)
		if err != nil {
			return nil, err
		}
		st.SQL, err = g.update(q, bd, st.Returns, acc, pref.count)
		if err != nil {
			return nil, err
		}
	case http.MethodDelete:
		st.Returns = pref.ret == "representation"
		st.SQL = g.delete(q, st.Returns, acc, pref.count)
	}
	st.Args = g.args
	return st, nil
}

// systemColumns are PostgreSQL's hidden columns. Isolation: ctid and xmin
// reveal physical layout and transaction ids shared with other tenants'
// rows, so they are never selectable or filterable even if a description
// lists them.
var systemColumns = map[string]bool{
	"ctid": true, "xmin": true, "xmax": true, "cmin": true, "cmax": true,
	"tableoid": true, "oid": true,
}

// maxIdent is PostgreSQL's identifier length. A longer quoted name would be
// silently truncated into a different one.
const maxIdent = 63

// checkTable checks that t can be used safely and indexes its columns by
// exact name.
func checkTable(t *Table) (map[string]*Column, error) {
	if t == nil {
		return nil, errorf(ErrInvalidTable, "No table was given.")
	}
	if !goodIdent(t.Schema) || !goodIdent(t.Name) {
		return nil, errorf(ErrInvalidTable, "The table has an empty or unusable schema or name.")
	}
	if len(t.Columns) == 0 {
		return nil, errorf(ErrInvalidTable, "The table has no columns.")
	}
	cols := make(map[string]*Column, len(t.Columns))
	for i := range t.Columns {
		c := &t.Columns[i]
		if !goodIdent(c.Name) || systemColumns[c.Name] || cols[c.Name] != nil {
			return nil, errorf(ErrInvalidTable, "The table has an empty, unusable, system or repeated column name.")
		}
		cols[c.Name] = c
	}
	if t.TenantColumn != "" && cols[t.TenantColumn] == nil {
		return nil, errorf(ErrInvalidTable, "The table's tenant column is not one of its columns.")
	}
	for _, k := range t.PrimaryKey {
		if cols[k] == nil {
			return nil, errorf(ErrInvalidTable, "The table's primary key names a column it does not have.")
		}
	}
	return cols, nil
}

func goodIdent(s string) bool {
	return s != "" && len(s) <= maxIdent && !strings.ContainsRune(s, 0)
}
