package rest_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/rest"
)

const (
	tenantA = "6f1c0a52-3b1e-4d7a-9c55-0e2f4b8a1d10"
	tenantB = "0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5"
	rowID   = "5b3c2a1e-7d4f-4e2a-9b1c-0a1b2c3d4e5f"
)

// projects is the demo pool table.
var projects = &rest.Table{
	Schema:       "app",
	Name:         "projects",
	TenantColumn: "tenant_id",
	PrimaryKey:   []string{"tenant_id", "id"},
	Columns: []rest.Column{
		{Name: "tenant_id", Type: "uuid", NotNull: true, HasDefault: true},
		{Name: "id", Type: "uuid", NotNull: true, HasDefault: true},
		{Name: "name", Type: "text", NotNull: true},
		{Name: "description", Type: "text"},
		{Name: "created_at", Type: "timestamp with time zone", NotNull: true, HasDefault: true},
	},
}

// tasks has one column of each kind of type the filters treat differently,
// and a column whose name holds a double quote.
var tasks = &rest.Table{
	Schema:       "t_0d9e8f7a6b5c4d3e8f21a0b1c2d3e4f5",
	Name:         "tasks",
	TenantColumn: "tenant_id",
	Columns: []rest.Column{
		{Name: "tenant_id", Type: "uuid", NotNull: true, HasDefault: true},
		{Name: "id", Type: "uuid", NotNull: true, HasDefault: true},
		{Name: "title", Type: "text"},
		{Name: "done", Type: "boolean"},
		{Name: "status", Type: "task_status"}, // an enum: not on the type allowlist
		{Name: "n", Type: "integer"},
		{Name: "code", Type: "character varying(3)"},
		{Name: "price", Type: "numeric(10,2)"},
		{Name: "meta", Type: "json"},
		{Name: "tags", Type: "text[]"},
		{Name: `we"ird`, Type: "text"},
	},
}

// req is a compact way to write a request in a table.
type req struct {
	method string
	query  string // raw query string, as on the wire
	header map[string]string
	body   string
}

func (r req) request(tb testing.TB) rest.Request {
	tb.Helper()
	q, err := url.ParseQuery(r.query)
	if err != nil {
		tb.Fatalf("url.ParseQuery(%q): %v", r.query, err)
	}
	h := http.Header{}
	for k, v := range r.header {
		h.Add(k, v)
	}
	var body []byte
	if r.body != "" {
		body = []byte(r.body)
	}
	return rest.Request{Method: r.method, Query: q, Header: h, Body: body, TenantID: tenantA}
}

func TestBuild(t *testing.T) {
	const (
		projectsCols = `_t."tenant_id", _t."id", _t."name", _t."description", _t."created_at"`
		readBody     = `coalesce(json_agg(_r), '[]'::json)::text`
		writeBody    = `coalesce(json_agg(_w), '[]'::json)::text`
	)
	for _, tt := range []struct {
		name    string
		table   *rest.Table
		builder rest.Builder
		req     req
		want    *rest.Statement
	}{
		{
			name: "GETSelectEqOrderLimit",
			req:  req{method: "GET", query: "select=id,name&name=eq.x&order=name.asc&limit=5"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id", _t."name" FROM "app"."projects" AS _t WHERE _t."name" = $1::text ORDER BY _t."name" ASC LIMIT $2::bigint) AS _r`,
				Args:    []any{"x", int64(5)},
				Returns: true,
			},
		},
		{
			name: "GETStarExpandsToDescribedColumnsWithDefaultLimit",
			req:  req{method: "GET"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT ` + projectsCols + ` FROM "app"."projects" AS _t LIMIT $1::bigint) AS _r`,
				Args:    []any{int64(1000)},
				Returns: true,
			},
		},
		{
			name:    "GETLimitCappedAtMaxLimit",
			builder: rest.Builder{MaxLimit: 100},
			req:     req{method: "GET", query: "select=id&limit=5000&offset=20"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t LIMIT $1::bigint OFFSET $2::bigint) AS _r`,
				Args:    []any{int64(100), int64(20)},
				Returns: true,
				Offset:  20,
			},
		},
		{
			name: "GETAliasAndCastBindKeys",
			req:  req{method: "GET", query: "select=pid:id,name::text,when:created_at::timestamptz"},
			want: &rest.Statement{
				SQL:     `SELECT coalesce(json_agg(json_build_object($2::text, _r._c0, $3::text, _r._c1, $4::text, _r._c2)), '[]'::json)::text, count(*), NULL::bigint FROM (SELECT _t."id" AS _c0, _t."name"::text AS _c1, _t."created_at"::timestamp with time zone AS _c2 FROM "app"."projects" AS _t LIMIT $1::bigint) AS _r`,
				Args:    []any{int64(1000), "pid", "name", "when"},
				Returns: true,
			},
		},
		{
			name: "GETCastWithoutAliasKeepsName",
			req:  req{method: "GET", query: "select=id::text"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id"::text AS "id" FROM "app"."projects" AS _t LIMIT $1::bigint) AS _r`,
				Args:    []any{int64(1000)},
				Returns: true,
			},
		},
		{
			name: "GETComparisonOperators",
			req:  req{method: "GET", query: "select=id&name=neq.a&name=gt.b&name=gte.c&description=lt.d&description=lte.e"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE _t."description" < $1::text AND _t."description" <= $2::text AND _t."name" <> $3::text AND _t."name" > $4::text AND _t."name" >= $5::text LIMIT $6::bigint) AS _r`,
				Args:    []any{"d", "e", "a", "b", "c", int64(1000)},
				Returns: true,
			},
		},
		{
			name: "GETLikeStarIsPercent",
			req:  req{method: "GET", query: "select=id&name=like.*a*&description=ilike.%25B%25"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE _t."description" ILIKE $1::text AND _t."name" LIKE $2::text LIMIT $3::bigint) AS _r`,
				Args:    []any{"%B%", "%a%", int64(1000)},
				Returns: true,
			},
		},
		{
			name: "GETInWithQuotedValue",
			req:  req{method: "GET", query: `select=id&id=in.(` + rowID + `,"` + tenantB + `")&name=in.(a,"b,c","d\"e")`},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE _t."id" IN ($1::text::uuid, $2::text::uuid) AND _t."name" IN ($3::text, $4::text, $5::text) LIMIT $6::bigint) AS _r`,
				Args:    []any{rowID, tenantB, "a", "b,c", `d"e`, int64(1000)},
				Returns: true,
			},
		},
		{
			name: "GETEmptyInMatchesNothing",
			req:  req{method: "GET", query: "select=id&id=in.()&name=not.in.()"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE FALSE AND NOT (FALSE) LIMIT $1::bigint) AS _r`,
				Args:    []any{int64(1000)},
				Returns: true,
			},
		},
		{
			name:  "GETIsAndNot",
			table: tasks,
			req:   req{method: "GET", query: "select=id&title=is.null&code=not.is.null&done=is.true&n=not.eq.5&price=isdistinct.1.50"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "t_0d9e8f7a6b5c4d3e8f21a0b1c2d3e4f5"."tasks" AS _t WHERE NOT (_t."code" IS NULL) AND _t."done" IS TRUE AND NOT (_t."n" = $1::text::integer) AND _t."price" IS DISTINCT FROM $2::text::numeric AND _t."title" IS NULL LIMIT $3::bigint) AS _r`,
				Args:    []any{"5", "1.50", int64(1000)},
				Returns: true,
			},
		},
		{
			name:  "GETColumnTypes",
			table: tasks,
			req:   req{method: "GET", query: "select=id&status=eq.done&meta=eq.{}&code=eq.abcdef&tags=eq.{a,b}&id=like.5b3c*"},
			want: &rest.Statement{
				// An enum and json compare as text; a varchar is cast
				// without its length (no silent truncation); LIKE on a
				// uuid casts the column.
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "t_0d9e8f7a6b5c4d3e8f21a0b1c2d3e4f5"."tasks" AS _t WHERE _t."code" = $1::text::character varying AND _t."id"::text LIKE $2::text AND _t."meta"::text = $3::text AND _t."status"::text = $4::text AND _t."tags" = $5::text::text[] LIMIT $6::bigint) AS _r`,
				Args:    []any{"abcdef", "5b3c%", "{}", "done", "{a,b}", int64(1000)},
				Returns: true,
			},
		},
		{
			name: "GETQuantifiers",
			req:  req{method: "GET", query: `select=id&name=like(any).{a*,"b,*"}&description=not.eq(all).{}&created_at=gt(all).{2024-01-01}`},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE _t."created_at" > ALL (ARRAY[$1::text::timestamp with time zone]) AND NOT (TRUE) AND _t."name" LIKE ANY (ARRAY[$2::text, $3::text]) LIMIT $4::bigint) AS _r`,
				Args:    []any{"2024-01-01", "a%", "b,%", int64(1000)},
				Returns: true,
			},
		},
		{
			name: "GETOrAndNested",
			req:  req{method: "GET", query: `select=id&or=(name.eq.a,and(description.is.null,name.not.like.*x*),name.in.(b,"c,d"),name.eq."e,f")&not.and=(name.eq.g,id.eq.` + rowID + `)`},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE NOT ((_t."name" = $1::text AND _t."id" = $2::text::uuid)) AND (_t."name" = $3::text OR (_t."description" IS NULL AND NOT (_t."name" LIKE $4::text)) OR _t."name" IN ($5::text, $6::text) OR _t."name" = $7::text) LIMIT $8::bigint) AS _r`,
				Args:    []any{"g", rowID, "a", "%x%", "b", "c,d", "e,f", int64(1000)},
				Returns: true,
			},
		},
		{
			name: "GETTwoOrParamsAreANDed",
			req:  req{method: "GET", query: "select=id&or=(name.eq.a,name.eq.b)&or=(description.eq.c,description.eq.d)"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE (_t."name" = $1::text OR _t."name" = $2::text) AND (_t."description" = $3::text OR _t."description" = $4::text) LIMIT $5::bigint) AS _r`,
				Args:    []any{"a", "b", "c", "d", int64(1000)},
				Returns: true,
			},
		},
		{
			name: "GETOrderModifiers",
			req:  req{method: "GET", query: "select=id&order=created_at.desc.nullslast,name,description.nullsfirst,id.asc"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t ORDER BY _t."created_at" DESC NULLS LAST, _t."name" ASC, _t."description" ASC NULLS FIRST, _t."id" ASC LIMIT $1::bigint) AS _r`,
				Args:    []any{int64(1000)},
				Returns: true,
			},
		},
		{
			name:  "GETOrderByJSONAsText",
			table: tasks,
			req:   req{method: "GET", query: "select=id&order=meta.desc,status"},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "t_0d9e8f7a6b5c4d3e8f21a0b1c2d3e4f5"."tasks" AS _t ORDER BY _t."meta"::text DESC, _t."status" ASC LIMIT $1::bigint) AS _r`,
				Args:    []any{int64(1000)},
				Returns: true,
			},
		},
		{
			name: "GETCountExact",
			req:  req{method: "GET", query: "select=id&name=eq.a&limit=10&offset=10", header: map[string]string{"Prefer": "count=exact"}},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), (SELECT count(*) FROM "app"."projects" AS _t WHERE _t."name" = $1::text) FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE _t."name" = $1::text LIMIT $2::bigint OFFSET $3::bigint) AS _r`,
				Args:    []any{"a", int64(10), int64(10)},
				Returns: true,
				Count:   true,
				Offset:  10,
			},
		},
		{
			// Isolation: a planned count is a planner estimate over every
			// tenant's rows; it is answered with the exact count.
			name: "GETCountPlannedIsExact",
			req:  req{method: "GET", query: "select=id&name=eq.a", header: map[string]string{"Prefer": "count=planned"}},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), (SELECT count(*) FROM "app"."projects" AS _t WHERE _t."name" = $1::text) FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE _t."name" = $1::text LIMIT $2::bigint) AS _r`,
				Args:    []any{"a", int64(1000)},
				Returns: true,
				Count:   true,
			},
		},
		{
			name: "GETSingleStripNulls",
			req:  req{method: "GET", query: "select=id&id=eq." + rowID + "&limit=10", header: map[string]string{"Accept": "application/vnd.pgrst.object+json;nulls=stripped"}},
			want: &rest.Statement{
				SQL:     `SELECT json_strip_nulls((json_agg(_r) -> 0))::text, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t WHERE _t."id" = $1::text::uuid LIMIT $2::bigint) AS _r`,
				Args:    []any{rowID, int64(2)},
				Returns: true,
				Single:  true,
			},
		},
		{
			name: "GETArrayStripNulls",
			req:  req{method: "GET", query: "select=id", header: map[string]string{"Accept": "application/vnd.pgrst.array+json;nulls=stripped"}},
			want: &rest.Statement{
				SQL:     `SELECT json_strip_nulls(coalesce(json_agg(_r), '[]'::json))::text, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t LIMIT $1::bigint) AS _r`,
				Args:    []any{int64(1000)},
				Returns: true,
			},
		},
		{
			name: "HEADCount",
			req:  req{method: "HEAD", query: "select=*", header: map[string]string{"Prefer": "count=exact"}},
			want: &rest.Statement{
				SQL:   `SELECT NULL::text, count(*), (SELECT count(*) FROM "app"."projects" AS _t) FROM (SELECT ` + projectsCols + ` FROM "app"."projects" AS _t LIMIT $1::bigint) AS _r`,
				Args:  []any{int64(1000)},
				Count: true,
			},
		},
		{
			name: "POSTObjectRepresentation",
			req:  req{method: "POST", query: "select=*", header: map[string]string{"Prefer": "return=representation"}, body: `{"name":"a","description":"d"}`},
			want: &rest.Statement{
				SQL:     `WITH _w AS (INSERT INTO "app"."projects" AS _t ("name", "description") SELECT _x."name", _x."description" FROM json_populate_recordset(NULL::"app"."projects", $1::text::json) AS _x RETURNING ` + projectsCols + `) SELECT ` + writeBody + `, count(*), NULL::bigint FROM _w`,
				Args:    []any{`[{"name":"a","description":"d"}]`},
				Returns: true,
			},
		},
		{
			name: "POSTRepresentationRenamed",
			req:  req{method: "POST", query: "select=key:id,name", header: map[string]string{"Prefer": "return=representation"}, body: `{"name":"a"}`},
			want: &rest.Statement{
				SQL:     `WITH _w AS (INSERT INTO "app"."projects" AS _t ("name") SELECT _x."name" FROM json_populate_recordset(NULL::"app"."projects", $1::text::json) AS _x RETURNING _t."id" AS _c0, _t."name" AS _c1) SELECT coalesce(json_agg(json_build_object($2::text, _w._c0, $3::text, _w._c1)), '[]'::json)::text, count(*), NULL::bigint FROM _w`,
				Args:    []any{`[{"name":"a"}]`, "key", "name"},
				Returns: true,
			},
		},
		{
			name: "POSTArrayMinimalReencoded",
			req:  req{method: "POST", header: map[string]string{"Prefer": "count=exact"}, body: " [ {\"name\" : \"a\"}, {\"description\":null, \"na\\u006de\": 1} ] "},
			want: &rest.Statement{
				SQL:   `WITH _w AS (INSERT INTO "app"."projects" AS _t ("name", "description") SELECT _x."name", _x."description" FROM json_populate_recordset(NULL::"app"."projects", $1::text::json) AS _x RETURNING 1) SELECT NULL::text, count(*), count(*) FROM _w`,
				Args:  []any{`[{"name":"a"},{"description":null,"name":1}]`},
				Count: true,
			},
		},
		{
			name: "POSTColumnsParam",
			req:  req{method: "POST", query: `columns="name","description"`, body: `[{"name":"a"}]`},
			want: &rest.Statement{
				SQL:  `WITH _w AS (INSERT INTO "app"."projects" AS _t ("name", "description") SELECT _x."name", _x."description" FROM json_populate_recordset(NULL::"app"."projects", $1::text::json) AS _x RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _w`,
				Args: []any{`[{"name":"a"}]`},
			},
		},
		{
			name: "POSTOwnTenantIsAccepted",
			req:  req{method: "POST", body: `{"tenant_id":"` + strings.ToUpper(tenantA) + `","name":"a"}`},
			want: &rest.Statement{
				SQL:  `WITH _w AS (INSERT INTO "app"."projects" AS _t ("tenant_id", "name") SELECT _x."tenant_id", _x."name" FROM json_populate_recordset(NULL::"app"."projects", $1::text::json) AS _x RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _w`,
				Args: []any{`[{"tenant_id":"` + strings.ToUpper(tenantA) + `","name":"a"}]`},
			},
		},
		{
			name: "POSTEmptyObjectIsDefaultRow",
			req:  req{method: "POST", header: map[string]string{"Prefer": "return=headers-only"}, body: `{}`},
			want: &rest.Statement{
				SQL: `WITH _w AS (INSERT INTO "app"."projects" AS _t DEFAULT VALUES RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _w`,
			},
		},
		{
			name: "POSTEmptyArrayInsertsNothing",
			req:  req{method: "POST", query: "select=id", header: map[string]string{"Prefer": "return=representation"}, body: `[]`},
			want: &rest.Statement{
				SQL:     `SELECT '[]'::text, 0::bigint, NULL::bigint`,
				Returns: true,
			},
		},
		{
			name: "POSTUpsertMergeOnPrimaryKey",
			req:  req{method: "POST", query: "select=id", header: map[string]string{"Prefer": "resolution=merge-duplicates, return=representation"}, body: `{"id":"` + rowID + `","name":"u"}`},
			want: &rest.Statement{
				SQL:     `WITH _w AS (INSERT INTO "app"."projects" AS _t ("id", "name") SELECT _x."id", _x."name" FROM json_populate_recordset(NULL::"app"."projects", $1::text::json) AS _x ON CONFLICT ("tenant_id", "id") DO UPDATE SET "name" = EXCLUDED."name" RETURNING _t."id") SELECT ` + writeBody + `, count(*), NULL::bigint FROM _w`,
				Args:    []any{`[{"id":"` + rowID + `","name":"u"}]`},
				Returns: true,
			},
		},
		{
			name: "POSTUpsertIgnoreOnConflict",
			req:  req{method: "POST", query: `on_conflict=id&columns="id","name"`, header: map[string]string{"Prefer": "resolution=ignore-duplicates"}, body: `[{"id":"` + rowID + `","name":"u"}]`},
			want: &rest.Statement{
				SQL:  `WITH _w AS (INSERT INTO "app"."projects" AS _t ("id", "name") SELECT _x."id", _x."name" FROM json_populate_recordset(NULL::"app"."projects", $1::text::json) AS _x ON CONFLICT ("id") DO NOTHING RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _w`,
				Args: []any{`[{"id":"` + rowID + `","name":"u"}]`},
			},
		},
		{
			name: "POSTUpsertOnlyKeyColumns",
			req:  req{method: "POST", query: "on_conflict=id", header: map[string]string{"Prefer": "resolution=merge-duplicates"}, body: `{"id":"` + rowID + `"}`},
			want: &rest.Statement{
				SQL:  `WITH _w AS (INSERT INTO "app"."projects" AS _t ("id") SELECT _x."id" FROM json_populate_recordset(NULL::"app"."projects", $1::text::json) AS _x ON CONFLICT ("id") DO UPDATE SET "id" = EXCLUDED."id" RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _w`,
				Args: []any{`[{"id":"` + rowID + `"}]`},
			},
		},
		{
			name: "POSTMissingDefaultSameKeys",
			req:  req{method: "POST", header: map[string]string{"Prefer": "missing=default"}, body: `[{"name":"a"},{"name":"b"}]`},
			want: &rest.Statement{
				SQL:  `WITH _w AS (INSERT INTO "app"."projects" AS _t ("name") SELECT _x."name" FROM json_populate_recordset(NULL::"app"."projects", $1::text::json) AS _x RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _w`,
				Args: []any{`[{"name":"a"},{"name":"b"}]`},
			},
		},
		{
			name: "PATCHRepresentation",
			req:  req{method: "PATCH", query: "id=eq." + rowID + "&select=id,name", header: map[string]string{"Prefer": "return=representation"}, body: `{"name":"n","description":null}`},
			want: &rest.Statement{
				SQL:     `WITH _w AS (UPDATE "app"."projects" AS _t SET "name" = _x."name", "description" = _x."description" FROM json_populate_record(NULL::"app"."projects", $1::text::json) AS _x WHERE _t."id" = $2::text::uuid RETURNING _t."id", _t."name") SELECT ` + writeBody + `, count(*), NULL::bigint FROM _w`,
				Args:    []any{`{"name":"n","description":null}`, rowID},
				Returns: true,
			},
		},
		{
			name: "PATCHRollbackMaxAffected",
			req:  req{method: "PATCH", query: "name=like.a*", header: map[string]string{"Prefer": "tx=rollback", "prefer": "handling=strict,max-affected=3"}, body: `{"name":"n"}`},
			want: &rest.Statement{
				SQL:         `WITH _w AS (UPDATE "app"."projects" AS _t SET "name" = _x."name" FROM json_populate_record(NULL::"app"."projects", $1::text::json) AS _x WHERE _t."name" LIKE $2::text RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _w`,
				Args:        []any{`{"name":"n"}`, "a%"},
				Rollback:    true,
				MaxAffected: 3,
			},
		},
		{
			name: "DELETEEq",
			req:  req{method: "DELETE", query: "id=eq." + rowID},
			want: &rest.Statement{
				SQL:  `WITH _w AS (DELETE FROM "app"."projects" AS _t WHERE _t."id" = $1::text::uuid RETURNING 1) SELECT NULL::text, count(*), NULL::bigint FROM _w`,
				Args: []any{rowID},
			},
		},
		{
			name: "DELETESingleRepresentationCount",
			req:  req{method: "DELETE", query: "id=in.(" + rowID + ")&select=id", header: map[string]string{"Prefer": "return=representation,count=exact", "Accept": "application/vnd.pgrst.object+json"}},
			want: &rest.Statement{
				SQL:     `WITH _w AS (DELETE FROM "app"."projects" AS _t WHERE _t."id" IN ($1::text::uuid) RETURNING _t."id") SELECT (json_agg(_w) -> 0)::text, count(*), count(*) FROM _w`,
				Args:    []any{rowID},
				Returns: true,
				Single:  true,
				Count:   true,
			},
		},
		{
			name:  "QuotedColumnName",
			table: tasks,
			req:   req{method: "PATCH", query: `we"ird=eq.x&select=%22we%22%22ird%22`, header: map[string]string{"Prefer": "return=representation"}, body: `{"we\"ird":"y"}`},
			want: &rest.Statement{
				SQL:     `WITH _w AS (UPDATE "t_0d9e8f7a6b5c4d3e8f21a0b1c2d3e4f5"."tasks" AS _t SET "we""ird" = _x."we""ird" FROM json_populate_record(NULL::"t_0d9e8f7a6b5c4d3e8f21a0b1c2d3e4f5"."tasks", $1::text::json) AS _x WHERE _t."we""ird" = $2::text RETURNING _t."we""ird") SELECT ` + writeBody + `, count(*), NULL::bigint FROM _w`,
				Args:    []any{`{"we\"ird":"y"}`, "x"},
				Returns: true,
			},
		},
		{
			name: "LenientPreferIgnoresUnknown",
			req:  req{method: "GET", query: "select=id", header: map[string]string{"Prefer": "timezone=UTC, count=bogus, return=minimal"}},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t LIMIT $1::bigint) AS _r`,
				Args:    []any{int64(1000)},
				Returns: true,
			},
		},
		{
			name: "BrowserAccept",
			req:  req{method: "GET", query: "select=id", header: map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}},
			want: &rest.Statement{
				SQL:     `SELECT ` + readBody + `, count(*), NULL::bigint FROM (SELECT _t."id" FROM "app"."projects" AS _t LIMIT $1::bigint) AS _r`,
				Args:    []any{int64(1000)},
				Returns: true,
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tbl := tt.table
			if tbl == nil {
				tbl = projects
			}
			got, err := tt.builder.Build(tbl, tt.req.request(t))
			if err != nil {
				t.Fatalf("Build(%+v) = %v, want nil error", tt.req, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Build(%+v) mismatch (-want +got):\n%s", tt.req, diff)
			}
			checkStatement(t, tbl, got)
		})
	}
}

func TestBuildErrors(t *testing.T) {
	big := strings.Repeat("x", 100000)
	tooMany := "(" + strings.Repeat("a,", 10000) + "a)"
	deep := strings.Repeat("or(", 20) + "name.eq.a" + strings.Repeat(")", 20)
	for _, tt := range []struct {
		name     string
		table    *rest.Table
		builder  rest.Builder
		req      req
		tenant   *string // overrides the request's TenantID
		want     *fault.Error
		wantText string // a part of the message, when it matters
	}{
		{name: "UnknownColumnFilter", req: req{method: "GET", query: "nope=eq.1"}, want: rest.ErrUnknownColumn, wantText: `"nope"`},
		{name: "UnknownColumnSelect", req: req{method: "GET", query: "select=id,nope"}, want: rest.ErrUnknownColumn},
		{name: "CaseVariantColumn", req: req{method: "GET", query: "NAME=eq.a"}, want: rest.ErrUnknownColumn},
		{name: "SystemColumnFilter", req: req{method: "GET", query: "ctid=eq.(0,1)"}, want: rest.ErrUnknownColumn, wantText: "system column"},
		{name: "SystemColumnSelect", req: req{method: "GET", query: "select=xmin"}, want: rest.ErrUnknownColumn},
		{name: "SystemColumnSelectAliased", req: req{method: "GET", query: "select=x:tableoid::text"}, want: rest.ErrUnknownColumn},
		{name: "SystemColumnOrder", req: req{method: "GET", query: "order=xmax.desc"}, want: rest.ErrUnknownColumn},
		{name: "SystemColumnInTree", req: req{method: "GET", query: "or=(cmin.eq.1,name.eq.a)"}, want: rest.ErrUnknownColumn},
		{name: "SystemColumnOnConflict", req: req{method: "POST", query: "on_conflict=oid", body: `{"name":"a"}`}, want: rest.ErrUnknownColumn},
		{name: "SystemColumnBody", req: req{method: "POST", body: `{"name":"a","cmax":1}`}, want: rest.ErrUnknownColumn},
		{name: "UnknownColumnsParam", req: req{method: "POST", query: `columns="name","nope"`, body: `{"name":"a"}`}, want: rest.ErrUnknownColumn},
		{name: "UnknownOperator", req: req{method: "GET", query: "name=foo.1"}, want: rest.ErrInvalidFilter, wantText: `"name"`},
		{name: "MissingOperator", req: req{method: "GET", query: "name=a"}, want: rest.ErrInvalidFilter},
		{name: "MissingValue", req: req{method: "GET", query: "name=eq"}, want: rest.ErrInvalidFilter},
		{name: "DoubleNot", req: req{method: "GET", query: "name=not.not.eq.a"}, want: rest.ErrInvalidFilter},
		{name: "UnsupportedOperator", req: req{method: "GET", query: "name=fts(english).cat"}, want: rest.ErrUnsupported},
		{name: "UnsupportedMatch", req: req{method: "GET", query: "name=match.^a"}, want: rest.ErrUnsupported},
		{name: "BadUUID", req: req{method: "GET", query: "id=eq.not-a-uuid"}, want: rest.ErrInvalidFilter, wantText: "uuid"},
		{name: "BadUUIDInList", req: req{method: "GET", query: "id=in.(" + rowID + ",x)"}, want: rest.ErrInvalidFilter},
		{name: "BadBoolean", table: tasks, req: req{method: "GET", query: "done=eq.maybe"}, want: rest.ErrInvalidFilter},
		{name: "BadInteger", table: tasks, req: req{method: "GET", query: "n=gt.1.5"}, want: rest.ErrInvalidFilter},
		{name: "IntegerOutOfRange", table: tasks, req: req{method: "GET", query: "n=eq.99999999999"}, want: rest.ErrInvalidFilter},
		{name: "BadIs", req: req{method: "GET", query: "description=is.nothing"}, want: rest.ErrInvalidFilter},
		{name: "IsTrueOnText", req: req{method: "GET", query: "description=is.true"}, want: rest.ErrInvalidFilter},
		{name: "InWithoutParens", req: req{method: "GET", query: "name=in.a,b"}, want: rest.ErrInvalidFilter},
		{name: "InUnbalanced", req: req{method: "GET", query: "name=in.(a,(b)"}, want: rest.ErrInvalidFilter},
		{name: "InBadQuote", req: req{method: "GET", query: `name=in.("a"b)`}, want: rest.ErrInvalidFilter},
		{name: "BadQuantifier", req: req{method: "GET", query: "name=like(some).{a}"}, want: rest.ErrInvalidFilter},
		{name: "QuantifierOnIn", req: req{method: "GET", query: "name=in(any).{a}"}, want: rest.ErrInvalidFilter},
		{name: "QuantifierWithoutBraces", req: req{method: "GET", query: "name=eq(any).(a)"}, want: rest.ErrInvalidFilter},
		{name: "TooManyValues", req: req{method: "GET", query: "name=in." + url.QueryEscape(tooMany)}, want: rest.ErrInvalidFilter},
		{name: "OrWithoutParens", req: req{method: "GET", query: "or=name.eq.a"}, want: rest.ErrInvalidFilter, wantText: `"or"`},
		{name: "OrUnbalanced", req: req{method: "GET", query: "or=(name.eq.a"}, want: rest.ErrInvalidFilter},
		{name: "OrItemWithoutOperator", req: req{method: "GET", query: "or=(name)"}, want: rest.ErrInvalidFilter},
		{name: "OrEmpty", req: req{method: "GET", query: "or=()"}, want: rest.ErrInvalidFilter},
		{name: "OrBadQuotedValue", req: req{method: "GET", query: `or=(name.eq."a"b)`}, want: rest.ErrInvalidFilter},
		{name: "OrTooDeep", req: req{method: "GET", query: "or=(" + url.QueryEscape(deep) + ")"}, want: rest.ErrInvalidFilter},
		{name: "CastRegclass", req: req{method: "GET", query: "select=id::regclass"}, want: rest.ErrInvalidSelect, wantText: "not allowed"},
		{name: "CastRegrole", req: req{method: "GET", query: "select=name::regrole"}, want: rest.ErrInvalidSelect},
		{name: "CastOffList", req: req{method: "GET", query: "select=name::varchar"}, want: rest.ErrInvalidSelect},
		{name: "CastEmpty", req: req{method: "GET", query: "select=name::"}, want: rest.ErrInvalidSelect},
		{name: "Embedding", req: req{method: "GET", query: "select=*,tasks(*)"}, want: rest.ErrUnsupported, wantText: "embedding is not supported"},
		{name: "Spread", req: req{method: "GET", query: "select=...tasks(title)"}, want: rest.ErrUnsupported},
		{name: "Aggregate", req: req{method: "GET", query: "select=count()"}, want: rest.ErrUnsupported},
		{name: "EmbeddedModifier", req: req{method: "GET", query: "tasks.order=title"}, want: rest.ErrUnsupported, wantText: "embedding is not supported"},
		{name: "EmbeddedFilter", req: req{method: "GET", query: "tasks.title=eq.a"}, want: rest.ErrUnsupported},
		{name: "JSONPathSelect", table: tasks, req: req{method: "GET", query: "select=meta->a"}, want: rest.ErrUnsupported},
		{name: "JSONPathFilter", table: tasks, req: req{method: "GET", query: "meta->>a=eq.1"}, want: rest.ErrUnsupported},
		{name: "SelectEmpty", req: req{method: "GET", query: "select="}, want: rest.ErrInvalidSelect},
		{name: "SelectEmptyItem", req: req{method: "GET", query: "select=id,,name"}, want: rest.ErrInvalidSelect},
		{name: "SelectDuplicateKey", req: req{method: "GET", query: "select=id,id"}, want: rest.ErrInvalidSelect},
		{name: "SelectDuplicateAlias", req: req{method: "GET", query: "select=a:id,a:name"}, want: rest.ErrInvalidSelect},
		{name: "SelectEmptyAlias", req: req{method: "GET", query: "select=:id"}, want: rest.ErrInvalidSelect},
		{name: "SelectUnbalanced", req: req{method: "GET", query: `select="id`}, want: rest.ErrInvalidSelect},
		{name: "OrderBadDirection", req: req{method: "GET", query: "order=name.up"}, want: rest.ErrInvalidOrder, wantText: `"name.up"`},
		{name: "OrderTrailingDot", req: req{method: "GET", query: "order=name."}, want: rest.ErrInvalidOrder},
		{name: "OrderTooManyWords", req: req{method: "GET", query: "order=name.asc.nullsfirst.x"}, want: rest.ErrInvalidOrder},
		{name: "OrderUnknownColumn", req: req{method: "GET", query: "order=nope.asc"}, want: rest.ErrUnknownColumn},
		{name: "OrderEmbedded", req: req{method: "GET", query: "order=tasks(title).asc"}, want: rest.ErrUnsupported},
		{name: "LimitNegative", req: req{method: "GET", query: "limit=-1"}, want: rest.ErrInvalidLimit},
		{name: "LimitNotNumber", req: req{method: "GET", query: "limit=ten"}, want: rest.ErrInvalidLimit},
		{name: "LimitHuge", req: req{method: "GET", query: "limit=99999999999999999999"}, want: rest.ErrInvalidLimit},
		{name: "OffsetExponent", req: req{method: "GET", query: "offset=1e3"}, want: rest.ErrInvalidOffset},
		{name: "RepeatedLimit", req: req{method: "GET", query: "limit=1&limit=2"}, want: rest.ErrInvalidParameter},
		{name: "RepeatedSelect", req: req{method: "GET", query: "select=id&select=name"}, want: rest.ErrInvalidParameter},
		{name: "OnConflictOnPATCH", req: req{method: "PATCH", query: "on_conflict=id&id=eq." + rowID, body: `{"name":"a"}`}, want: rest.ErrInvalidParameter},
		{name: "ColumnsOnGET", req: req{method: "GET", query: "columns=id"}, want: rest.ErrInvalidParameter},
		{name: "ColumnsTwice", req: req{method: "POST", query: "columns=name,name", body: `{"name":"a"}`}, want: rest.ErrInvalidParameter},
		{name: "UpsertWithoutKey", table: tasks, req: req{method: "POST", header: map[string]string{"Prefer": "resolution=merge-duplicates"}, body: `{"title":"a"}`}, want: rest.ErrInvalidParameter},
		{name: "PATCHWithoutFilter", req: req{method: "PATCH", query: "select=id", body: `{"name":"a"}`}, want: rest.ErrFilterRequired},
		{name: "DELETEWithoutFilter", req: req{method: "DELETE"}, want: rest.ErrFilterRequired},
		{name: "DELETEWithOnlyOrder", req: req{method: "DELETE", query: "limit=1"}, want: rest.ErrUnsupported},
		{name: "FilterOnPOST", req: req{method: "POST", query: "name=eq.a", body: `{"name":"a"}`}, want: rest.ErrUnsupported},
		{name: "OrderOnPATCH", req: req{method: "PATCH", query: "order=name&name=eq.a", body: `{"name":"a"}`}, want: rest.ErrUnsupported},
		{name: "MethodPUT", req: req{method: "PUT", query: "id=eq." + rowID}, want: rest.ErrUnsupported},
		{name: "AcceptCSV", req: req{method: "GET", header: map[string]string{"Accept": "text/csv"}}, want: rest.ErrUnsupported},
		{name: "AcceptPlan", req: req{method: "GET", header: map[string]string{"Accept": `application/vnd.pgrst.plan+json; for="application/json"`}}, want: rest.ErrUnsupported, wantText: "plans"},
		{name: "StrictPrefer", req: req{method: "GET", header: map[string]string{"Prefer": "handling=strict, count=bogus"}}, want: rest.ErrInvalidPrefer},
		{name: "MissingDefaultMixedKeys", req: req{method: "POST", header: map[string]string{"Prefer": "missing=default"}, body: `[{"name":"a"},{"name":"b","description":"c"}]`}, want: rest.ErrUnsupported},
		{name: "BodyMissing", req: req{method: "POST"}, want: rest.ErrInvalidBody},
		{name: "BodyNotJSON", req: req{method: "POST", body: `{name: "a"}`}, want: rest.ErrInvalidBody},
		{name: "BodyScalar", req: req{method: "POST", body: `"a"`}, want: rest.ErrInvalidBody},
		{name: "BodyArrayOfScalars", req: req{method: "POST", body: `[{"name":"a"}, 1]`}, want: rest.ErrInvalidBody},
		{name: "BodyNestedArray", req: req{method: "POST", body: `[[{"name":"a"}]]`}, want: rest.ErrInvalidBody},
		{name: "BodyTrailingData", req: req{method: "POST", body: `{"name":"a"} {"name":"b"}`}, want: rest.ErrInvalidBody},
		{name: "BodyTruncated", req: req{method: "POST", body: `[{"name":"a"}`}, want: rest.ErrInvalidBody},
		{name: "BodyInvalidUTF8", req: req{method: "POST", body: "{\"name\":\"\xff\"}"}, want: rest.ErrInvalidBody},
		{name: "BodyUnknownKey", req: req{method: "POST", body: `{"name":"a","owner":"b"}`}, want: rest.ErrUnknownColumn, wantText: `"owner"`},
		{name: "BodyCaseVariantKey", req: req{method: "POST", body: `{"name":"a","Tenant_ID":"` + tenantB + `"}`}, want: rest.ErrUnknownColumn},
		{name: "BodyDuplicateKey", req: req{method: "POST", body: `{"name":"a","name":"b"}`}, want: rest.ErrInvalidBody, wantText: "twice"},
		{name: "BodyDuplicateEscapedKey", req: req{method: "POST", body: `{"tenant_id":"` + tenantA + `","tenant\u005fid":"` + tenantB + `"}`}, want: rest.ErrInvalidBody},
		{name: "BodyNoKeysInArray", req: req{method: "POST", body: `[{},{}]`}, want: rest.ErrInvalidBody},
		{name: "PATCHArray", req: req{method: "PATCH", query: "name=eq.a", body: `[{"name":"b"}]`}, want: rest.ErrInvalidBody},
		{name: "PATCHEmptyObject", req: req{method: "PATCH", query: "name=eq.a", body: `{}`}, want: rest.ErrInvalidBody},
		{name: "TooManyRows", builder: rest.Builder{MaxRows: 2}, req: req{method: "POST", body: `[{"name":"a"},{"name":"b"},{"name":"c"}]`}, want: rest.ErrTooManyRows},
		{name: "TenantMismatchPOST", req: req{method: "POST", body: `{"tenant_id":"` + tenantB + `","name":"a"}`}, want: rest.ErrTenantMismatch},
		{name: "TenantMismatchSecondRow", req: req{method: "POST", body: `[{"tenant_id":"` + tenantA + `"},{"tenant_id":"` + tenantB + `"}]`}, want: rest.ErrTenantMismatch},
		{name: "TenantMismatchPATCH", req: req{method: "PATCH", query: "id=eq." + rowID, body: `{"tenant_id":"` + tenantB + `"}`}, want: rest.ErrTenantMismatch},
		{name: "TenantMismatchUpsert", req: req{method: "POST", header: map[string]string{"Prefer": "resolution=merge-duplicates"}, body: `{"tenant_id":"` + tenantB + `","id":"` + rowID + `"}`}, want: rest.ErrTenantMismatch},
		{name: "TenantNull", req: req{method: "POST", body: `{"tenant_id":null}`}, want: rest.ErrTenantMismatch},
		{name: "TenantNumber", req: req{method: "POST", body: `{"tenant_id":1}`}, want: rest.ErrTenantMismatch},
		{name: "TenantObject", req: req{method: "POST", body: `{"tenant_id":{"id":"` + tenantA + `"}}`}, want: rest.ErrTenantMismatch},
		{name: "TenantNotAUUID", req: req{method: "POST", body: `{"tenant_id":"` + tenantA + `x"}`}, want: rest.ErrTenantMismatch},
		{name: "TenantWithoutCallerTenant", tenant: new(string), req: req{method: "POST", body: `{"tenant_id":"` + tenantA + `"}`}, want: rest.ErrTenantMismatch},
		{name: "NilTable", table: &rest.Table{}, req: req{method: "GET"}, want: rest.ErrInvalidTable},
		{name: "TableColumnWithNUL", table: &rest.Table{Schema: "app", Name: "x", Columns: []rest.Column{{Name: "a\x00b", Type: "text"}}}, req: req{method: "GET"}, want: rest.ErrInvalidTable},
		{name: "TableSystemColumn", table: &rest.Table{Schema: "app", Name: "x", Columns: []rest.Column{{Name: "ctid", Type: "tid"}}}, req: req{method: "GET"}, want: rest.ErrInvalidTable},
		{name: "TableRepeatedColumn", table: &rest.Table{Schema: "app", Name: "x", Columns: []rest.Column{{Name: "a"}, {Name: "a"}}}, req: req{method: "GET"}, want: rest.ErrInvalidTable},
		{name: "TableLongName", table: &rest.Table{Schema: "app", Name: strings.Repeat("x", 64), Columns: []rest.Column{{Name: "a"}}}, req: req{method: "GET"}, want: rest.ErrInvalidTable},
		{name: "TableTenantColumnMissing", table: &rest.Table{Schema: "app", Name: "x", TenantColumn: "tenant_id", Columns: []rest.Column{{Name: "a"}}}, req: req{method: "GET"}, want: rest.ErrInvalidTable},
		{name: "HugeValueNotEchoed", req: req{method: "GET", query: "id=eq." + big}, want: rest.ErrInvalidFilter},
		{name: "HugeNameNotEchoed", req: req{method: "GET", query: big + "=eq.1"}, want: rest.ErrUnknownColumn},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tbl := tt.table
			if tbl == nil {
				tbl = projects
			}
			r := tt.req.request(t)
			if tt.tenant != nil {
				r.TenantID = *tt.tenant
			}
			st, err := tt.builder.Build(tbl, r)
			if err == nil {
				t.Fatalf("Build(%.200q) = %q, want error %s", tt.req.query, st.SQL, tt.want.Code)
			}
			var fe *fault.Error
			if !errors.As(err, &fe) {
				t.Fatalf("Build(%.200q) = %v (%T), want a *fault.Error", tt.req.query, err, err)
			}
			if fe.Kind != tt.want.Kind || fe.Code != tt.want.Code {
				t.Errorf("Build(%.200q) = %v/%s (%q), want %v/%s", tt.req.query, fe.Kind, fe.Code, fe.Message, tt.want.Kind, tt.want.Code)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(%v, %s) = false, want true", err, tt.want.Code)
			}
			if fe.Message == "" || len(fe.Message) > 400 {
				t.Errorf("Build(%.200q) message has %d bytes, want 1 to 400: %.500q", tt.req.query, len(fe.Message), fe.Message)
			}
			if !strings.Contains(fe.Message, tt.wantText) {
				t.Errorf("Build(%.200q) message = %q, want it to contain %q", tt.req.query, fe.Message, tt.wantText)
			}
		})
	}
}

// TestProfileHeadersIgnored checks that Accept-Profile and Content-Profile
// cannot move a request to another schema: the schema is routed upstream.
func TestProfileHeadersIgnored(t *testing.T) {
	for _, tt := range []struct {
		name string
		req  req
	}{
		{name: "GET", req: req{method: "GET", query: "select=id&name=eq.a"}},
		{name: "POST", req: req{method: "POST", body: `{"name":"a"}`}},
		{name: "PATCH", req: req{method: "PATCH", query: "name=eq.a", body: `{"name":"b"}`}},
		{name: "DELETE", req: req{method: "DELETE", query: "name=eq.a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, err := rest.Build(projects, tt.req.request(t))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			r := tt.req
			r.header = map[string]string{"Accept-Profile": "t_" + strings.Repeat("0", 32), "Content-Profile": "pg_catalog"}
			got, err := rest.Build(projects, r.request(t))
			if err != nil {
				t.Fatalf("Build with profile headers: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("profile headers changed the statement (-want +got):\n%s", diff)
			}
			if strings.Contains(got.SQL, "pg_catalog") || strings.Contains(got.SQL, "t_000") {
				t.Errorf("SQL = %q, names the profile's schema", got.SQL)
			}
		})
	}
}

// TestNoValueInSQL checks, for hostile values in every position, that the
// value reaches Args and never the SQL text.
func TestNoValueInSQL(t *testing.T) {
	const evil = `x'); DROP TABLE app.projects; --"`
	esc := url.QueryEscape(evil)
	for _, tt := range []struct {
		name string
		req  req
	}{
		{name: "Eq", req: req{method: "GET", query: "name=eq." + esc}},
		{name: "Like", req: req{method: "GET", query: "name=ilike." + esc}},
		{name: "In", req: req{method: "GET", query: "name=in." + url.QueryEscape(`("`+strings.ReplaceAll(evil, `"`, `\"`)+`")`)}},
		{name: "Or", req: req{method: "GET", query: "or=" + url.QueryEscape(`(name.eq."`+strings.ReplaceAll(evil, `"`, `\"`)+`")`)}},
		{name: "Alias", req: req{method: "GET", query: "select=" + url.QueryEscape(`x' DROP TABLE app.projects --:name`)}},
		{name: "Body", req: req{method: "POST", body: `{"name":"` + strings.ReplaceAll(evil, `"`, `\"`) + `"}`}},
		{name: "PATCHBody", req: req{method: "PATCH", query: "name=eq.a", body: `{"description":"` + strings.ReplaceAll(evil, `"`, `\"`) + `"}`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := rest.Build(projects, tt.req.request(t))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if strings.Contains(st.SQL, "DROP") || strings.Contains(st.SQL, "x'") {
				t.Errorf("SQL = %q, contains the value", st.SQL)
			}
			found := false
			for _, a := range st.Args {
				if s, ok := a.(string); ok && strings.Contains(s, "DROP TABLE") {
					found = true
				}
			}
			if !found {
				t.Errorf("Args = %q, want the value among them", st.Args)
			}
			checkStatement(t, projects, st)
		})
	}
}

// TestDefaultBuilder checks that Build uses the documented defaults.
func TestDefaultBuilder(t *testing.T) {
	rows := "[" + strings.Repeat(`{"name":"a"},`, rest.DefaultMaxRows) + `{"name":"a"}]`
	_, err := rest.Build(projects, req{method: "POST", body: rows}.request(t))
	if !errors.Is(err, rest.ErrTooManyRows) {
		t.Errorf("Build(%d rows) = %v, want %v", rest.DefaultMaxRows+1, err, rest.ErrTooManyRows)
	}
	if got := fault.KindOf(err); got != fault.TooLarge {
		t.Errorf("KindOf(Build(%d rows)) = %v, want %v", rest.DefaultMaxRows+1, got, fault.TooLarge)
	}
	st, err := rest.Build(projects, req{method: "GET", query: "limit=1000000"}.request(t))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if got, want := st.Args[len(st.Args)-1], int64(rest.DefaultMaxLimit); got != want {
		t.Errorf("Build(limit=1000000) limit = %v, want %v", got, want)
	}
}
