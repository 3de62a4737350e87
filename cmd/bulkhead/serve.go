package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// serveOptions are the flags serve and dev share.
type serveOptions struct {
	addr        string
	cors        string
	idpIssuer   string
	idpJWKS     string
	idpAudience string
	idpTenant   string
	jsonLogs    bool
}

func (o *serveOptions) register(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.cors, "cors-origins", "", "comma-separated exact origins allowed to call the API from browsers (never a wildcard)")
	fs.StringVar(&o.idpIssuer, "idp-issuer", "", "an external identity provider's issuer (iss); with --idp-jwks-url")
	fs.StringVar(&o.idpJWKS, "idp-jwks-url", "", "the provider's JWKS URL (https, public address)")
	fs.StringVar(&o.idpAudience, "idp-audience", "", "the audience (aud) the provider's tokens must carry")
	fs.StringVar(&o.idpTenant, "idp-tenant-claim", "tenant_id", `claim path of the tenant, e.g. "tenant_id", "app_metadata.tenant_id", "custom:tenant_id"`)
	fs.BoolVar(&o.jsonLogs, "log-json", false, "log JSON lines instead of text")
}

func (o *serveOptions) external() ([]identity.Trust, error) {
	if o.idpIssuer == "" && o.idpJWKS == "" {
		return nil, nil
	}
	if o.idpIssuer == "" || o.idpJWKS == "" || o.idpAudience == "" {
		return nil, usageError{"an external identity provider needs --idp-issuer, --idp-jwks-url and --idp-audience"}
	}
	return []identity.Trust{{Issuer: o.idpIssuer, JWKSURL: o.idpJWKS, Audience: o.idpAudience, TenantClaim: o.idpTenant}}, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "serve [--addr 127.0.0.1:8080] [--database-url URL] [flags]", stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	var o serveOptions
	o.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	u, err := databaseURL(*dbURL)
	if err != nil {
		return err
	}
	log := newLogger(stderr, o.jsonLogs)
	if _, err := postgres.Setup(ctx, u, log); err != nil {
		return err
	}
	app, err := startServer(ctx, u, o, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bulkhead serving on http://%s\n", app.addr)
	return app.wait(ctx)
}

// app is a running server.
type app struct {
	db   *bulkhead.DB
	auth *bulkhead.Auth
	srv  *http.Server
	addr string
	errc chan error
	log  *slog.Logger
}

func startServer(ctx context.Context, dbURL string, o serveOptions, log *slog.Logger) (*app, error) {
	ext, err := o.external()
	if err != nil {
		return nil, err
	}
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: dbURL, Logger: log})
	if err != nil {
		return nil, err
	}
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{External: ext})
	if err != nil {
		db.Close()
		return nil, err
	}
	var origins []string
	for _, s := range strings.Split(o.cors, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if s == "*" {
				db.Close()
				return nil, usageError{"--cors-origins takes exact origins; a wildcard is refused"}
			}
			origins = append(origins, s)
		}
	}
	h, err := httpapi.New(ctx, httpapi.Config{DB: db, Auth: auth, Logger: log, CORSOrigins: origins})
	if err != nil {
		db.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	a := &app{db: db, auth: auth, addr: ln.Addr().String(), errc: make(chan error, 1), log: log,
		srv: &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}}
	go func() { a.errc <- a.srv.Serve(ln) }()
	// The watchdog ends app backends that lock tenant tables or idle in a
	// transaction, and resets settings planted on app roles.
	go db.Postgres().Watch(ctx, 5*time.Second, postgres.WatchdogOptions{})
	log.Info("serving", "addr", a.addr)
	return a, nil
}

// wait serves until ctx ends, then shuts down gracefully.
func (a *app) wait(ctx context.Context) error {
	defer a.db.Close()
	defer a.auth.Close()
	select {
	case err := <-a.errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
