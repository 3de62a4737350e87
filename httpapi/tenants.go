package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/strictjson"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// tenantJSON is a tenant as the API shows it. Placement is shown to
// platform admins only.
type tenantJSON struct {
	ID        string    `json:"id"`
	UUID      string    `json:"uuid"`
	Name      string    `json:"name"`
	Tier      string    `json:"tier"`
	Status    string    `json:"status"`
	Placement string    `json:"placement,omitempty"`
	Plan      string    `json:"plan"`
	CreatedAt time.Time `json:"created_at"`
}

func toTenantJSON(t *tenant.Tenant, p tenant.Principal) tenantJSON {
	j := tenantJSON{ID: string(t.Slug), UUID: string(t.ID), Name: t.Name, Tier: string(t.Tier), Status: string(t.Status), Plan: t.Plan, CreatedAt: t.CreatedAt}
	if p.Platform {
		j.Placement = t.Placement
	}
	return j
}

var errPlatformOnly = fault.E(fault.Denied, "platform_admin_required", "Only a platform administrator may do this.")

// visibleTenant returns the tenant named in the path if p may see it.
// Isolation: another tenant's slug gives the same NotFound as a slug that
// does not exist, by the same path.
func (s *Server) visibleTenant(r *http.Request, p tenant.Principal) (*tenant.Tenant, error) {
	slug, err := tenant.ParseSlug(r.PathValue("id"))
	if err != nil {
		return nil, tenant.ErrNotFound
	}
	if !p.Platform && slug != p.Tenant {
		return nil, tenant.ErrNotFound
	}
	return s.pg.FindTenantBySlug(r.Context(), slug, false)
}

type createTenantRequest struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Tier string `json:"tier"`
	Plan string `json:"plan"` // "basic" (default) or "premium": the policy template that bounds the tenant
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	if !p.Platform {
		s.writeError(w, r, errPlatformOnly)
		return
	}
	if _, err := s.decidePlatform(r, policy.TenantsCreate, policy.ControlResource("", policy.KindTenant, "")); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req createTenantRequest
	if err := decodeBody(w, r, s.maxBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Tier == "" {
		req.Tier = string(tenant.Pool)
	}
	t, created, err := s.pg.CreateTenant(s.changeCtx(r), postgres.TenantCreate{Slug: tenant.Slug(req.ID), Name: req.Name, Tier: tenant.Tier(req.Tier), Plan: req.Plan})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/tenants/"+string(t.Slug))
	}
	writeJSON(w, status, toTenantJSON(t, p))
}

type batchResult struct {
	ID      string      `json:"id"`
	Result  string      `json:"result"` // created, exists, failed
	Tenant  *tenantJSON `json:"tenant,omitempty"`
	Code    string      `json:"code,omitempty"`
	Message string      `json:"message,omitempty"`
}

// maxBatch bounds one batch of tenants.
const maxBatch = 1000

// batchTimeout is the message of a batch item the request's time ran out on.
const batchTimeout = "The request's time ran out before this tenant was created; nothing was kept for it. Send the batch again: what exists is reported as such."

// createTenants onboards up to maxBatch tenants in one request. Each is
// created atomically and independently (one failing does not stop the
// others), and retrying the same batch is safe: what already exists is
// reported as such.
func (s *Server) createTenants(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	if !p.Platform {
		s.writeError(w, r, errPlatformOnly)
		return
	}
	if _, err := s.decidePlatform(r, policy.TenantsCreate, policy.ControlResource("", policy.KindTenant, "")); err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := readBody(w, r, s.maxBody)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var raw []json.RawMessage
	if err := strictjson.Check(b); err != nil || json.Unmarshal(b, &raw) != nil {
		s.writeError(w, r, fault.E(fault.Invalid, "invalid_body", "The body must be a JSON array of tenants."))
		return
	}
	if len(raw) == 0 {
		s.writeError(w, r, fault.E(fault.Invalid, "invalid_body", "The batch is empty."))
		return
	}
	if len(raw) > maxBatch {
		s.writeError(w, r, fault.Errorf(fault.TooLarge, "too_many_rows", "A batch holds 1 to %d tenants.", maxBatch))
		return
	}
	reqs := make([]createTenantRequest, len(raw))
	for i, item := range raw {
		if err := strictjson.Decode(item, &reqs[i]); err != nil {
			s.writeError(w, r, fault.Errorf(fault.Invalid, "invalid_body", "Tenant %d of the batch is not valid: %v.", i, err))
			return
		}
	}
	out := make([]batchResult, len(reqs))
	// The first item with each id is created several at a time (each in
	// its own transaction, so their commits share the disk's flushes); an
	// id the batch repeats is tried after all of those, one item at a
	// time in order, so it meets what its earlier item left, as it would
	// in a batch created one by one.
	seen := make(map[string]bool, len(reqs))
	var first, again []int
	for i, req := range reqs {
		if seen[req.ID] {
			again = append(again, i)
			continue
		}
		seen[req.ID] = true
		first = append(first, i)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(s.batchConcurrency(), len(first)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out[i] = s.createBatchItem(r, p, i, reqs[i])
			}
		}()
	}
	for _, i := range first {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, i := range again {
		out[i] = s.createBatchItem(r, p, i, reqs[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

// batchConcurrency is how many tenants of a batch are created at once:
// half the admin pool's connections, at most 4, so that a batch leaves
// connections to the control plane's other requests.
func (s *Server) batchConcurrency() int {
	return max(1, min(4, int(s.pg.Admin().Config().MaxConns)/2))
}

// createBatchItem creates item i of a batch and says what became of it.
func (s *Server) createBatchItem(r *http.Request, p tenant.Principal, i int, req createTenantRequest) batchResult {
	res := batchResult{ID: req.ID}
	if r.Context().Err() != nil {
		// The request's time ran out: the rest are not tried.
		res.Result, res.Code, res.Message = "failed", "timeout", batchTimeout
		return res
	}
	if req.Tier == "" {
		req.Tier = string(tenant.Pool)
	}
	t, created, err := s.pg.CreateTenant(s.changeCtx(r), postgres.TenantCreate{Slug: tenant.Slug(req.ID), Name: req.Name, Tier: tenant.Tier(req.Tier), Plan: req.Plan})
	switch {
	case err != nil && fault.KindOf(err) == fault.Canceled:
		res.Result, res.Code, res.Message = "failed", "timeout", batchTimeout
	case err != nil:
		if fault.KindOf(err) == fault.Internal {
			s.log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("request_id", requestIDFrom(r.Context())),
				slog.Int("batch_item", i), slog.String("err", err.Error()))
		}
		res.Result, res.Code, res.Message = "failed", fault.CodeOf(err), fault.MessageOf(err)
	case created:
		res.Result = "created"
	default:
		res.Result = "exists"
	}
	if t != nil {
		j := toTenantJSON(t, p)
		res.Tenant = &j
	}
	return res
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	if !p.Platform {
		t, err := s.pg.FindTenantBySlug(r.Context(), p.Tenant, false)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if _, err := s.decide(r, p, t, policy.TenantsGet, policy.ControlResource(string(t.ID), policy.KindTenant, string(t.ID)), nil); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, []tenantJSON{toTenantJSON(t, p)})
		return
	}
	if _, err := s.decidePlatform(r, policy.TenantsList, policy.ControlResource("", policy.KindTenant, "")); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := postgres.TenantFilter{After: tenant.Slug(q.Get("after"))}
	if tier := q.Get("tier"); tier != "" {
		tt := tenant.Tier(tier)
		if !tt.Valid() {
			s.writeError(w, r, fault.E(fault.Invalid, "invalid_tier", `The tier must be "pool" or "silo".`))
			return
		}
		f.Tier = &tt
	}
	var err error
	if f.Limit, err = pageLimit(q); err != nil {
		s.writeError(w, r, err)
		return
	}
	ts, err := s.pg.FindTenants(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]tenantJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, toTenantJSON(t, p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	t, err := s.visibleTenant(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.decide(r, p, t, policy.TenantsGet, policy.ControlResource(string(t.ID), policy.KindTenant, string(t.ID)), nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTenantJSON(t, p))
}

type updateTenantRequest struct {
	Status string `json:"status"`
	Plan   string `json:"plan"`
}

// platformTenant resolves the tenant in the path for a platform-only change
// to it: the tenant must be visible to the principal, the principal a
// platform administrator, and the platform policy must allow action.
func (s *Server) platformTenant(r *http.Request, action string) (tenant.Principal, *tenant.Tenant, error) {
	p := mustPrincipal(r)
	t, err := s.visibleTenant(r, p)
	if err != nil {
		return tenant.Principal{}, nil, err
	}
	if !p.Platform {
		return tenant.Principal{}, nil, errPlatformOnly
	}
	if _, err := s.decidePlatform(r, action, policy.ControlResource(string(t.ID), policy.KindTenant, string(t.ID))); err != nil {
		return tenant.Principal{}, nil, err
	}
	return p, t, nil
}

// updateTenant suspends or reactivates a tenant, or moves it to another
// plan. A suspended tenant's contexts stop verifying at the next statement
// and its tokens stop working; its data stays. A new plan applies to the
// tenant's next request on this server (its limits and the template that
// bounds its policies).
func (s *Server) updateTenant(w http.ResponseWriter, r *http.Request) {
	p, t, err := s.platformTenant(r, policy.TenantsUpdate)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req updateTenantRequest
	if err := decodeBody(w, r, s.maxBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.pg.UpdateTenant(s.changeCtx(r), t.ID, postgres.TenantUpdate{Status: tenant.Status(req.Status), Plan: req.Plan}); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.auth.ForgetTenant(t.ID)
	t, err = s.pg.FindTenantBySlug(r.Context(), t.Slug, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTenantJSON(t, p))
}

type moveTenantRequest struct {
	Tier string `json:"tier"`
}

// moveTimeout bounds a move through the API; a longer one (a large
// tenant) belongs to bulkhead tenants move. A move that stops resumes when
// asked again.
const moveTimeout = 5 * time.Minute

// moveTenant moves a tenant between the pool and a silo (platform
// administrators only). The move does not stop when the caller hangs up:
// a tenant left half-way would stay unavailable until someone asked again.
func (s *Server) moveTenant(w http.ResponseWriter, r *http.Request) {
	_, t, err := s.platformTenant(r, policy.TenantsUpdate)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req moveTenantRequest
	if err := decodeBody(w, r, s.maxBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !tenant.Tier(req.Tier).Valid() {
		s.writeError(w, r, fault.E(fault.Invalid, "invalid_tier", `The tier must be "pool" or "silo".`))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.changeCtx(r)), moveTimeout)
	defer cancel()
	// This server forgets the tenant once it has stopped, not only
	// before: a request may load it, still active, in between, and would
	// then be served from that copy while the tenant moves (its contexts
	// refused by PostgreSQL: empty reads, refused writes).
	s.auth.ForgetTenant(t.ID)
	rep, err := s.pg.MoveTenant(ctx, t.ID, tenant.Tier(req.Tier), postgres.MoveOptions{Settle: s.moveSettle,
		Progress: func(string) { s.auth.ForgetTenant(t.ID) }})
	s.auth.ForgetTenant(t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request) {
	_, t, err := s.platformTenant(r, policy.TenantsDelete)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.pg.OffboardTenant(s.changeCtx(r), t.ID)
	s.auth.ForgetTenant(t.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

type createUserRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

type userJSON struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	t, err := s.visibleTenant(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.decide(r, p, t, policy.UsersCreate, policy.ControlResource(string(t.ID), policy.KindUser, ""), nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req createUserRequest
	if err := decodeBody(w, r, s.maxBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Role == "" {
		req.Role = string(tenant.Member)
	}
	if !tenant.Role(req.Role).Valid() {
		s.writeError(w, r, fault.E(fault.Invalid, "invalid_role", `The role must be "admin" or "member".`))
		return
	}
	if req.Password == "" || len(req.Password) > identity.MaxPasswordLen {
		s.writeError(w, r, identity.ErrInvalidPassword)
		return
	}
	// Refused before the password is hashed: a bad email costs no hash.
	if _, err := postgres.CheckEmail(req.Email); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Isolation: the tenant's share of the server's password checks first,
	// so that one tenant creating users cannot use up the budget every
	// tenant's logins need.
	if retry, err := s.quota.password(t); err != nil { //bulkhead:ok per-tenant counters keyed by the tenant UUID, no tenant data
		setRetryAfter(w, retry)
		s.writeError(w, r, err)
		return
	}
	if !s.passwordCheck(w, r) {
		return
	}
	hash, err := s.hasher.Hash(r.Context(), req.Password)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.pg.CreateUser(s.changeCtx(r), t.ID, req.Email, hash, tenant.Role(req.Role))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, userJSON{ID: u.ID, Tenant: string(t.Slug), Email: u.Email, Role: string(u.Role)})
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	p := mustPrincipal(r)
	t, err := s.visibleTenant(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.decide(r, p, t, policy.UsersList, policy.ControlResource(string(t.ID), policy.KindUser, ""), nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := postgres.UserFilter{After: q.Get("after")}
	if len(f.After) > postgres.MaxEmail || !utf8.ValidString(f.After) || strings.ContainsRune(f.After, 0) {
		s.writeError(w, r, fault.Errorf(fault.Invalid, "invalid_parameter", "after must be an email: UTF-8, at most %d bytes.", postgres.MaxEmail))
		return
	}
	if f.Limit, err = pageLimit(q); err != nil {
		s.writeError(w, r, err)
		return
	}
	us, err := s.pg.FindUsers(r.Context(), t.ID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]userJSON, 0, len(us))
	for _, u := range us {
		out = append(out, userJSON{ID: u.ID, Tenant: string(t.Slug), Email: u.Email, Role: string(u.Role)})
	}
	writeJSON(w, http.StatusOK, out)
}

// pageLimit reads a list's optional limit parameter: 1 to 1000, and 0
// (the list's default, 1000) when it is absent.
func pageLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, fault.E(fault.Invalid, "invalid_parameter", "limit must be between 1 and 1000.")
	}
	return n, nil
}
