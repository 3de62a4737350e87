package bulkheadtest

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// Check names a kind of attempt that [Env.Isolated] makes.
type Check string

// The checks, in the order Isolated starts them.
const (
	// CheckRead reads through the data API: the list, by the victim's ids
	// (eq, in, or), by its tenant_id, by its distinctive values, through
	// every reference column, with schema headers, as admin and member.
	CheckRead Check = "read"
	// CheckSingle asks for one object by the victim's id: the answer must
	// be the same as for a random id.
	CheckSingle Check = "single object"
	// CheckControlPlane reads, lists and changes the victim tenant and its
	// users through /v1/tenants: the answers must be those for a tenant
	// that does not exist.
	CheckControlPlane Check = "control plane"
	// CheckToken sends forged tokens naming the victim: alg none, a
	// stripped signature, an edited tenant claim, a wrong key with the
	// right kid, and tokens signed with the real key that are expired,
	// for another audience or from another issuer; and platform-admin
	// tokens, self-made or signed with the tenant-token key. Each must get
	// 401.
	CheckToken Check = "forged token"
	// CheckReference points rows of the attacker's at the victim's rows
	// through every column ending in _id: refused, and refused the same
	// way as a random id.
	CheckReference Check = "reference"
	// CheckUnique inserts, with tx=rollback, rows of the attacker's that
	// carry the victim's distinctive text values: each must be answered
	// like the same row with a random value of the same shape, or a unique
	// key across tenants tells which values the victim uses.
	CheckUnique Check = "unique key"
	// CheckInsert writes rows with the victim's tenant_id (in several
	// spellings) and moves the attacker's rows to it.
	CheckInsert Check = "insert"
	// CheckWrite updates, deletes and upserts the victim's rows by id, by
	// in and by value, then compares a snapshot of the victim's rows taken
	// before the suite with one taken after.
	CheckWrite Check = "write"
	// CheckSQL runs SQL on [Env.FunctionDB] with the attacker's context
	// ([Tenant.Context]) against the victim's schema: reads, updates,
	// deletes, inserts and upserts, forged contexts set with set_config,
	// SET ROLE to privileged roles, and rows of the attacker's pointed at
	// the victim's or moved to it. Every attempt is rolled back.
	CheckSQL Check = "sql"
)

// Leak is one way an attacker reached a victim's data or tenant.
type Leak struct {
	Check   Check
	Attempt string // what the attacker did, such as "GET /rest/v1/projects?id=eq.…"
	Found   string // what came back, and why that is a leak
}

func (l Leak) String() string { return string(l.Check) + ": " + l.Attempt + ": " + l.Found }

// AssertIsolated runs [Env.Isolated] and reports every leak with
// tb.Errorf. It returns the leaks too.
func (e *Env) AssertIsolated(tb testing.TB, attacker, victim *Tenant) []Leak {
	tb.Helper()
	leaks := e.Isolated(tb, attacker, victim)
	for _, l := range leaks {
		tb.Errorf("bulkheadtest: tenant %s reached tenant %s: %s", attacker.Slug, victim.Slug, l)
	}
	return leaks
}

// Isolated runs the negative suite: attacker tries every path bulkhead
// offers against victim's rows, and Isolated returns what got through. It
// does not fail tb for a leak (see [Env.AssertIsolated]); it fails it only
// when it cannot run, for example when victim has no rows.
//
// Seed the victim first (with [Tenant.Insert]): Isolated finds its rows
// by listing every tenant table as the victim, and an empty victim proves
// nothing. Seeding the attacker too, with rows in the same tables, lets it
// also try to re-point and move rows of its own over HTTP (through SQL it
// makes such rows itself). The [Check] constants list what it tries.
//
// While isolation holds, Isolated changes nothing: the attacker's attempts
// fail or reach no row, its upserts and the unique-key check's inserts ask
// for tx=rollback, and its SQL is rolled back. Its other writes are real,
// though, as an attacker's would be: when isolation is broken, the
// victim's rows may be changed or gone afterwards, the attacker may have
// new rows, and the victim may even be offboarded; the leaks say so. Do
// not use either tenant from other goroutines while it runs.
//
// Isolated looks at the first 1000 rows of each table, the data API's
// limit, and tries rows one by one for the first few.
func (e *Env) Isolated(tb testing.TB, attacker, victim *Tenant) []Leak {
	tb.Helper()
	switch {
	case attacker == nil || victim == nil:
		tb.Fatalf("bulkheadtest: Isolated needs two tenants")
	case attacker.env != e || victim.env != e:
		tb.Fatalf("bulkheadtest: Isolated: the tenants were not made by this Env")
	case attacker.ID == victim.ID:
		tb.Fatalf("bulkheadtest: Isolated: %s cannot attack itself", attacker.Slug)
	}
	s := newSuite(tb, e, attacker, victim)
	s.reads()
	s.single()
	s.controlPlaneReads()
	s.forgedTokens()
	s.references()
	s.uniques()
	s.inserts()
	s.writes()
	s.sql()
	s.compareSnapshot()
	// Last, because if isolation is broken here the victim is gone.
	s.controlPlaneWrites()
	for _, n := range s.notes {
		tb.Logf("bulkheadtest: %s → %s: %s", attacker.Slug, victim.Slug, n)
	}
	tb.Logf("bulkheadtest: %s → %s: %d attempts, %d leaks", attacker.Slug, victim.Slug, s.attempts, len(s.leaks))
	return s.leaks
}

// perRow bounds the victim rows tried one by one, per table.
const perRow = 3

type table struct {
	name string
	cols []postgres.ColumnInfo
}

// refs are the reference columns: uuid columns whose names end in _id,
// other than tenant_id.
func (t table) refs() []string {
	var out []string
	for _, c := range t.cols {
		if strings.HasSuffix(c.Name, "_id") && c.Name != "tenant_id" && c.Type == "uuid" {
			out = append(out, c.Name)
		}
	}
	return out
}

func (t table) isRef(col string) bool { return slices.Contains(t.refs(), col) }

type suite struct {
	tb               testing.TB
	ctx              context.Context
	env              *Env
	attacker, victim *Tenant
	tables           []table // every tenant table, in dependency order

	victimRows map[string][]map[string]any
	ownRows    map[string][]map[string]any
	ownCount   map[string]int64
	victimIDs  []string // every victim row's id, across tables
	secrets    []string // text only the victim's data holds
	before     map[string][]map[string]any
	victimSub  string // the victim admin's user id

	leaks    []Leak
	attempts int
	notes    []string
}

func newSuite(tb testing.TB, e *Env, attacker, victim *Tenant) *suite {
	tb.Helper()
	s := &suite{tb: tb, ctx: tb.Context(), env: e, attacker: attacker, victim: victim,
		victimRows: map[string][]map[string]any{}, ownRows: map[string][]map[string]any{}, ownCount: map[string]int64{}}
	var baseline strings.Builder
	for _, name := range postgres.TenantTableNames {
		cols, err := e.srv.DB.Postgres().DescribeTenantTable(s.ctx, name)
		if err != nil {
			tb.Fatalf("bulkheadtest: describe %s: %v", name, err)
		}
		t := table{name: name, cols: cols}
		s.tables = append(s.tables, t)
		for _, c := range cols {
			baseline.WriteString(c.Name + "\n")
		}
		// When isolation is broken the victim lists others' rows too: keep
		// its own.
		s.victimRows[name] = rowsOf(victim.Rows(tb, name), victim.ID)
		for _, row := range s.victimRows[name] {
			if id, ok := row["id"].(string); ok {
				s.victimIDs = append(s.victimIDs, id)
			}
		}
		r := s.do("GET", "/rest/v1/"+name+"?select=*&order=id", attacker.AdminToken, nil, "Prefer", "count=exact")
		n, ok := total(r)
		rows, err := decodeRows(r.Body)
		if r.Status != http.StatusOK || !ok || err != nil {
			tb.Fatalf("bulkheadtest: list %s as %s's admin: %s", name, attacker.Slug, brief(r))
		}
		s.ownRows[name] = rowsOf(rows, attacker.ID)
		s.ownCount[name] = n
		if int64(len(rows)) == n {
			s.ownCount[name] = int64(len(s.ownRows[name]))
		}
		baseline.Write(r.Body)
	}
	if len(s.victimIDs) == 0 {
		tb.Fatalf("bulkheadtest: Isolated: tenant %s has no rows in any table; insert some first (Tenant.Insert), or there is nothing to leak", victim.Slug)
	}
	for _, p := range []string{"/v1/tenants", "/v1/tenants/" + string(attacker.Slug), "/rest/v1/" + s.tables[0].name + "?id=eq." + uuid.NewString()} {
		baseline.Write(s.do("GET", p, attacker.AdminToken, nil, "Accept", "application/vnd.pgrst.object+json").Body)
	}
	s.refusals(&baseline)
	s.findSecrets(baseline.String())
	p, err := e.srv.Auth.Verify(s.ctx, victim.AdminToken)
	if err != nil {
		tb.Fatalf("bulkheadtest: %s's admin token: %v", victim.Slug, err)
	}
	s.victimSub = p.Subject
	s.before = s.snapshot()
	return s
}

// refusals writes to baseline the server's answers that refuse the
// attacker: a 401 for a garbage token, a 403 of a policy, a 404 for a
// tenant that does not exist and one for a row that does not exist. Text
// of the victim's that these hold anyway ("Forbidden", "Not Found") is
// found in every refusal, and proves nothing.
func (s *suite) refusals(baseline *strings.Builder) {
	t, random := "/rest/v1/"+s.tables[0].name, uuid.NewString()
	for _, r := range []struct{ path, token string }{
		{t, "bulkheadtest-garbage-token"},
		{t + "?tenant_id=eq." + random, s.attacker.AdminToken},
		{"/v1/tenants/" + missingSlug(), s.attacker.AdminToken},
		{"/v1/tenants/" + missingSlug() + "/users", s.attacker.AdminToken},
		{t + "?id=eq." + random, s.attacker.AdminToken},
		{"/rest/v1/bulkheadtest_missing_table", s.attacker.AdminToken},
	} {
		baseline.Write(s.do("GET", r.path, r.token, nil, "Accept", "application/vnd.pgrst.object+json").Body)
		baseline.WriteByte('\n')
	}
}

// findSecrets collects what only the victim's data holds: its row ids and
// its string values of five characters or more that neither the
// attacker's own answers nor the server's refusals (see [suite.refusals])
// contain anyway (timestamps and UUIDs aside).
func (s *suite) findSecrets(baseline string) {
	seen := map[string]bool{}
	add := func(v string) {
		for _, f := range []string{v, jsonText(v)} {
			if !seen[f] && !strings.Contains(baseline, f) {
				seen[f] = true
				s.secrets = append(s.secrets, f)
			}
		}
	}
	for _, id := range s.victimIDs {
		add(id)
	}
	for _, t := range s.tables {
		for _, row := range s.victimRows[t.name] {
			for _, col := range sortedKeys(row) {
				if v, ok := row[col].(string); ok && s.distinctive(t, col, v) {
					add(v)
				}
			}
		}
	}
}

// distinctive reports whether the value of col is worth looking for in
// answers: text, not a key, a timestamp or a UUID, at least five bytes.
func (s *suite) distinctive(t table, col, v string) bool {
	if col == "id" || col == "tenant_id" || t.isRef(col) || len(v) < 5 {
		return false
	}
	if _, err := uuid.Parse(v); err == nil {
		return false
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return false
	}
	return v != string(s.victim.Slug) && v != string(s.attacker.Slug)
}

// jsonText is v as it appears inside a JSON string that PostgreSQL wrote
// (which does not escape <, > and &).
func jsonText(v string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// snapshot is every row the victim sees, as the victim's admin.
func (s *suite) snapshot() map[string][]map[string]any {
	s.tb.Helper()
	out := map[string][]map[string]any{}
	for _, t := range s.tables {
		r := s.env.srv.Do(s.tb, "GET", "/rest/v1/"+t.name+"?select=*&order=id", s.victim.AdminToken, nil)
		rows, err := decodeRows(r.Body)
		if r.Status != http.StatusOK || err != nil {
			return nil
		}
		out[t.name] = rowsOf(rows, s.victim.ID)
	}
	return out
}

// rowsOf returns the rows of rows whose tenant_id is id.
func rowsOf(rows []map[string]any, id tenant.ID) []map[string]any {
	out := []map[string]any{}
	for _, r := range rows {
		if v, ok := r["tenant_id"].(string); !ok || strings.EqualFold(v, string(id)) {
			out = append(out, r)
		}
	}
	return out
}

func (s *suite) compareSnapshot() {
	after := s.snapshot()
	if after == nil {
		s.leak(CheckWrite, "list the victim's rows as the victim after the suite", "the victim can no longer list its own rows")
		return
	}
	if d := cmp.Diff(s.before, after); d != "" {
		s.leak(CheckWrite, "compare the victim's rows before and after the suite", "they changed (-before +after):\n%s", d)
	}
}

func (s *suite) leak(c Check, attempt, format string, args ...any) {
	s.leaks = append(s.leaks, Leak{Check: c, Attempt: attempt, Found: fmt.Sprintf(format, args...)})
}

func (s *suite) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

func (s *suite) do(method, path, token string, body any, header ...string) *apitest.Response {
	s.tb.Helper()
	s.attempts++
	return s.env.srv.Do(s.tb, method, path, token, body, header...)
}

// see records a leak when an answer holds the victim's data: one of its
// secrets (other than those in sent, the text the attacker sent itself),
// or a row carrying its tenant_id.
func (s *suite) see(c Check, attempt string, r *apitest.Response, sent string) bool {
	return s.seeBeside(c, attempt, r, nil, sent)
}

// seeBeside is see for an answer that has a control: the answer to the
// same request for something that does not exist (a random id, a missing
// tenant). A secret the control holds too proves nothing.
func (s *suite) seeBeside(c Check, attempt string, r, control *apitest.Response, sent string) bool {
	body, other := string(r.Body), ""
	if control != nil {
		other = string(control.Body)
	}
	for _, v := range s.secrets {
		if !strings.Contains(sent, v) && strings.Contains(body, v) && !strings.Contains(other, v) {
			s.leak(c, attempt, "the answer holds the victim's %q: %s", v, brief(r))
			return true
		}
	}
	if r.Status < 300 {
		rows, _ := decodeRows(r.Body)
		for _, row := range rows {
			if s.isVictim(row["tenant_id"]) {
				b, _ := json.Marshal(row)
				s.leak(c, attempt, "the answer (%d) holds a row with the victim's tenant_id: %.300s", r.Status, b)
				return true
			}
		}
	}
	return false
}

func (s *suite) isVictim(v any) bool {
	str, ok := v.(string)
	return ok && strings.EqualFold(strings.Trim(str, "{}"), string(s.victim.ID))
}

// wantTotal records a leak when a successful answer's Content-Range
// counts other than want rows.
func (s *suite) wantTotal(c Check, attempt string, r *apitest.Response, want int64) {
	if r.Status >= 300 {
		return
	}
	if n, ok := total(r); ok && n != want {
		s.leak(c, attempt, "Content-Range %q counts %d rows, want %d", r.Header.Get("Content-Range"), n, want)
	}
}

func total(r *apitest.Response) (int64, bool) {
	cr := r.Header.Get("Content-Range")
	i := strings.LastIndexByte(cr, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(cr[i+1:], 10, 64)
	return n, err == nil
}

func brief(r *apitest.Response) string {
	b := string(r.Body)
	if len(b) > 300 {
		b = b[:300] + "…"
	}
	return fmt.Sprintf("%d %s", r.Status, b)
}

// query is one data API query: key=value pairs, escaped when sent.
type query []string

func (q query) encode() string {
	var b strings.Builder
	for i := 0; i+1 < len(q); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(q[i]) + "=" + url.QueryEscape(q[i+1]))
	}
	return b.String()
}

func (q query) String() string {
	var parts []string
	for i := 0; i+1 < len(q); i += 2 {
		parts = append(parts, q[i]+"="+q[i+1])
	}
	return strings.Join(parts, "&")
}

func ids(rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		if id, ok := r["id"].(string); ok {
			out = append(out, id)
		}
	}
	return out
}

func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }

func (s *suite) victimSchema() string {
	if s.victim.Tier == Silo {
		return s.victim.ID.SchemaName()
	}
	return postgres.PoolSchema
}

// values returns up to n distinctive (column, value) pairs of the
// victim's rows of t.
func (s *suite) values(t table, n int) [][2]string {
	var out [][2]string
	for _, row := range s.victimRows[t.name] {
		for _, col := range sortedKeys(row) {
			if v, ok := row[col].(string); ok && s.distinctive(t, col, v) && slices.Contains(s.secrets, v) && len(out) < n {
				out = append(out, [2]string{col, v})
			}
		}
	}
	return out
}

func (s *suite) reads() {
	tok := s.attacker.AdminToken
	for _, t := range s.tables {
		vids := ids(s.victimRows[t.name])
		own := s.ownCount[t.name]
		type q struct {
			query
			want int64 // the total the attacker may see; -1: not counted
		}
		qs := []q{
			{query{"select", "*"}, own},
			{query{"tenant_id", "eq." + string(s.victim.ID)}, 0},
			{query{"tenant_id", "neq." + string(s.attacker.ID)}, 0},
			{query{"tenant_id", "in.(" + string(s.victim.ID) + "," + string(s.attacker.ID) + ")"}, own},
		}
		for _, id := range first(vids, perRow) {
			qs = append(qs, q{query{"id", "eq." + id}, 0}, q{query{"select", "id,tenant_id", "id", "eq." + id}, 0})
		}
		if len(vids) > 0 {
			qs = append(qs, q{query{"id", "in.(" + strings.Join(first(vids, 100), ",") + ")"}, 0})
			var or []string
			for _, id := range first(vids, perRow) {
				or = append(or, "id.eq."+id)
			}
			qs = append(qs, q{query{"or", "(" + strings.Join(or, ",") + ")"}, 0},
				q{query{"id", "neq." + vids[0]}, own})
			if oids := ids(s.ownRows[t.name]); len(oids) > 0 {
				qs = append(qs, q{query{"id", "in.(" + vids[0] + "," + oids[0] + ")"}, 1},
					q{query{"or", "(id.eq." + vids[0] + ",id.eq." + oids[0] + ")"}, 1})
			}
		}
		for _, c := range t.refs() {
			qs = append(qs, q{query{c, "in.(" + strings.Join(first(s.victimIDs, 100), ",") + ")"}, 0})
		}
		for _, cv := range s.values(t, perRow) {
			qs = append(qs, q{query{cv[0], "eq." + cv[1]}, 0}, q{query{cv[0], "like.*" + cv[1] + "*"}, -1})
		}
		for _, x := range qs {
			attempt := "GET /rest/v1/" + t.name + "?" + x.String()
			r := s.do("GET", "/rest/v1/"+t.name+"?"+x.encode(), tok, nil, "Prefer", "count=exact")
			s.see(CheckRead, attempt, r, attempt)
			if x.want >= 0 {
				s.wantTotal(CheckRead, attempt, r, x.want)
			}
		}
		// The schema comes from the token, never from a header.
		attempt := "GET /rest/v1/" + t.name + " with Accept-Profile: " + s.victimSchema()
		r := s.do("GET", "/rest/v1/"+t.name+"?select=*", tok, nil, "Prefer", "count=exact", "Accept-Profile", s.victimSchema())
		s.see(CheckRead, attempt, r, "")
		s.wantTotal(CheckRead, attempt, r, own)
		attempt = "GET /rest/v1/" + t.name + " as the member"
		r = s.do("GET", "/rest/v1/"+t.name+"?select=*", s.attacker.MemberToken, nil, "Prefer", "count=exact")
		s.see(CheckRead, attempt, r, "")
		s.wantTotal(CheckRead, attempt, r, own)
	}
}

func (s *suite) single() {
	for _, t := range s.tables {
		for _, id := range first(ids(s.victimRows[t.name]), perRow) {
			attempt := "GET /rest/v1/" + t.name + "?id=eq." + id + " for one object"
			rb := s.do("GET", "/rest/v1/"+t.name+"?id=eq."+id, s.attacker.AdminToken, nil, "Accept", "application/vnd.pgrst.object+json")
			rr := s.do("GET", "/rest/v1/"+t.name+"?id=eq."+uuid.NewString(), s.attacker.AdminToken, nil, "Accept", "application/vnd.pgrst.object+json")
			if !s.seeBeside(CheckSingle, attempt, rb, rr, id) && (rb.Status != rr.Status || rb.Code() != rr.Code()) {
				s.leak(CheckSingle, attempt, "the victim's id answers %s, a random id %s", brief(rb), brief(rr))
			}
		}
	}
}

// missingSlug returns a tenant id no tenant has.
func missingSlug() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "bulkheadtest-none-" + hex.EncodeToString(b)
}

// sameAsMissing records a leak unless what the attacker gets for the
// victim's tenant is a 404 exactly like the one for a tenant that does
// not exist.
func (s *suite) sameAsMissing(method, path string, body any) {
	missing := missingSlug()
	attempt := method + " " + path
	rb := s.do(method, path, s.attacker.AdminToken, body)
	rn := s.do(method, strings.Replace(path, string(s.victim.Slug), missing, 1), s.attacker.AdminToken, body)
	if s.seeBeside(CheckControlPlane, attempt, rb, rn, "") {
		return
	}
	if rb.Status != http.StatusNotFound || rb.Code() != rn.Code() {
		s.leak(CheckControlPlane, attempt, "answered %s; for a tenant that does not exist: %s", brief(rb), brief(rn))
	}
}

func (s *suite) controlPlaneReads() {
	v := "/v1/tenants/" + string(s.victim.Slug)
	s.sameAsMissing("GET", v, nil)
	s.sameAsMissing("GET", v+"/users", nil)
	attempt := "GET /v1/tenants/" + string(s.victim.ID)
	rb := s.do("GET", "/v1/tenants/"+string(s.victim.ID), s.attacker.AdminToken, nil)
	rn := s.do("GET", "/v1/tenants/"+uuid.NewString(), s.attacker.AdminToken, nil)
	if !s.seeBeside(CheckControlPlane, attempt, rb, rn, "") && (rb.Status != rn.Status || rb.Code() != rn.Code()) {
		s.leak(CheckControlPlane, attempt, "answered %s; for a random UUID: %s", brief(rb), brief(rn))
	}
	for _, tok := range []string{s.attacker.AdminToken, s.attacker.MemberToken} {
		r := s.do("GET", "/v1/tenants", tok, nil)
		if !s.see(CheckControlPlane, "GET /v1/tenants", r, "") &&
			(strings.Contains(string(r.Body), string(s.victim.ID)) || strings.Contains(string(r.Body), `"id":"`+string(s.victim.Slug)+`"`)) {
			s.leak(CheckControlPlane, "GET /v1/tenants", "the list names the victim: %s", brief(r))
		}
	}
}

func (s *suite) controlPlaneWrites() {
	v := "/v1/tenants/" + string(s.victim.Slug)
	s.sameAsMissing("POST", v+"/users", map[string]string{"email": "intruder@bulkheadtest.test", "password": "pw-intruder", "role": "admin"})
	s.sameAsMissing("PATCH", v, map[string]string{"status": "suspended"})
	s.sameAsMissing("DELETE", v, nil)
}

// forgedTokens sends tokens an attacker could make, each naming the
// victim's tenant and its admin, to the data API and the control plane.
func (s *suite) forgedTokens() {
	for _, f := range s.forge() {
		paths := []string{"/v1/tenants", "/v1/tenants/" + string(s.victim.Slug)}
		for _, t := range s.tables {
			paths = append(paths, "/rest/v1/"+t.name)
			if vids := ids(s.victimRows[t.name]); len(vids) > 0 {
				paths = append(paths, "/rest/v1/"+t.name+"?id=eq."+vids[0])
			}
		}
		for _, p := range paths {
			attempt := "GET " + p + " with " + f.name
			r := s.do("GET", p, f.token, nil)
			if !s.see(CheckToken, attempt, r, p) && r.Status != http.StatusUnauthorized {
				s.leak(CheckToken, attempt, "the token was not refused with 401: %s", brief(r))
			}
		}
		attempt := "POST /v1/tenants with " + f.name
		r := s.do("POST", "/v1/tenants", f.token, map[string]string{"id": missingSlug(), "tier": "pool"})
		if r.Status != http.StatusUnauthorized {
			s.leak(CheckToken, attempt, "the token was not refused with 401: %s", brief(r))
		}
	}
}

type forgery struct{ name, token string }

func (s *suite) forge() []forgery {
	s.tb.Helper()
	enc := base64.RawURLEncoding
	parts := strings.Split(s.attacker.AdminToken, ".")
	if len(parts) != 3 {
		s.tb.Fatalf("bulkheadtest: %s's admin token is not a JWT", s.attacker.Slug)
	}
	var hdr, claims map[string]any
	h, _ := enc.DecodeString(parts[0])
	p, _ := enc.DecodeString(parts[1])
	if json.Unmarshal(h, &hdr) != nil || json.Unmarshal(p, &claims) != nil {
		s.tb.Fatalf("bulkheadtest: %s's admin token is not a JWT", s.attacker.Slug)
	}
	kid, _ := hdr["kid"].(string)
	claims[identity.ClaimTenantID] = string(s.victim.ID)
	claims[identity.ClaimTenant] = string(s.victim.Slug)
	claims["sub"] = s.victimSub
	ep, _ := json.Marshal(claims)
	edited := enc.EncodeToString(ep)
	out := []forgery{
		{"alg none", enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + edited + "."},
		{"a stripped signature", parts[0] + "." + edited + "."},
		{"an edited tenant claim", parts[0] + "." + edited + "." + parts[2]},
	}
	issue := func(name string, iss identity.Issuer, c identity.Claims) {
		tok, _, err := iss.Issue(c)
		if err != nil {
			s.tb.Fatalf("bulkheadtest: forge a token with %s: %v", name, err)
		}
		out = append(out, forgery{name, tok})
	}
	wrong, err := identity.NewSigningKey(nil)
	if err != nil {
		s.tb.Fatal(err)
	}
	wrong.ID = kid
	victim := identity.Claims{Subject: s.victimSub, Tenant: s.victim.Slug, TenantID: s.victim.ID, Role: tenant.Admin}
	issue("a wrong key with the right kid", identity.Issuer{Issuer: bulkhead.TokenIssuer, Audience: bulkhead.TokenAudience,
		Keys: []identity.SigningKey{wrong}}, victim)
	issue("a self-made platform-admin token", identity.Issuer{Issuer: bulkhead.AdminTokenIssuer, Audience: bulkhead.AdminTokenAudience,
		Keys: []identity.SigningKey{wrong}, Platform: true}, identity.Claims{Subject: "attacker", Platform: true})
	// Tokens signed with the real key, each wrong in one way only, so
	// that each check of the verifier is tried on its own.
	ks, err := s.env.srv.DB.Postgres().Keys(s.ctx, postgres.KeyJWT)
	if err != nil || len(ks) == 0 || len(ks[0].Secret) < ed25519.SeedSize {
		s.tb.Fatalf("bulkheadtest: the token signing key: %v", err)
	}
	signer := identity.SigningKey{ID: ks[0].ID, Private: ed25519.NewKeyFromSeed(ks[0].Secret[:ed25519.SeedSize])}
	issue("an expired token", identity.Issuer{Issuer: bulkhead.TokenIssuer, Audience: bulkhead.TokenAudience, Keys: []identity.SigningKey{signer},
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}, victim)
	issue("a token for another audience", identity.Issuer{Issuer: bulkhead.TokenIssuer, Audience: "bulkheadtest-elsewhere",
		Keys: []identity.SigningKey{signer}}, victim)
	issue("a token from another issuer", identity.Issuer{Issuer: "https://attacker.bulkheadtest.test", Audience: bulkhead.TokenAudience,
		Keys: []identity.SigningKey{signer}}, victim)
	issue("a platform-admin token signed with the tenant-token key", identity.Issuer{Issuer: bulkhead.AdminTokenIssuer,
		Audience: bulkhead.AdminTokenAudience, Keys: []identity.SigningKey{signer}, Platform: true}, identity.Claims{Subject: "attacker", Platform: true})
	return out
}

// isText reports whether col of t is a text column other than a key.
func (t table) isText(col string) bool {
	for _, c := range t.cols {
		if c.Name == col {
			return col != "id" && col != "tenant_id" && !t.isRef(col) && (c.Type == "text" || strings.HasPrefix(c.Type, "character"))
		}
	}
	return false
}

// shaped returns a random string of v's shape: each letter replaced by a
// random letter of the same case, each digit by a random digit, the rest
// kept.
func shaped(v string) string {
	b := []byte(v)
	r := make([]byte, len(b))
	rand.Read(r)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = 'a' + r[i]%26
		case 'A' <= c && c <= 'Z':
			b[i] = 'A' + r[i]%26
		case '0' <= c && c <= '9':
			b[i] = '0' + r[i]%10
		}
	}
	return string(b)
}

// template returns a row the attacker could insert into t, without id
// and tenant_id: a copy of one of its own rows, or else one made up from
// the columns (with its references pointing at the attacker's rows where
// it has any). Its text columns hold fresh random values, of the shape of
// the own row's, so that it collides with no row on a unique key. ok is
// false when no such row can be made.
func (s *suite) template(t table) (row map[string]any, ok bool) {
	row = map[string]any{}
	if own := s.ownRows[t.name]; len(own) > 0 {
		for k, v := range own[0] {
			if k != "id" && k != "tenant_id" && k != "created_at" {
				row[k] = v
				if str, ok := v.(string); ok && t.isText(k) {
					row[k] = shaped(str)
				}
			}
		}
		return row, true
	}
	for _, c := range t.cols {
		if !c.NotNull || c.HasDefault {
			continue
		}
		switch {
		case t.isRef(c.Name):
			row[c.Name] = uuid.NewString()
			target := strings.TrimSuffix(c.Name, "_id")
			for _, name := range []string{target + "s", target} {
				if oids := ids(s.ownRows[name]); len(oids) > 0 {
					row[c.Name] = oids[0]
				}
			}
		case c.Type == "text" || strings.HasPrefix(c.Type, "character"):
			row[c.Name] = shaped("bulkheadtest")
		case c.Type == "uuid":
			row[c.Name] = uuid.NewString()
		case c.Type == "boolean":
			row[c.Name] = false
		case c.Type == "integer" || c.Type == "bigint" || c.Type == "smallint" || strings.HasPrefix(c.Type, "numeric"):
			row[c.Name] = 0
		case strings.HasPrefix(c.Type, "timestamp") || c.Type == "date":
			row[c.Name] = "2000-01-01T00:00:00Z"
		case c.Type == "jsonb" || c.Type == "json":
			row[c.Name] = map[string]any{}
		default:
			return nil, false
		}
	}
	return row, true
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// targets returns victim ids the reference column col of t may point at:
// the values it has in the victim's rows, or else any victim ids.
func (s *suite) targets(t table, col string) []string {
	var out []string
	for _, row := range s.victimRows[t.name] {
		if v, ok := row[col].(string); ok && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		out = s.victimIDs
	}
	return first(out, perRow)
}

func (s *suite) references() {
	tok := s.attacker.AdminToken
	for _, t := range s.tables {
		if len(t.refs()) == 0 {
			continue
		}
		tmpl, ok := s.template(t)
		if !ok {
			s.note("no row of %s could be made up for the reference checks over HTTP; seed the attacker", t.name)
		}
		oids := ids(s.ownRows[t.name])
		for _, col := range t.refs() {
			for _, target := range s.targets(t, col) {
				if ok {
					attempt := "POST /rest/v1/" + t.name + " with " + col + " = the victim's " + target
					a, b := clone(tmpl), clone(tmpl)
					a[col], b[col] = target, uuid.NewString()
					rf := s.do("POST", "/rest/v1/"+t.name, tok, a)
					rn := s.do("POST", "/rest/v1/"+t.name, tok, b)
					switch {
					case rf.Status < 400:
						s.leak(CheckReference, attempt, "a row of the attacker's now points at the victim's row: %s", brief(rf))
					case rf.Status != rn.Status || rf.Code() != rn.Code():
						s.leak(CheckReference, attempt, "refused otherwise than a reference to a random id, so it tells that the row exists: %s; random id: %s",
							brief(rf), brief(rn))
					}
				}
				if len(oids) > 0 {
					attempt := "PATCH /rest/v1/" + t.name + "?id=eq." + oids[0] + " setting " + col + " to the victim's " + target
					r := s.do("PATCH", "/rest/v1/"+t.name+"?id=eq."+oids[0], tok, map[string]any{col: target})
					if r.Status < 400 {
						s.leak(CheckReference, attempt, "the attacker's row now points at the victim's row: %s", brief(r))
					}
				}
			}
		}
	}
}

// uniques inserts the attacker's template row of each table with each of
// the victim's distinctive values (up to perRow per text column) in its
// column, and the same row with a random value of that shape, both with
// tx=rollback: a unique key or a reference that spans tenants answers the
// victim's value otherwise (409 against 201), and so tells whether the
// victim holds it.
func (s *suite) uniques() {
	tok := s.attacker.AdminToken
	pref := []string{"Prefer", "tx=rollback"}
	for _, t := range s.tables {
		byCol := map[string][]string{}
		for _, row := range s.victimRows[t.name] {
			for _, col := range sortedKeys(row) {
				if v, ok := row[col].(string); ok && t.isText(col) && s.distinctive(t, col, v) && slices.Contains(s.secrets, v) &&
					len(byCol[col]) < perRow && !slices.Contains(byCol[col], v) {
					byCol[col] = append(byCol[col], v)
				}
			}
		}
		if len(byCol) == 0 {
			continue
		}
		tmpl, ok := s.template(t)
		if !ok {
			s.note("no row of %s could be made up for the unique-key checks; seed the attacker", t.name)
			continue
		}
		for _, col := range sortedKeys(tmpl) {
			for _, v := range byCol[col] {
				attempt := "POST /rest/v1/" + t.name + " with " + col + " = the victim's " + strconv.Quote(v)
				a, b := clone(tmpl), clone(tmpl)
				a[col], b[col] = v, shaped(v)
				rv := s.do("POST", "/rest/v1/"+t.name, tok, a, pref...)
				rr := s.do("POST", "/rest/v1/"+t.name, tok, b, pref...)
				sent, _ := json.Marshal(a)
				switch {
				case s.seeBeside(CheckUnique, attempt, rv, rr, string(sent)):
				case rv.Status == rr.Status && rv.Code() == rr.Code():
				case rr.Code() == "check_violation" || rr.Code() == "invalid_value":
					s.note("%s: a random value of the same shape was refused (%s), so the answer for the victim's (%d) proves nothing", attempt, rr.Code(), rv.Status)
				default:
					s.leak(CheckUnique, attempt, "answered otherwise than a random value of the same shape, so it tells that the victim holds the value: %s; random value: %s",
						brief(rv), brief(rr))
				}
			}
		}
	}
}

func (s *suite) inserts() {
	tok := s.attacker.AdminToken
	v := string(s.victim.ID)
	for _, t := range s.tables {
		vrows := s.victimRows[t.name]
		if len(vrows) == 0 {
			continue
		}
		row := clone(vrows[0])
		delete(row, "id")
		for _, spelling := range []string{v, strings.ToUpper(v), "{" + v + "}", strings.ReplaceAll(v, "-", "")} {
			row["tenant_id"] = spelling
			attempt := "POST /rest/v1/" + t.name + " with tenant_id " + spelling
			if r := s.do("POST", "/rest/v1/"+t.name, tok, row); r.Status < 400 {
				s.leak(CheckInsert, attempt, "a row with the victim's tenant_id was accepted: %s", brief(r))
			}
		}
		if oids := ids(s.ownRows[t.name]); len(oids) > 0 {
			attempt := "PATCH /rest/v1/" + t.name + "?id=eq." + oids[0] + " setting tenant_id to the victim's"
			if r := s.do("PATCH", "/rest/v1/"+t.name+"?id=eq."+oids[0], tok, map[string]any{"tenant_id": v}); r.Status < 400 {
				s.leak(CheckInsert, attempt, "the attacker's row was moved to the victim: %s", brief(r))
			}
		} else {
			s.note("%s has no rows in %s: moving them to the victim is tried through SQL only", s.attacker.Slug, t.name)
		}
	}
}

// overwrite returns a PATCH body for a row of t: a text column set to a
// marker, or else id set to itself.
func overwrite(t table, id string) map[string]any {
	for _, c := range t.cols {
		if c.Name != "id" && c.Name != "tenant_id" && !t.isRef(c.Name) && (c.Type == "text" || strings.HasPrefix(c.Type, "character")) {
			return map[string]any{c.Name: "bulkheadtest-overwritten"}
		}
	}
	return map[string]any{"id": id}
}

func (s *suite) writes() {
	tok := s.attacker.AdminToken
	pref := []string{"Prefer", "return=representation,count=exact"}
	for _, t := range s.tables {
		vids := ids(s.victimRows[t.name])
		if len(vids) == 0 {
			continue
		}
		type w struct {
			method string
			query
		}
		var ws []w
		for _, id := range first(vids, perRow) {
			ws = append(ws, w{"PATCH", query{"id", "eq." + id}}, w{"DELETE", query{"id", "eq." + id}})
		}
		in := "in.(" + strings.Join(first(vids, 100), ",") + ")"
		ws = append(ws, w{"PATCH", query{"id", in}}, w{"PATCH", query{"tenant_id", "eq." + string(s.victim.ID)}})
		for _, cv := range s.values(t, 1) {
			ws = append(ws, w{"PATCH", query{cv[0], "eq." + cv[1]}}, w{"DELETE", query{cv[0], "eq." + cv[1]}})
		}
		ws = append(ws, w{"DELETE", query{"id", in}}, w{"DELETE", query{"tenant_id", "eq." + string(s.victim.ID)}})
		for _, x := range ws {
			attempt := x.method + " /rest/v1/" + t.name + "?" + x.String()
			var body any
			if x.method == "PATCH" {
				body = overwrite(t, vids[0])
			}
			r := s.do(x.method, "/rest/v1/"+t.name+"?"+x.encode(), tok, body, pref...)
			s.see(CheckWrite, attempt, r, attempt)
			s.wantTotal(CheckWrite, attempt, r, 0)
		}
		// An upsert on the victim's id can only make or change a row of the
		// attacker's (keys include tenant_id), never the victim's. Rolled
		// back, so that the attacker keeps no row with the victim's id.
		tmpl, ok := s.template(t)
		if !ok {
			continue
		}
		for _, id := range first(vids, perRow) {
			row := clone(tmpl)
			row["id"] = id
			attempt := "POST /rest/v1/" + t.name + " upserting id " + id
			r := s.do("POST", "/rest/v1/"+t.name, tok, row, "Prefer", "resolution=merge-duplicates,return=representation,tx=rollback")
			b, _ := json.Marshal(row)
			s.see(CheckWrite, attempt, r, string(b))
		}
	}
}

// errRolledBack ends every SQL attempt: nothing the attacker does
// through SQL is committed.
var errRolledBack = errors.New("bulkheadtest: rolled back")

// try runs fn in a transaction on the function's DB under ctx, and rolls
// it back. It returns fn's error, if any.
func (s *suite) try(ctx context.Context, db *bulkhead.DB, fn func(pgx.Tx) error) error {
	s.attempts++
	err := db.Tx(ctx, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errRolledBack
	})
	if errors.Is(err, errRolledBack) {
		return nil
	}
	return err
}

func (s *suite) sql() {
	s.tb.Helper()
	db := s.env.FunctionDB(s.tb)
	ctx := s.attacker.Context(s.tb)
	own, err := bulkhead.Schema(ctx)
	if err != nil {
		s.tb.Fatalf("bulkheadtest: the attacker's schema: %v", err)
	}
	vs := s.victimSchema()
	// count runs setup, then the count query q.
	count := func(ctx context.Context, setup func(pgx.Tx) error, q string, args ...any) (int64, error) {
		var n int64
		err := s.try(ctx, db, func(tx pgx.Tx) error {
			if setup != nil {
				if err := setup(tx); err != nil {
					return err
				}
			}
			return tx.QueryRow(ctx, q, args...).Scan(&n)
		})
		return n, err
	}
	// The attacker's context must work in its own schema, or every
	// refusal below proves nothing.
	for _, t := range s.tables {
		q := "SELECT count(*) FROM " + pgx.Identifier{own, t.name}.Sanitize()
		n, err := count(ctx, nil, q)
		if err != nil {
			s.tb.Fatalf("bulkheadtest: %s as %s on the function's login role: %v", q, s.attacker.Slug, err)
		}
		if n != s.ownCount[t.name] {
			s.leak(CheckSQL, q, "counts %d rows; the attacker has %d", n, s.ownCount[t.name])
		}
	}
	for _, t := range s.tables {
		vrows := s.victimRows[t.name]
		if len(vrows) == 0 {
			continue
		}
		vids := ids(vrows)
		vt := pgx.Identifier{vs, t.name}.Sanitize()
		reads := []struct {
			q    string
			args []any
		}{
			{"SELECT count(*) FROM " + vt + " WHERE id = ANY($1::uuid[])", []any{vids}},
			{"SELECT count(*) FROM " + vt + " WHERE tenant_id = $1::uuid", []any{string(s.victim.ID)}},
			{"SELECT count(*) FROM " + vt + " WHERE tenant_id <> $1::uuid", []any{string(s.attacker.ID)}},
		}
		for _, r := range reads {
			if n, err := count(ctx, nil, r.q, r.args...); err == nil && n != 0 {
				s.leak(CheckSQL, r.q, "counts %d of the victim's rows", n)
			}
		}
		var text string
		q := "SELECT coalesce(string_agg(to_jsonb(x)::text, ' '), '') FROM " + vt + " x"
		if err := s.try(ctx, db, func(tx pgx.Tx) error { return tx.QueryRow(ctx, q).Scan(&text) }); err == nil {
			for _, v := range s.secrets {
				if strings.Contains(text, v) {
					s.leak(CheckSQL, q, "the result holds the victim's %q", v)
					break
				}
			}
		}
		for _, w := range []string{
			"UPDATE " + vt + " SET id = id WHERE id = ANY($1::uuid[])",
			"DELETE FROM " + vt + " WHERE id = ANY($1::uuid[])",
		} {
			var n int64
			err := s.try(ctx, db, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, w, vids)
				n = tag.RowsAffected()
				return err
			})
			if err == nil && n != 0 {
				s.leak(CheckSQL, w, "reached %d of the victim's rows", n)
			}
		}
		// Writes that carry the victim's tenant_id: a new row, and an
		// upsert of the victim's own row.
		planted := clone(vrows[0])
		planted["id"] = uuid.NewString()
		ins, plantedArg := insertSQL(vt, planted)
		ups, upsertArg := insertSQL(vt, vrows[0])
		for _, w := range []struct{ q, arg string }{
			{ins, plantedArg},
			{ups + " ON CONFLICT (tenant_id, id) DO UPDATE SET id = excluded.id", upsertArg},
		} {
			var n int64
			err := s.try(ctx, db, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, w.q, w.arg)
				n = tag.RowsAffected()
				return err
			})
			if err == nil && n != 0 {
				s.leak(CheckSQL, w.q, "wrote a row with the victim's tenant_id (rolled back)")
			}
		}
	}
	vt, vids := s.victimTarget()
	reach := "SELECT count(*) FROM " + vt + " WHERE id = ANY($1::uuid[])"
	// Forged contexts, set over the attacker's valid one.
	for _, f := range s.forgeContexts(ctx) {
		setup := func(tx pgx.Tx) error {
			// Isolation: a context, even a forged one, is a bound
			// parameter, never SQL text.
			_, err := tx.Exec(ctx, postgres.SetContextSQL, f.token)
			return err
		}
		if n, err := count(ctx, setup, reach, vids); err == nil && n != 0 {
			s.leak(CheckSQL, reach+" after set_config('bulkhead.context') with "+f.name, "counts %d of the victim's rows", n)
		}
	}
	// Privileged roles.
	var roles []string
	s.try(ctx, db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT rolname FROM pg_catalog.pg_roles
			WHERE rolname IN ('bulkhead_owner', 'bulkhead_maint') OR rolsuper OR rolbypassrls ORDER BY rolname LIMIT 20`)
		if err != nil {
			return err
		}
		roles, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	for _, r := range roles {
		for _, st := range []string{"SET LOCAL ROLE " + pgx.Identifier{r}.Sanitize(), "SET LOCAL SESSION AUTHORIZATION " + pgx.Identifier{r}.Sanitize()} {
			setup := func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, st)
				return err
			}
			if n, err := count(ctx, setup, reach, vids); err == nil && n != 0 {
				s.leak(CheckSQL, st+"; "+reach, "counts %d of the victim's rows", n)
			}
		}
	}
	s.sqlOwnRows(ctx, db, own)
}

// victimTarget returns the victim's first table with rows, qualified, and
// their ids.
func (s *suite) victimTarget() (string, []string) {
	for _, t := range s.tables {
		if vids := ids(s.victimRows[t.name]); len(vids) > 0 {
			return pgx.Identifier{s.victimSchema(), t.name}.Sanitize(), vids
		}
	}
	return "", nil
}

// sqlOwnRows makes a row of the attacker's in its own schema, inside a
// transaction that is rolled back, and then points it at the victim's
// rows through each reference column, or moves it to the victim.
func (s *suite) sqlOwnRows(ctx context.Context, db *bulkhead.DB, own string) {
	for _, t := range s.tables {
		ot := pgx.Identifier{own, t.name}.Sanitize()
		type attempt struct{ q, target, found string }
		var as []attempt
		for _, col := range t.refs() {
			for _, target := range s.targets(t, col) {
				as = append(as, attempt{"UPDATE " + ot + " SET " + pgx.Identifier{col}.Sanitize() + " = $1::uuid WHERE id = $2::uuid", target,
					"a row of the attacker's now points at the victim's row " + target + " (rolled back)"})
			}
		}
		as = append(as, attempt{"UPDATE " + ot + " SET tenant_id = $1::uuid WHERE id = $2::uuid", string(s.victim.ID),
			"a row of the attacker's was moved to the victim (rolled back)"})
		for _, a := range as {
			var n int64
			made := false
			err := s.try(ctx, db, func(tx pgx.Tx) error {
				id, err := s.mirror(ctx, tx, own, t, nil)
				if err != nil {
					return err
				}
				made = true
				tag, err := tx.Exec(ctx, a.q, a.target, id)
				n = tag.RowsAffected()
				return err
			})
			if !made {
				s.note("no row of %s could be made in %s's schema for the SQL checks on its own rows: %v", t.name, s.attacker.Slug, err)
				break
			}
			if err == nil && n != 0 {
				s.leak(CheckSQL, a.q, "%s", a.found)
			}
		}
	}
}

// mirror inserts, in tx, a row of the attacker's into own.t (and the rows
// it references, first), made from its own rows or the columns, and
// returns its id.
func (s *suite) mirror(ctx context.Context, tx pgx.Tx, own string, t table, path []string) (string, error) {
	row, ok := s.template(t)
	if !ok || slices.Contains(path, t.name) {
		return "", fmt.Errorf("no row of %s can be made up", t.name)
	}
	path = append(path, t.name)
	for _, col := range t.refs() {
		target := strings.TrimSuffix(col, "_id")
		for _, rt := range s.tables {
			if rt.name == target+"s" || rt.name == target {
				id, err := s.mirror(ctx, tx, own, rt, path)
				if err != nil {
					return "", err
				}
				row[col] = id
			}
		}
	}
	id := uuid.NewString()
	row["id"], row["tenant_id"] = id, string(s.attacker.ID)
	ot := pgx.Identifier{own, t.name}.Sanitize()
	q, arg := insertSQL(ot, row)
	_, err := tx.Exec(ctx, q, arg)
	return id, err
}

// insertSQL returns an INSERT of row into the qualified table qt, with
// row as a JSON parameter: the columns row names are set, the others take
// their defaults.
func insertSQL(qt string, row map[string]any) (string, string) {
	var cols []string
	for _, k := range sortedKeys(row) {
		cols = append(cols, pgx.Identifier{k}.Sanitize())
	}
	b, _ := json.Marshal(row)
	list := strings.Join(cols, ", ")
	return "INSERT INTO " + qt + " (" + list + ") SELECT " + list + " FROM jsonb_populate_record(NULL::" + qt + ", $1::jsonb)", string(b)
}

// forgeContexts returns signed contexts made from the attacker's: its
// claims edited to name the victim, under the old MAC, a MAC of a wrong
// key, and no valid MAC at all.
func (s *suite) forgeContexts(ctx context.Context) []forgery {
	signed, _ := tenant.SignedFromContext(ctx)
	parts := strings.Split(signed.Token, ".")
	if len(parts) != 4 {
		s.tb.Fatalf("bulkheadtest: the attacker's context is not v1.<kid>.<payload>.<mac>")
	}
	enc := base64.RawURLEncoding
	var claims map[string]any
	p, _ := enc.DecodeString(parts[2])
	json.Unmarshal(p, &claims)
	claims["tenant_id"] = string(s.victim.ID)
	claims["tenant"] = string(s.victim.Slug)
	b, _ := json.Marshal(claims)
	edited := parts[0] + "." + parts[1] + "." + enc.EncodeToString(b)
	key := make([]byte, 32)
	rand.Read(key)
	return []forgery{
		{"the victim's tenant under the attacker's MAC", edited + "." + parts[3]},
		{"the victim's tenant under a wrong key's MAC", edited + "." + enc.EncodeToString(hmacSHA256(key, edited))},
		{"the victim's tenant and a zero MAC", edited + "." + strings.Repeat("A", 43)},
	}
}

func hmacSHA256(key []byte, text string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(text))
	return h.Sum(nil)
}
