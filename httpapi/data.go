package httpapi

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/rest"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

var commandOf = map[string]string{
	http.MethodGet: "select", http.MethodHead: "select", http.MethodPost: "insert",
	http.MethodPatch: "update", http.MethodDelete: "delete",
}

var errRollback = errors.New("rollback requested")

var dataAction = map[string]string{
	http.MethodGet: policy.DataSelect, http.MethodHead: policy.DataSelect, http.MethodPost: policy.DataInsert,
	http.MethodPatch: policy.DataUpdate, http.MethodDelete: policy.DataDelete,
}

// leadingKeys are the tenants a data request names: the caller's own, and
// every value a filter compares tenant_id with, however the filter is
// spelled (a quoted name, in an or/and tree, eq(any), under not), read from
// the parsed query. A value that is not the caller's own UUID (in any case)
// counts as another tenant.
func leadingKeys(compared map[string][]string, t *tenant.Tenant) []string {
	keys := []string{string(t.ID)}
	for _, v := range compared["tenant_id"] {
		if id := strings.ToLower(v); id != "" && id != string(t.ID) && !slices.Contains(keys, id) {
			keys = append(keys, id)
		}
	}
	return keys
}

// scopeCommands are the commands a context's scope can carry, with the
// action the policies decide for each.
var scopeCommands = [...]struct{ cmd, action string }{
	{"select", policy.DataSelect}, {"insert", policy.DataInsert}, {"update", policy.DataUpdate}, {"delete", policy.DataDelete},
}

// dataScope lists the commands the caller's policies allow on a table.
func (s *Server) dataScope(r *http.Request, p tenant.Principal, t *tenant.Tenant, resource string) ([]string, error) {
	tp, err := s.db.Policies(r.Context(), t)
	if err != nil {
		return nil, err
	}
	// One request, one clock reading and one source address serve the
	// four decisions, which differ only in their action (evaluation does
	// not change the request).
	req := policy.Request{Resource: resource, Time: time.Now(), SourceIP: sourceIP(r),
		Context: map[string][]string{policy.KeyLeadingKeys: {string(t.ID)}}}
	pp := policy.Principal{TenantID: t.ID, Tier: tp.Plan, Role: p.Role}
	// Never nil: a nil scope would make Mint compute one of its own
	// (PolicyScope) instead of carrying "no command" into the context.
	scope := make([]string, 0, len(scopeCommands))
	for _, a := range scopeCommands {
		req.Action = a.action
		if policy.EvaluateWithBoundary(req, pp, tp.Boundary, tp.Policies).Allowed() {
			scope = append(scope, a.cmd)
		}
	}
	return scope, nil
}

// data serves the PostgREST dialect on tenant tables. The request is
// routed to the pool or to the caller's silo by the tenant in the token;
// the table and columns are checked against the allowlist; every value is
// a bound parameter; and the statement runs under a context minted for the
// caller, so PostgreSQL's row policies decide what it can reach.
func (s *Server) data(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	if p.Platform {
		s.writeError(w, r, fault.E(fault.Denied, "tenant_token_required", "Platform administrators do not read or write tenant data through the data API."))
		return
	}
	base, ok := s.tables[r.PathValue("table")]
	if !ok {
		s.writeError(w, r, fault.E(fault.NotFound, "table_not_found", "No such table."))
		return
	}
	t, err := s.callerTenant(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Noisy neighbours slow only themselves: a number of transactions in
	// flight per tenant, by plan (the tenant's token bucket was taken
	// when the request was authenticated).
	release, ok := s.holdSlot(w, r, t)
	if !ok {
		return
	}
	defer release()
	// The policy decides before any SQL: the action on this table, with the
	// tenants the request names as its leading keys. The context then
	// carries the commands the policies allow on the table, so the
	// database refuses anything more even to direct SQL.
	resource := policy.DataResource(string(t.ID), base.Name)
	// One parse of the filters serves the policy (the tenants named) and,
	// after the answer, the probe check (the ids asked for).
	// The query string is parsed once, for both (neither changes it).
	query := r.URL.Query()
	compared, _ := rest.Compared(base, r.Method, query, "tenant_id", "id")
	leading := leadingKeys(compared, t)
	if _, err := s.decide(r, p, t, dataAction[r.Method], resource, leading); err != nil {
		s.writeError(w, r, err)
		return
	}
	scope, err := s.dataScope(r, p, t, resource)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var body []byte
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		var err error
		if body, err = readBody(w, r, s.maxBody); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	sc, err := s.db.Mint(r.Context(), p, bulkhead.MintOptions{Scope: scope, RequestID: requestIDFrom(r.Context())})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	schema, err := postgres.Schema(sc.Placement)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tbl := *base
	tbl.Schema = schema
	st, err := s.builder.Build(&tbl, rest.Request{Method: r.Method, Query: query, Header: r.Header, Body: body, TenantID: string(sc.TenantID)})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A write that reads rows also needs data:Select, still before any
	// SQL: PATCH and DELETE select the rows their filters match (a count
	// or a return=representation sends them back), and an upsert with
	// return=representation sends back rows it did not write whole. A
	// policy that denies data:Select is not escaped through a write.
	if r.Method == http.MethodPatch || r.Method == http.MethodDelete || (r.Method == http.MethodPost && st.Returns) {
		if _, err := s.decide(r, p, t, policy.DataSelect, resource, leading); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	var out *string
	var rows int64
	var total *int64
	scan := func(row pgx.Row) error { return row.Scan(&out, &rows, &total) }
	var check func() error
	if st.Single || st.MaxAffected > 0 || st.Rollback {
		check = func() error {
			if st.Single && rows != 1 {
				if rows == 0 {
					return fault.E(fault.NotFound, "not_found", "No row matches.")
				}
				return fault.E(fault.Invalid, "not_single", "More than one row matches, but one object was requested.")
			}
			if st.MaxAffected > 0 && rows > st.MaxAffected {
				return fault.Errorf(fault.Invalid, "max_affected_exceeded", "The request would affect %d rows, more than the %d allowed.", rows, st.MaxAffected)
			}
			if st.Rollback {
				return errRollback
			}
			return nil
		}
	}
	lim := s.quota.limit(t)
	// And the database time its requests take, by plan: a tenant whose
	// queries are expensive runs fewer of them.
	sp, retry, err := s.quota.beginTime(r.Context(), t) //bulkhead:ok per-tenant counters keyed by the verified tenant UUID, no tenant data
	if err != nil {
		setRetryAfter(w, retry)
		s.writeError(w, r, err)
		return
	}
	err = s.quota.spendTime(sp, func(took *time.Duration) error { //bulkhead:ok per-tenant counters keyed by the verified tenant UUID, no tenant data
		return postgres.ScopedStatement(r.Context(), s.db.Postgres().App(), sc.Token, st.SQL, st.Args, scan, check,
			postgres.StatementTimeout(lim.StatementTimeout), postgres.ParallelWorkers(lim.ParallelWorkers), postgres.Took(took))
	})
	if (err == nil || fault.KindOf(err) == fault.NotFound) && rows == 0 {
		defer s.checkProbe(r, p, base.Name, probedIDs(compared["id"]))
	}
	if err != nil && !errors.Is(err, errRollback) {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	if st.Count || r.Method == http.MethodGet || r.Method == http.MethodHead {
		h.Set("Content-Range", contentRange(st.Offset, rows, total))
	}
	status := http.StatusOK
	switch r.Method {
	case http.MethodPost:
		status = http.StatusCreated
	case http.MethodPatch, http.MethodDelete:
		if !st.Returns {
			status = http.StatusNoContent
		}
	}
	if !st.Returns || out == nil || r.Method == http.MethodHead {
		if status == http.StatusOK && r.Method != http.MethodHead && r.Method != http.MethodGet {
			status = http.StatusNoContent
		}
		w.WriteHeader(status)
		return
	}
	ctype := "application/json; charset=utf-8"
	if st.Single {
		ctype = "application/vnd.pgrst.object+json; charset=utf-8"
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(*out)))
	w.WriteHeader(status)
	io.WriteString(w, *out) // without a copy of the body when w has WriteString
}

// holdSlot takes one of t's transaction slots for the request, or answers
// 429 too_many_transactions with Retry-After and reports false. The
// caller calls release when its transaction is done.
func (s *Server) holdSlot(w http.ResponseWriter, r *http.Request, t *tenant.Tenant) (release func(), ok bool) {
	release, retry, err := s.quota.slot(t) //bulkhead:ok per-tenant counters keyed by the verified tenant UUID, no tenant data
	if err != nil {
		setRetryAfter(w, retry)
		s.writeError(w, r, err)
		return nil, false
	}
	return release, true
}

func contentRange(offset, rows int64, total *int64) string {
	t := "*"
	if total != nil {
		t = strconv.FormatInt(*total, 10)
	}
	if rows == 0 {
		return "*/" + t
	}
	return strconv.FormatInt(offset, 10) + "-" + strconv.FormatInt(offset+rows-1, 10) + "/" + t
}
