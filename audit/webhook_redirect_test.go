package audit

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A receiver that answers 302 (a moved endpoint, a login page, a proxy)
// never gets the alarm: Go's client turns the POST into a bodiless GET,
// the GET answers 200, and the delivery counts as done, with no retry and
// no "alarm webhook failed" log. docs/audit.md: "any status from 300 up
// ... counts as a failure".
// TestWebhookRedirectIsNotDelivery: a receiver that redirects has not
// received the alarm (Go would have resent the POST as a bodiless GET and
// called a 200 to that delivered); the sink retries and the body never
// goes to the redirect's target.
func TestWebhookRedirectIsNotDelivery(t *testing.T) {
	var posts, gets, hooks atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		hooks.Add(1)
		http.Redirect(w, r, "/moved", http.StatusFound)
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && len(b) > 0 {
			posts.Add(1)
		} else {
			gets.Add(1)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	w := &WebhookSink{URL: srv.URL + "/hook", Secret: []byte("0123456789abcdef"), Attempts: 3, Backoff: time.Millisecond}
	w.deliver(context.Background(), []byte(`{"id":"denial_burst:ip:1.2.3.4","firing":true}`))
	if posts.Load() != 0 || gets.Load() != 0 {
		t.Fatalf("the redirect was followed: %d POSTs and %d GETs reached its target", posts.Load(), gets.Load())
	}
	if hooks.Load() != 3 {
		t.Fatalf("%d attempts at the receiver, want 3: a redirect is a failure, retried", hooks.Load())
	}
}
