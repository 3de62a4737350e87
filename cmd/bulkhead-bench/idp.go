package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// benchIdP is an external identity provider on loopback: a JWKS over TLS
// and an RS256 key, as Supabase, Auth0 or Cognito would have, so that the
// bench can measure what a request signed in through one costs.
type benchIdP struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

const idpAudience = "bench-app"

func startIdP() (*benchIdP, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "bench-1", ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		return nil, err
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	return &benchIdP{srv: srv, key: key}, nil
}

// trust is the server's trust in the provider.
func (p *benchIdP) trust() identity.Trust {
	return identity.Trust{Issuer: p.srv.URL, Audience: idpAudience, JWKSURL: p.srv.URL + "/jwks.json",
		TenantClaim: "tenant_id", AllowPrivateJWKS: true, HTTPClient: p.srv.Client()}
}

// token signs an access token for an admin of t, valid for two hours.
func (p *benchIdP) token(t *tenant.Tenant) (string, error) {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": p.srv.URL, "aud": idpAudience, "sub": fmt.Sprintf("idp|%s", t.Slug), "iat": now.Unix(),
		"exp": now.Add(2 * time.Hour).Unix(), "tenant_id": string(t.ID), "role": "admin",
	})
	tok.Header["kid"] = "bench-1"
	return tok.SignedString(p.key)
}

func (p *benchIdP) close() { p.srv.Close() }
