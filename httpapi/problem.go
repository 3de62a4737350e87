package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/fault"
)

// statusOf is the single table from fault.Kind to HTTP status.
var statusOf = map[fault.Kind]int{
	fault.Internal:         http.StatusInternalServerError,
	fault.Invalid:          http.StatusBadRequest,
	fault.Unauthenticated:  http.StatusUnauthorized,
	fault.Denied:           http.StatusForbidden,
	fault.NotFound:         http.StatusNotFound,
	fault.Conflict:         http.StatusConflict,
	fault.TooLarge:         http.StatusRequestEntityTooLarge,
	fault.Unavailable:      http.StatusServiceUnavailable,
	fault.TooMany:          http.StatusTooManyRequests,
	fault.Canceled:         http.StatusServiceUnavailable,
	fault.MethodNotAllowed: http.StatusMethodNotAllowed,
}

// Problem is an RFC 9457 problem details body. It also carries the fields
// PostgREST clients read (message, code, details, hint), so
// @supabase/postgrest-js surfaces our errors as its own.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Details   any    `json:"details"`
	Hint      any    `json:"hint"`
	RequestID string `json:"request_id,omitempty"`
}

// writeError answers with err as problem+json. Internal errors get a
// generic message and are logged once, here, with the request id; the
// cause of any error is never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	k := fault.KindOf(err)
	status := statusOf[k]
	code := fault.CodeOf(err)
	if isDenial(status) {
		// Past its source's share, a request without credentials is not
		// refused (and audited) one more time but told to slow down.
		if retry, ok := s.anonymousShare(r, code); !ok {
			err, k, status, code = errTooManyRefusals, fault.TooMany, http.StatusTooManyRequests, fault.CodeOf(errTooManyRefusals)
			setRetryAfter(w, retry)
		}
	}
	rid := requestIDFrom(r.Context())
	switch {
	case k == fault.Internal:
		s.log.LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("request_id", rid), slog.String("err", err.Error()))
	case k == fault.Denied && code == "row_security_violation":
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "row security violation", slog.String("request_id", rid), slog.String("err", err.Error()))
	case k == fault.Unauthenticated:
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "unauthenticated", slog.String("request_id", rid), slog.String("err", err.Error()))
	default:
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request failed", slog.String("request_id", rid), slog.String("err", err.Error()))
	}
	if k == fault.Canceled && errors.Is(r.Context().Err(), context.Canceled) {
		return // the client is gone: nobody reads an answer
	}
	// Denials are audited, and answered only once their event is durable.
	if isDenial(status) {
		if aerr := s.record(r, event(r, audit.Deny, code, status)); aerr != nil {
			k, status, code, err = fault.Unavailable, http.StatusServiceUnavailable, "audit_unavailable", aerr
		}
	}
	sendProblem(w, k, status, code, fault.MessageOf(err), rid)
}

// writeProblem answers with err as problem+json, for middleware that runs
// outside a Server (PlanLimits): no audit event, and the cause of an
// error is never sent. An internal error is logged with slog's default
// logger, since the answer says nothing of it.
func writeProblem(w http.ResponseWriter, r *http.Request, err error) {
	k := fault.KindOf(err)
	if k == fault.Internal {
		slog.Default().LogAttrs(r.Context(), slog.LevelError, "internal error", slog.String("err", err.Error()))
	}
	if k == fault.Canceled && errors.Is(r.Context().Err(), context.Canceled) {
		return
	}
	sendProblem(w, k, statusOf[k], fault.CodeOf(err), fault.MessageOf(err), "")
}

// sendProblem writes a problem of kind k.
func sendProblem(w http.ResponseWriter, k fault.Kind, status int, code, msg, rid string) {
	if k == fault.Canceled {
		// The request's own deadline passed (or the database gave up).
		status, code, msg = http.StatusServiceUnavailable, "timeout", "The request took too long and was stopped; nothing it started was kept."
	}
	p := Problem{Type: "https://bulkhead.dev/problems/" + code, Title: http.StatusText(status), Status: status,
		Detail: msg, Code: code, Message: msg, RequestID: rid}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bulkhead"`)
	}
	if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSONStatus(w, status, "application/problem+json", p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONStatus(w, status, "application/json", v)
}

func writeJSONStatus(w http.ResponseWriter, status int, ctype string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","status":500}`)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// requestInfo is what the outermost middleware (requestID) notes for the
// rest of a request, in one context value: its id, the client's address
// (see clientAddr), worked out once, and the deciding statement of its
// policy decision, for its audit event.
type requestInfo struct {
	id       string
	client   netip.Addr
	decision decisionNote
}

type requestInfoKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return i
}

func requestIDFrom(ctx context.Context) string {
	if i := requestInfoFrom(ctx); i != nil {
		return i.id
	}
	return ""
}

// isDenial says whether an answer is a denial, which is audited.
func isDenial(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound
}
