package rest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/rest"
)

// fuzzMethods are the methods FuzzBuild picks from, PUT included to see it
// refused.
var fuzzMethods = []string{"GET", "HEAD", "POST", "PATCH", "DELETE", "PUT"}

func FuzzBuild(f *testing.F) {
	for _, r := range postgrestJS {
		f.Add(uint8(slices.Index(fuzzMethods, r.method)), r.query, r.header["Prefer"], r.header["Accept"], []byte(r.body))
	}
	f.Add(uint8(0), `select=a:id,b:name::text&or=(name.eq."a,b",and(id.is.null,name.not.in.(x,"y\"z")))&order=name.desc.nullsfirst&limit=3&offset=1`, "count=exact", "", []byte(nil))
	f.Add(uint8(0), `select=*&done=is.true&status=in.(a,b)&tags=eq.{a,b}&n=gte.5&we"ird=like.*x*`, "count=estimated", "application/vnd.pgrst.object+json;nulls=stripped", []byte(nil))
	f.Add(uint8(2), "on_conflict=id&select=id", "resolution=merge-duplicates,return=representation,missing=default", "", []byte(`[{"id":"`+rowID+`","tenant_id":"`+tenantA+`"},{"id":"`+rowID+`","tenant_id":"`+tenantA+`"}]`))
	f.Add(uint8(2), "", "", "", []byte(`{"tenant_id":"`+tenantB+`"}`))
	f.Add(uint8(3), "id=eq."+rowID, "return=representation", "", []byte(`{"name":"a","na\u006de":"b"}`))
	f.Add(uint8(4), "not.or=(id.eq."+rowID+",title.is.null)", "tx=rollback", "", []byte(nil))
	f.Add(uint8(0), "select=id::regclass&ctid=eq.(0,1)", "count=planned", "application/vnd.pgrst.plan+text", []byte(nil))

	f.Fuzz(func(t *testing.T, m uint8, query, prefer, accept string, body []byte) {
		q, _ := url.ParseQuery(query) // keep whatever pairs parse
		h := http.Header{}
		if prefer != "" {
			h.Set("Prefer", prefer)
		}
		if accept != "" {
			h.Set("Accept", accept)
		}
		r := rest.Request{
			Method:   fuzzMethods[int(m)%len(fuzzMethods)],
			Query:    q,
			Header:   h,
			Body:     body,
			TenantID: tenantA,
		}
		for _, tbl := range []*rest.Table{projects, tasks} {
			st, err := rest.Build(tbl, r)
			if err != nil {
				var fe *fault.Error
				if !errors.As(err, &fe) {
					t.Fatalf("Build = %v (%T), want a *fault.Error", err, err)
				}
				switch fe.Kind {
				case fault.Invalid, fault.TooLarge, fault.Denied:
				default:
					t.Fatalf("Build = %v, kind %v: bad input must be a 4xx kind", err, fe.Kind)
				}
				if fe.Code == "" || fe.Message == "" || len(fe.Message) > 400 {
					t.Fatalf("Build = code %q, message %q: want a code and a short message", fe.Code, fe.Message)
				}
				continue
			}
			checkStatement(t, tbl, st)
			again, err := rest.Build(tbl, r)
			if err != nil || !cmp.Equal(st, again) {
				t.Fatalf("Build is not deterministic: %v\n%s", err, cmp.Diff(st, again))
			}
			checkEqValues(t, tbl, q, st)
			checkBodyArg(t, tbl, r.Method, st)
		}
	})
}

// checkEqValues checks that the value of every top-level col=eq.value
// filter is one of the Args.
func checkEqValues(t *testing.T, tbl *rest.Table, q url.Values, st *rest.Statement) {
	t.Helper()
	for k, vals := range q {
		if !slices.ContainsFunc(tbl.Columns, func(c rest.Column) bool { return c.Name == k }) {
			continue
		}
		for _, v := range vals {
			if val, ok := strings.CutPrefix(v, "eq."); ok && !slices.Contains(st.Args, any(val)) {
				t.Fatalf("filter %s=%s: value %q not in Args %q", k, v, val, st.Args)
			}
		}
	}
}

// checkBodyArg checks that the JSON bound for a write has only exact
// column keys, no key twice, and only the caller's tenant.
func checkBodyArg(t *testing.T, tbl *rest.Table, method string, st *rest.Statement) {
	t.Helper()
	if !strings.Contains(st.SQL, "json_populate_record") {
		return
	}
	raw, _ := st.Args[0].(string)
	var rows []map[string]json.RawMessage
	if method == "PATCH" {
		var row map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &row); err != nil {
			t.Fatalf("PATCH arg %q is not a JSON object: %v", raw, err)
		}
		rows = append(rows, row)
	} else if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		t.Fatalf("POST arg %q is not a JSON array of objects: %v", raw, err)
	}
	for _, row := range rows {
		for k, v := range row {
			if !slices.ContainsFunc(tbl.Columns, func(c rest.Column) bool { return c.Name == k }) {
				t.Fatalf("body arg %q has key %q, which is not a column", raw, k)
			}
			if k == tbl.TenantColumn {
				var s string
				if err := json.Unmarshal(v, &s); err != nil || !strings.EqualFold(strings.Trim(strings.ReplaceAll(s, "-", ""), "{}"), strings.ReplaceAll(tenantA, "-", "")) {
					t.Fatalf("body arg %q sets %s to %s, not the caller's tenant", raw, k, v)
				}
			}
		}
		// A repeated key would make len(row) smaller than the number of
		// keys written; count them in the text.
		if n := strings.Count(raw, `":`); n < len(row) {
			t.Fatalf("body arg %q: fewer key separators than keys", raw)
		}
	}
}

// sqlWords are the only bare words the SQL may contain.
var sqlWords = map[string]bool{}

func init() {
	for w := range strings.FieldsSeq(`
		SELECT FROM WHERE AND OR NOT AS ORDER BY ASC DESC NULLS FIRST LAST LIMIT OFFSET
		WITH INSERT INTO UPDATE SET DELETE RETURNING ON CONFLICT DO NOTHING EXCLUDED DEFAULT VALUES
		IS NULL TRUE FALSE UNKNOWN LIKE ILIKE IN ANY ALL DISTINCT ARRAY
		coalesce json_agg json_build_object json_strip_nulls json_populate_recordset json_populate_record count
		text bigint json jsonb uuid boolean smallint integer numeric real double precision date time
		timestamp with without zone interval bytea inet cidr macaddr character varying bpchar
		_t _r _w _x`) {
		sqlWords[w] = true
	}
}

var outputAlias = regexp.MustCompile(`^_c[0-9]+$`)

// checkStatement checks the SQL of st against a conservative grammar: quoted
// identifiers only from tbl, bare words only from sqlWords, string literals
// only '[]', numbers only 0 and 1, no semicolons or comments, and
// placeholders $1…$n, each used, with n == len(Args), text ones bound to
// strings and bigint ones to int64. A value from the request that reached
// the SQL text would break one of these.
func checkStatement(t testing.TB, tbl *rest.Table, st *rest.Statement) {
	t.Helper()
	idents := map[string]bool{tbl.Schema: true, tbl.Name: true}
	for _, c := range tbl.Columns {
		idents[c.Name] = true
	}
	s := st.SQL
	used := map[int]string{}
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == ' ':
			i++
		case ch == '"':
			var name strings.Builder
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '"' {
					if j+1 < len(s) && s[j+1] == '"' {
						name.WriteByte('"')
						j++
						continue
					}
					break
				}
				name.WriteByte(s[j])
			}
			if j == len(s) || !idents[name.String()] {
				t.Fatalf("SQL has quoted identifier %q that is not from the table:\n%s", name.String(), s)
			}
			i = j + 1
		case ch == '\'':
			if !strings.HasPrefix(s[i:], "'[]'") {
				t.Fatalf("SQL has a string literal at %d:\n%s", i, s)
			}
			i += 4
		case ch == '$':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(s[i+1 : j])
			if err != nil || n < 1 || n > len(st.Args) {
				t.Fatalf("SQL has placeholder %q with %d args:\n%s", s[i:j], len(st.Args), s)
			}
			typ := ""
			switch {
			case strings.HasPrefix(s[j:], "::text"):
				typ = "text"
				if _, ok := st.Args[n-1].(string); !ok {
					t.Fatalf("$%d::text is bound to %T, want string", n, st.Args[n-1])
				}
			case strings.HasPrefix(s[j:], "::bigint"):
				typ = "bigint"
				if _, ok := st.Args[n-1].(int64); !ok {
					t.Fatalf("$%d::bigint is bound to %T, want int64", n, st.Args[n-1])
				}
			default:
				t.Fatalf("SQL has placeholder $%d without ::text or ::bigint:\n%s", n, s)
			}
			if prev, ok := used[n]; ok && prev != typ {
				t.Fatalf("$%d is used as %s and %s", n, prev, typ)
			}
			used[n] = typ
			i = j
		case ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if w := s[i:j]; !sqlWords[w] && !outputAlias.MatchString(w) {
				t.Fatalf("SQL has the word %q, which is not on the list:\n%s", w, s)
			}
			i = j
		case ch >= '0' && ch <= '9':
			if ch > '1' || i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				t.Fatalf("SQL has a number at %d:\n%s", i, s)
			}
			i++
		case strings.IndexByte("(),.*=<>:[]", ch) >= 0:
			i++
		case ch == '-' && i+1 < len(s) && s[i+1] == '>':
			i += 2
		default:
			t.Fatalf("SQL has the byte %q at %d:\n%s", ch, i, s)
		}
	}
	if len(used) != len(st.Args) {
		t.Fatalf("SQL uses %d placeholders for %d args:\n%s", len(used), len(st.Args), s)
	}
	if strings.Contains(s, "LIMIT") {
		i := strings.LastIndex(s, "LIMIT $") + len("LIMIT $")
		j := i + strings.IndexByte(s[i:], ':')
		n, _ := strconv.Atoi(s[i:j])
		if lim, _ := st.Args[n-1].(int64); lim < 0 || lim > rest.DefaultMaxLimit {
			t.Fatalf("LIMIT %d, want 0 to %d", lim, rest.DefaultMaxLimit)
		}
	}
}
