package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/strictjson"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/rest"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// Config configures New.
type Config struct {
	DB   *bulkhead.DB // a minter
	Auth *bulkhead.Auth
	// Hasher hashes passwords; nil means a default identity.Hasher.
	Hasher *identity.Hasher
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; zero means 1 MiB.
	MaxBodyBytes int64
	// RequestTimeout bounds each request's work; zero means 30 seconds.
	RequestTimeout time.Duration
	// CORSOrigins are the exact origins allowed to call the API from a
	// browser. None by default; never a wildcard.
	CORSOrigins []string
	// MaxRows caps rows returned by one read and objects in one insert.
	MaxRows int
	// Metrics, when set, counts requests, denials and latency.
	Metrics *Metrics
	// Alarms, when set, is served at GET /v1/alarms.
	Alarms *audit.Alarms
	// Limits per plan for the data API; nil means DefaultLimits.
	Limits map[string]Limit
	// TenantShare is the most data transactions one tenant may have at
	// once, whatever its plan allows: 0 means half the app pool's
	// connections, so that one tenant can never hold them all; a negative
	// value leaves it to the plan (benchmarks use it to lift every limit).
	TenantShare int
	// RefusalPause is how long a 429 is held before it is sent to a tenant
	// that was already refused within the last second (never longer than
	// its Retry-After): a client that retries at once instead of waiting
	// is slowed, so a flood's refusals cost the server little. At most 64
	// of one tenant's refusals are held at once, 1,024 in all, and held
	// refusals are let go together every 25ms. 0 means 200ms; a negative
	// value sends every refusal at once.
	RefusalPause time.Duration
	// AnonymousRefusals bounds, per source address (per /64 for IPv6), the
	// denials (401, 403, 404, each audited before it is answered) of
	// requests without valid credentials: past it they get
	// 429 too_many_refusals, held like a tenant's repeated refusals, and
	// are counted into one event per source written by FlushRefusals, and
	// the source's tokens that the server has not seen pass get the same
	// 429 without a signature check. The zero value means
	// DefaultAnonymousRefusals.
	AnonymousRefusals Bucket
	// AnonymousRefusalsTotal bounds the same denials for all sources
	// together, so that a flood from many addresses, each within its
	// share, cannot make the server audit (and check the tokens of) as
	// many requests as it sends: past it, they are counted under one
	// overflow tally, and tokens the server has not seen pass get 429
	// too_many_refusals unchecked, whatever their address. Logins are
	// bounded by FailedLogins and PasswordChecks instead. The zero value
	// means DefaultAnonymousRefusalsTotal.
	AnonymousRefusalsTotal Bucket
	// FailedLogins bounds, per source address, the failed logins (each a
	// password check of tens of milliseconds of CPU): past it, logins from
	// that address get 429 too_many_refusals before any password is
	// checked, counted like the anonymous refusals. The zero value means
	// DefaultFailedLogins.
	FailedLogins Bucket
	// PasswordChecks bounds, for the whole server, the password checks
	// and hashes it starts (logins, and users created with a password),
	// each tens of milliseconds of CPU: past it, 503 password_checks_busy
	// with Retry-After, before any password is checked. The shares above
	// bound each address; this bounds a flood from many addresses, which
	// would otherwise keep the hasher's slots (half the CPUs) busy for as
	// long as it lasts. The users one tenant creates may take a quarter of
	// it at most; past that share, 429 too_many_new_passwords. Logins
	// naming one tenant (by the name they give, whether or not it exists)
	// may take another quarter at most; past that share, 503
	// tenant_logins_busy, so that a flood of logins naming one tenant
	// leaves the rest of the budget to the others. The zero value means
	// DefaultPasswordChecks().
	PasswordChecks Bucket
	// TrustedProxies are the reverse proxies and load balancers in front of
	// the server. A request whose TCP peer is one of them is put down to
	// the rightmost address in X-Forwarded-For that is not: for the
	// shares above, aws:SourceIp in policies, and source_ip in the audit
	// trail. Empty, the default, never reads X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// MoveSettle is how long a move through POST /v1/tenants/{id}/move
	// keeps the tenant stopped before it resumes in its new place
	// (postgres.MoveOptions.Settle): at least postgres.MoveClockSkew
	// longer than every server's tenant cache. Zero means
	// postgres.DefaultMoveSettle.
	MoveSettle time.Duration
	// Audit records denials and control-plane changes; each is durable
	// before the answer is sent. Nil records nothing (data changes are
	// still recorded by the database's triggers).
	Audit *audit.Writer
}

// Server is the HTTP API.
type Server struct {
	db      *bulkhead.DB
	pg      *postgres.DB
	auth    *bulkhead.Auth
	hasher  *identity.Hasher
	log     *slog.Logger
	maxBody int64
	timeout time.Duration
	cors    []string
	builder rest.Builder
	tables  map[string]*rest.Table // the data API's allowlist, described from the pool schema
	mux     *http.ServeMux
	audit   *audit.Writer
	metrics *Metrics
	alarms  *audit.Alarms
	quota   limiters
	anon    anonTally
	logins  anonTally
	checks  *rate.Limiter // Config.PasswordChecks
	// loginShares is each tenant name's share of checks for logins.
	loginShares loginShares
	trusted     []netip.Prefix
	// anonHeld bounds the 429s held at once for sources without
	// credentials, apart from the tenants' (quota.held).
	anonHeld chan struct{}
	// moveSettle is Config.MoveSettle.
	moveSettle time.Duration
	// readiness is GET /readyz's last check; draining is set by Drain.
	readiness readiness
	draining  atomic.Bool
}

// New builds the server and describes the tenant tables it exposes.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DB == nil || cfg.DB.Postgres() == nil || cfg.Auth == nil {
		return nil, errors.New("httpapi: a minter DB and its Auth are required")
	}
	s := &Server{db: cfg.DB, pg: cfg.DB.Postgres(), auth: cfg.Auth, hasher: cfg.Hasher, log: cfg.Logger,
		maxBody: cfg.MaxBodyBytes, timeout: cfg.RequestTimeout, cors: cfg.CORSOrigins,
		builder: rest.Builder{MaxLimit: int64(cfg.MaxRows), MaxRows: cfg.MaxRows}, tables: map[string]*rest.Table{},
		audit: cfg.Audit, metrics: cfg.Metrics, alarms: cfg.Alarms, moveSettle: cfg.MoveSettle}
	if s.hasher == nil {
		s.hasher = &identity.Hasher{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody == 0 {
		s.maxBody = 1 << 20
	}
	if s.timeout == 0 {
		s.timeout = 30 * time.Second
	}
	s.quota.limits = cfg.Limits
	if s.quota.limits == nil {
		s.quota.limits = DefaultLimits
	}
	s.quota.pause, s.quota.held, s.quota.sleep = cfg.RefusalPause, make(chan struct{}, maxHeld), newReleases().sleep
	s.anonHeld = make(chan struct{}, maxHeld)
	if s.quota.pause == 0 {
		s.quota.pause = 200 * time.Millisecond
	}
	s.anon.bucket = cfg.AnonymousRefusals
	if s.anon.bucket == (Bucket{}) {
		s.anon.bucket = DefaultAnonymousRefusals
	}
	total := cfg.AnonymousRefusalsTotal
	if total == (Bucket{}) {
		total = DefaultAnonymousRefusalsTotal
	}
	s.anon.total = rate.NewLimiter(rate.Limit(total.Rate), total.Burst)
	s.trusted = cfg.TrustedProxies
	checks := cfg.PasswordChecks
	if checks == (Bucket{}) {
		checks = DefaultPasswordChecks()
	}
	s.checks = rate.NewLimiter(rate.Limit(checks.Rate), checks.Burst)
	s.quota.passwords = Bucket{Rate: checks.Rate / 4, Burst: max(1, checks.Burst/4)}
	s.loginShares.bucket = s.quota.passwords
	s.logins.bucket = cfg.FailedLogins
	if s.logins.bucket == (Bucket{}) {
		s.logins.bucket = DefaultFailedLogins
	}
	// Isolation: whatever its plan allows, one tenant holds at most half
	// of the app pool's connections, so the others always find some.
	switch {
	case cfg.TenantShare > 0:
		s.quota.share = cfg.TenantShare
	case cfg.TenantShare == 0:
		s.quota.share = max(1, int(s.pg.App().Config().MaxConns)/2)
	}
	for _, name := range postgres.TenantTableNames {
		cols, err := s.pg.DescribeTenantTable(ctx, name)
		if err != nil {
			return nil, err
		}
		t := &rest.Table{Schema: postgres.PoolSchema, Name: name, TenantColumn: "tenant_id", PrimaryKey: []string{"tenant_id", "id"}}
		for _, c := range cols {
			t.Columns = append(t.Columns, rest.Column{Name: c.Name, Type: c.Type, NotNull: c.NotNull, HasDefault: c.HasDefault})
		}
		s.tables[name] = t
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	allowed := map[string][]string{}
	handle := func(method, path string, h http.Handler) {
		m.Handle(method+" "+path, noteRoute(h))
		allowed[path] = append(allowed[path], method)
	}
	authed := func(h http.HandlerFunc) http.Handler { return s.authenticate(h) }
	handle("GET", "/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	handle("GET", "/readyz", http.HandlerFunc(s.ready))
	handle("GET", "/.well-known/jwks.json", http.HandlerFunc(s.jwks))
	handle("POST", "/v1/auth/token", http.HandlerFunc(s.login))
	handle("POST", "/v1/auth/context", http.HandlerFunc(s.vendContext))
	handle("POST", "/v1/tenants", authed(s.createTenant))
	handle("GET", "/v1/tenants", authed(s.listTenants))
	handle("POST", "/v1/tenants/batch", authed(s.createTenants))
	handle("GET", "/v1/tenants/{id}", authed(s.getTenant))
	handle("PATCH", "/v1/tenants/{id}", authed(s.updateTenant))
	handle("DELETE", "/v1/tenants/{id}", authed(s.deleteTenant))
	handle("POST", "/v1/tenants/{id}/move", authed(s.moveTenant))
	handle("POST", "/v1/tenants/{id}/users", authed(s.createUser))
	handle("GET", "/v1/tenants/{id}/users", authed(s.listUsers))
	handle("GET", "/v1/audit", authed(s.listAudit))
	handle("GET", "/v1/alarms", authed(s.listAlarms))
	handle("GET", "/v1/policies", authed(s.listPolicies))
	handle("PUT", "/v1/policies/{name}", authed(s.putPolicy))
	handle("DELETE", "/v1/policies/{name}", authed(s.deletePolicy))
	handle("POST", "/v1/policies/simulate", authed(s.simulatePolicy))
	for _, method := range []string{"GET", "POST", "PATCH", "DELETE"} {
		handle(method, "/rest/v1/{table}", authed(s.data))
	}
	// Any other method on a known path: 405 with Allow, as problem+json.
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		if slices.Contains(methods, "GET") {
			allow += ", HEAD"
		}
		notAllowed := func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			s.writeError(w, r, fault.Errorf(fault.MethodNotAllowed, "method_not_allowed", "%s is not allowed here; use %s.", r.Method, allow))
		}
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			if !slices.Contains(methods, method) {
				m.HandleFunc(method+" "+path, notAllowed)
			}
		}
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fault.E(fault.NotFound, "route_not_found", "No such endpoint."))
	})
	s.mux = m
}

// Handler returns the server's handler with its middleware.
func (s *Server) Handler() http.Handler {
	h := s.recoverer(s.corsHandler(s.limits(s.mux)))
	if s.metrics != nil {
		h = s.metrics.middleware(h)
	}
	return s.requestID(h)
}

// requestID gives every request a server-made id, returned in
// X-Request-Id. A client's X-Request-Id is never trusted.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [12]byte
		rand.Read(b[:])
		info := &requestInfo{id: hex.EncodeToString(b[:]), client: clientAddr(r, s.trusted)}
		w.Header().Set("X-Request-Id", info.id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic", "request_id", requestIDFrom(r.Context()), "panic", v, "stack", string(debug.Stack()))
				s.writeError(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limits bounds each request's time and body.
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
		defer cancel()
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// corsHandler allows the configured origins only.
func (s *Server) corsHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && slices.Contains(s.cors, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "Content-Range, X-Request-Id")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Prefer, Accept, Range, apikey, x-client-info, Accept-Profile, Content-Profile")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type principalKey struct{}

// authenticate verifies the bearer token; a request without a valid one
// gets 401 and goes no further. A tenant's user then takes a token from
// the tenant's bucket, whatever the endpoint, so that requests the server
// refuses (and audits) count against the plan as much as the ones it
// serves: past the plan's rate, 429 with Retry-After.
func (s *Server) authenticate(next http.Handler) http.Handler {
	verify := s.verifyToken(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An address past its share of denials, or any address while the
		// server is past its total, gets no signature checks for tokens
		// the server has not seen pass: each costs an Ed25519 check, and a
		// flood of new forged tokens would otherwise cost that much per
		// request whatever the shares say. Tokens it has seen pass (and
		// those it issued) are checked and served as always.
		if tok, err := identity.ExtractBearer(r.Header); err == nil && !s.auth.Recognized(tok) &&
			s.refuseIfOverAll(w, r, &s.anon, identity.ErrInvalidToken.Code) {
			return
		}
		verify.ServeHTTP(w, r)
	})
}

// verifyToken verifies the request's token, then takes the caller's
// tenant's token from its plan's bucket.
func (s *Server) verifyToken(next http.Handler) http.Handler {
	return bulkhead.Middleware(s.auth, s.writeError)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := tenant.FromContext(r.Context())
		if ok {
			notePrincipal(r, p)
		}
		if ok && !p.Platform {
			t, ok := s.admitTenant(w, r, p)
			if !ok {
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), callerTenantKey{}, t))
		}
		next.ServeHTTP(w, r)
	}))
}

// admitTenant finds p's tenant and takes a token from its plan's bucket.
// Past the plan, or when the tenant cannot be found, it answers the
// request (429 with Retry-After, or the error) and returns false.
func (s *Server) admitTenant(w http.ResponseWriter, r *http.Request, p tenant.Principal) (*tenant.Tenant, bool) {
	t, err := s.callerTenant(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	if retry, err := s.quota.admit(t); err != nil { //bulkhead:ok per-tenant counters keyed by the verified tenant UUID, no tenant data
		setRetryAfter(w, retry)
		s.writeError(w, r, err)
		return nil, false
	}
	return t, true
}

func mustPrincipal(r *http.Request) tenant.Principal {
	p, ok := tenant.FromContext(r.Context())
	if !ok {
		panic("httpapi: handler reached without a principal")
	}
	return p
}

// readBody reads a JSON request body, at most s.maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, fault.E(fault.Invalid, "unsupported_media_type", "The body must be application/json.")
		}
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fault.Errorf(fault.TooLarge, "body_too_large", "The body is larger than %d bytes.", limit)
		}
		return nil, fault.E(fault.Invalid, "invalid_body", "The body could not be read.")
	}
	return b, nil
}

// decodeBody decodes a JSON object body into v with exact key matching.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	b, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return fault.E(fault.Invalid, "invalid_body", "A JSON body is required.")
	}
	if err := strictjson.Decode(b, v); err != nil {
		return &fault.Error{Kind: fault.Invalid, Code: "invalid_body", Message: "The body is not valid: " + err.Error() + ".", Err: err}
	}
	return nil
}
