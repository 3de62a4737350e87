package httpapi

import (
	"net/http"
	"time"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	b, err := s.auth.JWKS(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(b)
}

type loginRequest struct {
	Tenant   string `json:"tenant"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// errLogin is the one answer to every failed login: unknown tenant,
// unknown user, wrong password.
var errLogin = fault.E(fault.Unauthenticated, "invalid_credentials", "The tenant, email or password is not correct.")

// login answers every failure the same way and spends the same work on
// unknown users as on known ones (a dummy argon2id check); the hasher
// bounds how many hashes run at once.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	// A source past its share of denials, or of failed logins, gets no
	// more password checks: each costs tens of milliseconds of CPU, which
	// the tenants' requests need.
	if s.refuseIfOver(w, r, &s.anon, errLogin.Code) {
		return
	}
	// Logins in flight count against the share of failed logins, so that
	// a flood of them cannot all pass before the first has failed; only
	// a login that does not succeed takes from it.
	done, ok := s.beginLogin(w, r)
	if !ok {
		return
	}
	failed := true
	defer func() { done(failed) }()
	var req loginRequest
	if err := decodeBody(w, r, s.maxBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Password == "" || req.Email == "" || req.Tenant == "" {
		s.writeError(w, r, fault.E(fault.Invalid, "invalid_body", `"tenant", "email" and "password" are required.`))
		return
	}
	// Past the server's budget of password checks, or the share of it
	// that logins naming this tenant get, every login gets the same 503,
	// whichever user it names and whatever its password: no lookup, no
	// check. It is not a failed login.
	if !s.loginCheck(w, r, req.Tenant) {
		failed = false
		// It takes from the source's share of denials, though, so that
		// one address sending logins faster than the checks can run
		// soon gets 429 too_many_refusals, held, before it costs a body
		// read and a budget lookup each.
		s.anon.spend(sourceIP(r), time.Now())
		return
	}
	ctx := r.Context()
	slug, slugErr := tenant.ParseSlug(req.Tenant)
	var u *postgres.User
	if slugErr == nil {
		if found, err := s.pg.FindUserForLogin(ctx, slug, req.Email); err == nil {
			u = found
		} else if fault.KindOf(err) != fault.NotFound {
			s.writeError(w, r, err)
			return
		}
	}
	if u == nil {
		if err := s.hasher.DummyCheck(ctx, req.Password); err != nil && fault.KindOf(err) != fault.Invalid {
			failed = !hashingDown(err)
			s.writeError(w, r, err)
			return
		}
		s.writeError(w, r, errLogin)
		return
	}
	ok, err := s.hasher.Check(ctx, u.PasswordHash, req.Password)
	if err != nil && fault.KindOf(err) != fault.Invalid {
		failed = !hashingDown(err)
		s.writeError(w, r, err)
		return
	}
	if !ok {
		s.writeError(w, r, errLogin)
		return
	}
	t, err := s.pg.FindTenantBySlug(ctx, slug, false)
	if err != nil {
		s.writeError(w, r, errLogin)
		return
	}
	failed = false
	tok, exp, err := s.auth.IssueUserToken(ctx, u, t)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(time.Until(exp).Seconds())})
}

// hashingDown reports whether a password check could not run because
// the hasher is unavailable (its process is being restarted): the
// login's 503 is the server's failure, not the client's, and takes
// nothing from the address's share of failed logins, whoever it names.
func hashingDown(err error) bool { return fault.KindOf(err) == fault.Unavailable }

type vendRequest struct {
	Token string `json:"token"`
}

type vendResponse struct {
	Context   string `json:"context"`
	ExpiresIn int64  `json:"expires_in"`
	// Schema is where the tenant's tables are: "app" for the pool, the
	// silo's schema otherwise. Functions qualify table names with it.
	Schema string `json:"schema"`
	Tenant string `json:"tenant"`
	// Limits are the tenant's plan's bounds on one statement, for the
	// function to apply to its own transactions (bulkhead.WithStatementTimeout
	// and WithParallelWorkers in Go): nothing enforces them on a function
	// but itself, and the watchdog's statement limit.
	Limits vendLimits `json:"limits"`
}

type vendLimits struct {
	StatementTimeoutMS int64 `json:"statement_timeout_ms"`
	ParallelWorkers    int   `json:"parallel_workers"`
}

var errFunctionAuth = fault.E(fault.Unauthenticated, "invalid_function_credential", "The function credential is not valid.")

// vendContext serves functions, not end users: the caller authenticates
// with its function credential, and the context it gets is bound (aud) to
// that function's own login role, so it is useless under any other.
func (s *Server) vendContext(w http.ResponseWriter, r *http.Request) {
	// A source past its share of denials gets no more credential lookups.
	if s.refuseIfOver(w, r, &s.anon, errFunctionAuth.Code) {
		return
	}
	ftok, err := identity.ExtractBearer(r.Header)
	if err != nil {
		s.writeError(w, r, errFunctionAuth)
		return
	}
	fn, err := s.pg.FindFunctionByToken(r.Context(), ftok)
	if err != nil {
		s.writeError(w, r, errFunctionAuth)
		return
	}
	var req vendRequest
	if err := decodeBody(w, r, s.maxBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.auth.Verify(r.Context(), req.Token)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.Platform {
		s.writeError(w, r, fault.E(fault.Denied, "tenant_token_required", "A platform-admin token carries no tenant."))
		return
	}
	// A context vended for a tenant's user is that tenant's traffic (a
	// function asks for one per request it serves): it takes a token from
	// the tenant's plan bucket, as a data request does.
	t, ok := s.admitTenant(w, r, p)
	if !ok {
		return
	}
	// Isolation: Mint's default scope is what the tenant's policies allow on
	// every tenant table, so a function cannot insert, update or delete
	// through direct SQL what the data API would refuse. (Reads need only a
	// valid context: policies.md says so.)
	sc, err := s.db.Mint(r.Context(), p, bulkhead.MintOptions{Audience: fn.LoginRole, RequestID: requestIDFrom(r.Context())})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	schema := "app"
	if sc.Placement != "pool" {
		schema = sc.Placement
	}
	lim := s.quota.limit(t)
	writeJSON(w, http.StatusOK, vendResponse{Context: sc.Token, ExpiresIn: int64(time.Until(sc.Expires).Seconds()), Schema: schema, Tenant: string(p.Tenant),
		Limits: vendLimits{StatementTimeoutMS: lim.StatementTimeout.Milliseconds(), ParallelWorkers: lim.ParallelWorkers}})
}
