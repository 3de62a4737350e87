package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/bulkhead-dev/bulkhead/internal/apitest"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestProjectsFunction runs both modes of the binary in-process against a
// real database: the authorizer turns each user's token into a context,
// and the projects function lists and creates that tenant's projects only.
func TestProjectsFunction(t *testing.T) {
	ctx := context.Background()
	s := apitest.Start(t, apitest.Options{})
	acme := s.CreateTenant(t, "acme", "pool")
	globex := s.CreateTenant(t, "globex", "silo")
	fn, err := s.DB.Postgres().CreateFunction(ctx, "projects_"+acme.UUID[:8])
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	az, closeAuthz, err := newAuthorizer(ctx, s.PG.AdminURL, fn.LoginRole, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAuthz()
	h, closeFn, err := newProjectsFunction(ctx, s.PG.URL(fn.LoginRole, fn.Password), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()

	invoke := func(token, method, body string) events.APIGatewayV2HTTPResponse {
		t.Helper()
		ar, err := az.HTTP(ctx, events.APIGatewayV2CustomAuthorizerV2Request{
			Version: "2.0", Type: "REQUEST", RouteKey: method + " /projects",
			Headers: map[string]string{"authorization": "Bearer " + token},
		})
		if err != nil {
			t.Fatal(err)
		}
		req := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: method + " /projects", RawPath: "/projects", Body: body,
			Headers: map[string]string{"authorization": "Bearer " + token, "content-type": "application/json"}}
		req.RequestContext.HTTP.Method = method
		if ar.IsAuthorized {
			req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: ar.Context}
		}
		res, err := h(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	names := func(res events.APIGatewayV2HTTPResponse) []string {
		t.Helper()
		var ps []Project
		if res.StatusCode != http.StatusOK || json.Unmarshal([]byte(res.Body), &ps) != nil {
			t.Fatalf("list: %d %s", res.StatusCode, res.Body)
		}
		out := []string{}
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}

	if res := invoke(acme.MemberToken, "POST", `{"name":"acme roadmap"}`); res.StatusCode != http.StatusCreated {
		t.Fatalf("create for acme: %d %s", res.StatusCode, res.Body)
	}
	if res := invoke(globex.AdminToken, "POST", `{"name":"globex plan","description":"silo"}`); res.StatusCode != http.StatusCreated {
		t.Fatalf("create for globex: %d %s", res.StatusCode, res.Body)
	}
	if got := names(invoke(acme.AdminToken, "GET", "")); len(got) != 1 || got[0] != "acme roadmap" {
		t.Errorf("acme lists %v", got)
	}
	if got := names(invoke(globex.MemberToken, "GET", "")); len(got) != 1 || got[0] != "globex plan" {
		t.Errorf("globex lists %v", got)
	}
	for _, tt := range []struct {
		name, token, method, body string
		status                    int
	}{
		{"BadBody", acme.MemberToken, "POST", `{"nom":"x"}`, http.StatusBadRequest},
		{"EmptyName", acme.MemberToken, "POST", `{"name":""}`, http.StatusBadRequest},
		{"Method", acme.MemberToken, "DELETE", "", http.StatusMethodNotAllowed},
		{"NoToken", "", "GET", "", http.StatusUnauthorized},
		{"ForgedToken", acme.MemberToken + "x", "GET", "", http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if res := invoke(tt.token, tt.method, tt.body); res.StatusCode != tt.status {
				t.Errorf("%s: %d %s, want %d", tt.name, res.StatusCode, res.Body, tt.status)
			}
		})
	}
}
