package probe_test

// Deliberately vulnerable (and deliberately safe) APIs, and the
// probe's verdicts on them.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-dev/bulkhead/verify/probe"
)

// rnote is a note of the tricky server.
type rnote struct {
	ID       any    `json:"id"`
	TenantID string `json:"tenant_id"`
	Title    string `json:"title"`
	Body     string `json:"body,omitempty"`
	ParentID string `json:"parent_id,omitempty"`
	Status   string `json:"status,omitempty"`
}

// ropts are the behaviours of the tricky server.
type ropts struct {
	// perTenantIDs: ids are 1, 2, 3… per tenant (like issue numbers);
	// every lookup is scoped to the caller's tenant, so the API is safe.
	perTenantIDs bool
	// echoClaims: a refused token's 401 names the tenant claim it holds.
	echoClaims bool
	// listPage: GET /notes returns only the first listPage notes, oldest
	// first (0: all).
	listPage int
	// patch204Leak: PATCH /notes/{id} does not filter by tenant and
	// answers 204.
	patch204Leak bool
	// prefixed: ids are "note_<24 hex>", validated by format; parent_id
	// is never looked up (no existence check at all, like a soft link).
	prefixed bool
	// xTenant: an X-Tenant-Id header overrides the token's tenant.
	xTenant bool
	// plantBug: a tenant_id in the create body is trusted.
	plantBug bool
	// noItemGet: there is no GET /notes/{id}.
	noItemGet bool
}

type rserver struct {
	ns    *notesServer // for its token minting and verification
	o     ropts
	mu    sync.Mutex
	notes []*rnote
	seq   map[string]int
}

func newTrickyServer(t *testing.T, o ropts) (*rserver, *httptest.Server) {
	t.Helper()
	s := &rserver{ns: &notesServer{key: []byte("notes-test-key-0123456789abcdef")}, o: o, seq: map[string]int{}}
	m := http.NewServeMux()
	m.HandleFunc("GET /notes", s.authed(s.list))
	m.HandleFunc("POST /notes", s.authed(s.create))
	if !o.noItemGet {
		m.HandleFunc("GET /notes/{id}", s.authed(s.get))
	}
	m.HandleFunc("PATCH /notes/{id}", s.authed(s.patch))
	m.HandleFunc("DELETE /notes/{id}", s.authed(s.delete))
	hs := httptest.NewServer(m)
	t.Cleanup(hs.Close)
	return s, hs
}

func (s *rserver) authed(h func(w http.ResponseWriter, r *http.Request, tenant string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tenant, ok := s.ns.tenantOf(r)
		if !ok {
			msg := map[string]string{"error": "invalid token"}
			if s.o.echoClaims {
				// A common "helpful" message: the unverified claim the
				// token carried, which the caller sent itself.
				if parts := strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "."); len(parts) == 3 {
					var c struct {
						TenantID string `json:"tenant_id"`
					}
					if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(b, &c) == nil {
						msg["error"] = "invalid token for tenant " + c.TenantID
					}
				}
			}
			writeJSON(w, http.StatusUnauthorized, msg)
			return
		}
		if s.o.xTenant {
			if v := r.Header.Get("X-Tenant-Id"); v != "" {
				tenant = v
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		h(w, r, tenant)
	}
}

func (s *rserver) newID(tenant string) any {
	switch {
	case s.o.perTenantIDs:
		s.seq[tenant]++
		return s.seq[tenant]
	case s.o.prefixed:
		b := make([]byte, 12)
		rand.Read(b)
		return "note_" + hex.EncodeToString(b)
	}
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func validID(s *rserver, id string) bool {
	if s.o.prefixed {
		h, ok := strings.CutPrefix(id, "note_")
		_, err := hex.DecodeString(h)
		return ok && len(h) == 24 && err == nil
	}
	return true
}

// find looks id up in the caller's tenant (or everywhere when all).
func (s *rserver) find(id, tenant string, all bool) *rnote {
	for _, n := range s.notes {
		if fmt.Sprint(n.ID) == id && (all || n.TenantID == tenant) {
			return n
		}
	}
	return nil
}

func (s *rserver) list(w http.ResponseWriter, r *http.Request, tenant string) {
	out := []*rnote{}
	for _, n := range s.notes { // oldest first
		if n.TenantID != tenant {
			continue
		}
		out = append(out, n)
	}
	if s.o.listPage > 0 && len(out) > s.o.listPage {
		out = out[:s.o.listPage]
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *rserver) create(w http.ResponseWriter, r *http.Request, tenant string) {
	var in struct {
		Title    *string `json:"title"`
		Body     string  `json:"body"`
		ParentID string  `json:"parent_id"`
		Status   string  `json:"status"`
		TenantID string  `json:"tenant_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Title == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "title is required"})
		return
	}
	if in.ParentID != "" {
		if !validID(s, in.ParentID) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "parent_id is malformed"})
			return
		}
		if !s.o.prefixed && s.find(in.ParentID, tenant, false) == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "no such parent note"})
			return
		}
	}
	if in.TenantID != "" && in.TenantID != tenant {
		if !s.o.plantBug {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "tenant_id is not yours"})
			return
		}
		tenant = in.TenantID
	}
	n := &rnote{ID: s.newID(tenant), TenantID: tenant, Title: *in.Title, Body: in.Body, ParentID: in.ParentID, Status: in.Status}
	s.notes = append(s.notes, n)
	writeJSON(w, http.StatusCreated, n)
}

func (s *rserver) get(w http.ResponseWriter, r *http.Request, tenant string) {
	id := r.PathValue("id")
	if !validID(s, id) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed id"})
		return
	}
	n := s.find(id, tenant, false)
	if n == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such note"})
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *rserver) patch(w http.ResponseWriter, r *http.Request, tenant string) {
	n := s.find(r.PathValue("id"), tenant, s.o.patch204Leak)
	if n == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such note"})
		return
	}
	var in struct{ Title, Body, Status *string }
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
	if in.Status != nil {
		n.Status = *in.Status
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *rserver) delete(w http.ResponseWriter, r *http.Request, tenant string) {
	n := s.find(r.PathValue("id"), tenant, false)
	if n == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such note"})
		return
	}
	s.notes = slices.DeleteFunc(s.notes, func(x *rnote) bool { return x == n })
	w.WriteHeader(http.StatusNoContent)
}

func (s *rserver) seed(tenant string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range n {
		s.notes = append(s.notes, &rnote{ID: s.newID(tenant), TenantID: tenant, Title: "seed " + strconv.Itoa(i)})
	}
}

func loadDoc(t *testing.T, doc string) *probe.API {
	t.Helper()
	api, err := probe.LoadOpenAPI(t.Context(), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return api
}

const (
	trickyTenantA = "org-aaaaaaaaaaaa"
	trickyTenantB = "org-bbbbbbbbbbbb"
)

func runTricky(t *testing.T, s *rserver, hs *httptest.Server, api *probe.API) *probe.Report {
	t.Helper()
	rep, err := probe.Run(t.Context(), probe.Config{BaseURL: hs.URL, API: api,
		TokenA: s.ns.token(trickyTenantA, "alice@a.test"), TokenB: s.ns.token(trickyTenantB, "bob@b.test")})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func verdictOf(rep *probe.Report, name string) (probe.Result, bool) {
	for _, r := range rep.Results {
		if r.Name() == name {
			return r, true
		}
	}
	return probe.Result{}, false
}

// notesNoFilters is notes.yaml's API with a list that has no query
// parameters, and a PATCH that takes only a status enum and a boolean.
const notesNoFilters = `
openapi: 3.0.3
info: {title: Notes2, version: 1.0.0}
paths:
  /notes:
    get:
      responses: {'200': {description: ok}}
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [title]
              properties:
                title: {type: string}
                status: {type: string, enum: [open, closed]}
      responses: {'201': {description: created}}
  /notes/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    get:
      responses: {'200': {description: ok}}
    patch:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                status: {type: string, enum: [open, closed]}
                archived: {type: boolean}
      responses: {'204': {description: changed}}
    delete:
      responses: {'204': {description: deleted}}
`

// --- false positives ----------------------------------------------------

// A safe API whose 401 names the tenant claim of the refused token: A sent
// that value itself (in the forged token), so it is no leak.
func TestRefusalEchoingTokenClaimIsNotALeak(t *testing.T) {
	s, hs := newTrickyServer(t, ropts{echoClaims: true})
	rep := runTricky(t, s, hs, mustLoadNotes(t))
	if got := leaked(rep); len(got) != 0 {
		t.Errorf("safe API (every forged token refused with 401) reported as leaking: %v\n%s", got, textOf(rep))
	}
}

// A safe API with per-tenant sequential ids (issue numbers): A's own
// note 1 is not B's note 1.
func TestPerTenantIDsAreNotALeak(t *testing.T) {
	s, hs := newTrickyServer(t, ropts{perTenantIDs: true})
	s.seed(trickyTenantA, 3) // A's test tenant already has a few notes
	rep := runTricky(t, s, hs, mustLoadNotes(t))
	if got := leaked(rep); len(got) != 0 {
		t.Errorf("safe API with per-tenant ids reported as leaking: %v\n%s", got, textOf(rep))
	}
}

// A safe API with prefixed ids ("note_…") that does not check references
// at all but validates their format: the decoy "zz…" is malformed, so the
// reference check calls the format check an existence oracle.
func TestPrefixedIDsUncheckedReferenceIsNotALeak(t *testing.T) {
	s, hs := newTrickyServer(t, ropts{prefixed: true})
	// notes.yaml, with parent_id a plain string rather than a uuid
	b, err := os.ReadFile("testdata/notes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(b), "format: uuid\n          description: another note", "description: another note", 1)
	rep := runTricky(t, s, hs, loadDoc(t, doc))
	if got := leaked(rep); len(got) != 0 {
		t.Errorf("API that accepts any well-formed parent id reported as leaking: %v\n%s", got, textOf(rep))
	}
	if r, ok := verdictOf(rep, "read"); ok && strings.Contains(r.Reason, "tells that B's object exists") {
		t.Errorf("read: 404 for B's id vs 400 for a malformed decoy is not an existence oracle: %s", r.Reason)
	}
}

// --- false negatives ----------------------------------------------------

// A PATCH that does not filter by tenant, on an API whose PATCH body has
// no free-text field (a status enum and a flag): A changes B's note (204
// for B's id, 404 for a missing one), but the probe's body sets the value
// B's canary already has, so B's object "is unchanged": PASS.
func TestNoOpLeakyPatchIsNotPassed(t *testing.T) {
	s, hs := newTrickyServer(t, ropts{patch204Leak: true})
	rep := runTricky(t, s, hs, loadDoc(t, notesNoFilters))
	r, ok := verdictOf(rep, "update")
	if !ok {
		t.Fatalf("no update check\n%s", textOf(rep))
	}
	if r.Verdict == probe.Pass {
		t.Errorf("update: PATCH of B's note answered %d (a missing note gets 404), verdict %s: %s\n%s",
			r.Status, r.Verdict, r.Reason, textOf(rep))
	}
}

// An API that lets an X-Tenant-Id header pick the tenant. The docs list
// what the probe tries; a header override is not among the limitations.
func TestTenantHeaderOverride(t *testing.T) {
	s, hs := newTrickyServer(t, ropts{xTenant: true})
	rep := runTricky(t, s, hs, mustLoadNotes(t))
	if !rep.Failed() {
		t.Errorf("API that honours X-Tenant-Id: every check passed\n%s", textOf(rep))
	}
	// What A created in B's tenant through the header is cleaned up too.
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.notes) != 0 {
		t.Errorf("%d notes left after the clean-up; notes: %q", len(s.notes), rep.Notes)
	}
}

// A create that trusts tenant_id in the body, on a tenant B that already
// has a page of notes (lists are oldest first, 5 a page): the planted note
// is on page two of B's list, so "B's list then holds the object A
// created" never sees it, and the verdict is PASS.
func TestPlantBeyondFirstPageIsNotPassed(t *testing.T) {
	s, hs := newTrickyServer(t, ropts{plantBug: true, listPage: 5})
	s.seed(trickyTenantB, 5)
	rep := runTricky(t, s, hs, mustLoadNotes(t))
	r, _ := verdictOf(rep, "plant")
	if r.Verdict == probe.Pass {
		t.Errorf("plant: A's note was created in B's tenant, verdict %s: %s\n%s", r.Verdict, r.Reason, textOf(rep))
	}
}

// A safe API without GET /notes/{id}, whose list is paged (oldest first,
// 5 a page), for a tenant B that already has a page of notes: B's canary
// is never on B's first page, so every write is judged "B's object is
// gone".
func TestPagedListWithoutItemReadIsNotALeak(t *testing.T) {
	s, hs := newTrickyServer(t, ropts{noItemGet: true, listPage: 5})
	s.seed(trickyTenantB, 5)
	b, err := os.ReadFile("testdata/notes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(b), "    get:\n      operationId: getNote", "    x-get:\n      operationId: getNote", 1)
	if doc == string(b) {
		t.Fatal("could not remove GET /notes/{id}")
	}
	rep := runTricky(t, s, hs, loadDoc(t, doc))
	if got := leaked(rep); len(got) != 0 {
		t.Errorf("safe API reported as leaking: %v\n%s", got, textOf(rep))
	}
}
