package httphandlers

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A fake handler in a test may record what it saw.
func TestRoutes(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path
	}))
	defer srv.Close()
	_ = got
}
