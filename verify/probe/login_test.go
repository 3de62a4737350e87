package probe_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/verify/probe"
)

func TestLogin(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case r.Header.Get("Content-Type") != "application/json":
			w.WriteHeader(http.StatusUnsupportedMediaType)
		case strings.Contains(string(b), "wrong"):
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"bad password wrong-secret"}`)
		case r.URL.Path == "/supabase":
			io.WriteString(w, `{"session":{"access_token":"tok-session","refresh_token":"r"}}`)
		default:
			io.WriteString(w, `{"result":{"jwt":"tok-nested"},"access_token":"tok-top"}`)
		}
	}))
	defer hs.Close()
	for _, tt := range []struct {
		name, path, body, tokenPath, want, wantErr string
	}{
		{"default keys", "/login", `{"u":"a"}`, "", "tok-top", ""},
		{"supabase session", "/supabase", `{"u":"a"}`, "", "tok-session", ""},
		{"named path", "/login", `{"u":"a"}`, "result.jwt", "tok-nested", ""},
		{"missing path", "/login", `{"u":"a"}`, "result.token", "", `no string at "result.token"`},
		{"refused", "/login", `{"pw":"wrong-secret"}`, "", "", "answered 401"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := probe.Login(t.Context(), probe.LoginRequest{URL: hs.URL + tt.path, Body: []byte(tt.body), TokenPath: tt.tokenPath})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Login = %q, %v; want an error about %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("the error repeats the body: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Login = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
