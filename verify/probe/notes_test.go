package probe_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// bugs are the mistakes the notes server can be made to have, one per
// check it should be caught by.
type bugs struct {
	itemRead   bool // GET /notes/{id} does not filter by tenant
	list       bool // GET /notes does not filter by tenant
	algNone    bool // a token with alg "none" is accepted unsigned
	unverified bool // the signature is required but never checked
	reference  bool // parent_id is looked up in every tenant
	writes     bool // PATCH and DELETE /notes/{id} do not filter by tenant
	plant      bool // a tenant_id in the body is trusted
}

type note struct {
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	Title    string `json:"title"`
	Body     string `json:"body,omitempty"`
	ParentID string `json:"parent_id,omitempty"`
}

// notesServer is a toy multi-tenant API that testdata/notes.yaml
// describes. Its tokens are HS256 JWTs with kid "k1" and the tenant in
// tenant_id.
type notesServer struct {
	bugs  bugs
	key   []byte
	mu    sync.Mutex
	notes map[string]*note
	seen  int    // requests answered
	hook  func() // called before each request is answered, under mu
}

func newNotesServer(t *testing.T, b bugs) (*notesServer, *httptest.Server) {
	t.Helper()
	s := &notesServer{bugs: b, key: []byte("notes-test-key-0123456789abcdef"), notes: map[string]*note{}}
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	m.HandleFunc("GET /notes", s.authed(s.list))
	m.HandleFunc("POST /notes", s.authed(s.create))
	m.HandleFunc("GET /notes/{id}", s.authed(s.get))
	m.HandleFunc("PATCH /notes/{id}", s.authed(s.patch))
	m.HandleFunc("DELETE /notes/{id}", s.authed(s.delete))
	hs := httptest.NewServer(m)
	t.Cleanup(hs.Close)
	return s, hs
}

func b64(v any) string {
	j, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(j)
}

// token issues a token for a user of tenant.
func (s *notesServer) token(tenant, sub string) string {
	now := time.Now()
	in := b64(map[string]any{"alg": "HS256", "typ": "JWT", "kid": "k1"}) + "." +
		b64(map[string]any{"sub": sub, "tenant_id": tenant, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// tenantOf verifies the bearer token and returns its tenant.
func (s *notesServer) tenantOf(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	parts := strings.Split(tok, ".")
	if !ok || len(parts) != 3 {
		return "", false
	}
	var h struct{ Alg, Kid string }
	var c struct {
		TenantID string `json:"tenant_id"`
		Exp      int64  `json:"exp"`
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(pb, &c) != nil {
		return "", false
	}
	switch {
	case h.Alg == "none" && s.bugs.algNone:
		// The bug: an unsigned token is taken at its word.
	case h.Alg != "HS256" || h.Kid != "k1":
		return "", false
	case s.bugs.unverified:
		// The bug: a signature must be there, but nobody checks it.
		if parts[2] == "" {
			return "", false
		}
	default:
		mac := hmac.New(sha256.New, s.key)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			return "", false
		}
	}
	if c.Exp <= time.Now().Unix() || c.TenantID == "" {
		return "", false
	}
	return c.TenantID, true
}

func (s *notesServer) authed(h func(w http.ResponseWriter, r *http.Request, tenant string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tenant, ok := s.tenantOf(r)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid token"})
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.seen++
		if s.hook != nil {
			s.hook()
		}
		h(w, r, tenant)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *notesServer) list(w http.ResponseWriter, r *http.Request, tenant string) {
	out := []*note{}
	q := r.URL.Query()
	for _, n := range s.notes {
		if n.TenantID != tenant && !s.bugs.list {
			continue
		}
		if v := q.Get("title"); v != "" && n.Title != v {
			continue
		}
		if v := q.Get("parent_id"); v != "" && n.ParentID != v {
			continue
		}
		out = append(out, n)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *notesServer) find(r *http.Request, tenant string, bug bool) *note {
	n := s.notes[r.PathValue("id")]
	if n == nil || (n.TenantID != tenant && !bug) {
		return nil
	}
	return n
}

func (s *notesServer) create(w http.ResponseWriter, r *http.Request, tenant string) {
	var in struct {
		Title    *string `json:"title"`
		Body     string  `json:"body"`
		ParentID string  `json:"parent_id"`
		TenantID *string `json:"tenant_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Title == nil || *in.Title == "" || len(*in.Title) > 200 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "title is required"})
		return
	}
	owner := tenant
	if in.TenantID != nil && *in.TenantID != tenant {
		if !s.bugs.plant {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "tenant_id is not yours"})
			return
		}
		owner = *in.TenantID
	}
	if in.ParentID != "" {
		p := s.notes[in.ParentID]
		if p == nil || (p.TenantID != tenant && !s.bugs.reference) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "no such parent note"})
			return
		}
	}
	n := &note{ID: uuid.NewString(), TenantID: owner, Title: *in.Title, Body: in.Body, ParentID: in.ParentID}
	s.notes[n.ID] = n
	w.Header().Set("Location", "/notes/"+n.ID)
	writeJSON(w, http.StatusCreated, n)
}

func (s *notesServer) get(w http.ResponseWriter, r *http.Request, tenant string) {
	n := s.find(r, tenant, s.bugs.itemRead)
	if n == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such note"})
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *notesServer) patch(w http.ResponseWriter, r *http.Request, tenant string) {
	n := s.find(r, tenant, s.bugs.writes)
	if n == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such note"})
		return
	}
	var in struct{ Title, Body *string }
	if json.NewDecoder(r.Body).Decode(&in) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad body"})
		return
	}
	if in.Title != nil {
		n.Title = *in.Title
	}
	if in.Body != nil {
		n.Body = *in.Body
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *notesServer) delete(w http.ResponseWriter, r *http.Request, tenant string) {
	n := s.find(r, tenant, s.bugs.writes)
	if n == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such note"})
		return
	}
	delete(s.notes, n.ID)
	w.WriteHeader(http.StatusNoContent)
}
