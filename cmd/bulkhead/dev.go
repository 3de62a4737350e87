package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/pgcluster"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// devMarker marks a directory bulkhead dev made; --fresh deletes only such.
const devMarker = ".bulkhead-dev"

// devState is what dev keeps between runs, 0600 in the data dir.
type devState struct {
	PGDir         string      `json:"pg_dir"`
	PGPassword    string      `json:"pg_password"`
	PGPort        int         `json:"pg_port"`
	Seeded        bool        `json:"seeded"`
	FunctionToken string      `json:"function_token"`
	Tenants       []devTenant `json:"tenants"`
}

// devTenant and devUser are dev.json's "tenants" entries.
type devTenant struct {
	ID    string    `json:"id"`
	Tier  string    `json:"tier"`
	Users []devUser `json:"users"`
}

type devUser struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

// devJSON is <data-dir>/dev.json, for scripts and tests that drive the demo.
type devJSON struct {
	URL            string      `json:"url"`
	AdminToken     string      `json:"admin_token"`
	DatabaseURL    string      `json:"database_url"`
	AppDatabaseURL string      `json:"app_database_url"`
	FunctionToken  string      `json:"function_token"`
	Tenants        []devTenant `json:"tenants"`
}

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", "dev [--addr 127.0.0.1:8080] [--data-dir .bulkhead] [--fresh]", stderr)
	dataDir := fs.String("data-dir", ".bulkhead", "where the private PostgreSQL and dev.json live")
	fresh := fs.Bool("fresh", false, "delete the data dir first (only one bulkhead dev made)")
	var o serveOptions
	o.register(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := o.checkFlags(fs); err != nil {
		return err
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if *fresh {
		if err := removeDevDir(dir); err != nil {
			return err
		}
	}
	if _, err := pgcluster.BinDir(); err != nil {
		return err
	}
	st, err := prepareDevDir(dir)
	if err != nil {
		return err
	}
	log := newLogger(stderr, o.jsonLogs)
	if st.PGDir == "" {
		st.PGDir = clusterDir(dir)
	}
	fmt.Fprintf(stderr, "starting a private PostgreSQL in %s\n", st.PGDir)
	if err := os.MkdirAll(st.PGDir, 0o700); err != nil {
		return err
	}
	os.WriteFile(filepath.Join(st.PGDir, devMarker), []byte("made by bulkhead dev\n"), 0o600)
	cl, err := pgcluster.Start(ctx, pgcluster.Options{Dir: st.PGDir, Port: st.PGPort, Password: st.PGPassword})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stderr, "stopping PostgreSQL")
		cl.Stop()
	}()
	st.PGPassword, st.PGPort = cl.Password, cl.Port
	if err := saveDevState(dir, st); err != nil {
		return err
	}
	adminURL, err := ensureDevDatabase(ctx, cl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "migrating")
	if _, err := postgres.Setup(ctx, adminURL, log); err != nil {
		return err
	}
	if o.pgLog == "" {
		o.pgLog = filepath.Join(st.PGDir, "postgres.log")
	}
	a, err := startServer(ctx, adminURL, o, log)
	if err != nil {
		return err
	}
	if !st.Seeded {
		fmt.Fprintln(stderr, "seeding the demo: acme (pool, premium plan) and globex (silo, basic plan)")
		if err := seedDemo(ctx, a.db, st); err != nil {
			a.srv.Close()
			return fmt.Errorf("seed: %w", err)
		}
		st.Seeded = true
		if err := saveDevState(dir, st); err != nil {
			return err
		}
	}
	pw, err := a.db.Postgres().ResetFunctionPassword(ctx, "demo")
	if err != nil {
		return err
	}
	dj := devJSON{URL: "http://" + a.addr, DatabaseURL: adminURL,
		AppDatabaseURL: cl.URL(postgres.FunctionRolePrefix+"demo", pw, "bulkhead"),
		FunctionToken:  st.FunctionToken, Tenants: st.Tenants}
	path := filepath.Join(dir, "dev.json")
	if err := refreshDevJSON(ctx, a, &dj, path); err != nil {
		return err
	}
	printDevBanner(stdout, dj, path)
	// Platform-admin tokens are short-lived: keep a fresh one in dev.json.
	go func() {
		t := time.NewTicker(bulkhead.MaxAdminTokenTTL / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := refreshDevJSON(ctx, a, &dj, path); err != nil {
					log.Warn("refresh dev.json", "err", err)
				}
			}
		}
	}()
	return a.wait(ctx)
}

// refreshDevJSON writes dev.json with a new platform-admin token.
func refreshDevJSON(ctx context.Context, a *app, dj *devJSON, path string) error {
	tok, _, err := a.auth.IssueAdminToken(ctx, "dev-admin", bulkhead.MaxAdminTokenTTL)
	if err != nil {
		return err
	}
	dj.AdminToken = tok
	return writePrivate(path, dj)
}

func removeDevDir(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, devMarker)); err != nil {
		return fmt.Errorf("refusing --fresh: %s was not made by bulkhead dev (no %s marker)", dir, devMarker)
	}
	var st devState
	if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil && json.Unmarshal(b, &st) == nil &&
		st.PGDir != "" && !strings.HasPrefix(st.PGDir, dir+string(filepath.Separator)) {
		if _, err := os.Stat(filepath.Join(st.PGDir, devMarker)); err == nil {
			os.RemoveAll(st.PGDir)
		}
	}
	return os.RemoveAll(dir)
}

// clusterDir is where the private cluster lives: <dir>/pg, unless the
// process is root and the postgres user cannot reach dir (a data dir under
// /root, say); then a directory of its own under the temp dir, named after dir
// and recorded in state.json, so that --fresh removes it too.
func clusterDir(dir string) string {
	inside := filepath.Join(dir, "pg")
	if os.Geteuid() != 0 || traversable(filepath.Dir(dir)) {
		return inside
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), "bulkhead-dev-"+hex.EncodeToString(sum[:6]))
}

func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the postgres system user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

// traversable reports whether every directory from / to dir lets others
// search it.
func traversable(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

// prepareDevDir makes the data dir: 0700, a .gitignore of "*", the marker,
// and the state file.
func prepareDevDir(dir string) (*devState, error) {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", dir)
		}
		if _, err := os.Stat(filepath.Join(dir, devMarker)); err != nil {
			entries, _ := os.ReadDir(dir)
			if len(entries) > 0 {
				return nil, fmt.Errorf("%s exists and was not made by bulkhead dev; choose another --data-dir", dir)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	for name, body := range map[string]string{devMarker: "made by bulkhead dev\n", ".gitignore": "*\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return nil, err
		}
	}
	if os.Geteuid() == 0 {
		// PostgreSQL runs as the postgres user and must reach pg/ inside:
		// the directory stays 0700 and is handed to that user (root reads
		// and writes it regardless; the files in it stay root's, 0600).
		if err := chownToPostgres(dir); err != nil {
			return nil, err
		}
	}
	st := &devState{}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err == nil {
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "state.json"), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return st, nil
}

func saveDevState(dir string, st *devState) error {
	return writePrivate(filepath.Join(dir, "state.json"), st)
}

// writePrivate writes v as JSON, 0600, atomically.
func writePrivate(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func ensureDevDatabase(ctx context.Context, cl *pgcluster.Cluster) (string, error) {
	conn, err := pgx.Connect(ctx, cl.AdminURL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'bulkhead')`).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE DATABASE bulkhead`); err != nil {
			return "", err
		}
	}
	// The private cluster's template1 gets the same TEMP revoke.
	conn.Exec(ctx, `REVOKE TEMPORARY ON DATABASE template1 FROM PUBLIC`)
	return cl.AdminURL("bulkhead"), nil
}

func randomPassword() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// seedDemo creates acme (pool) and globex (silo), their users, the demo
// function, and a few projects and tasks for each, through the same
// scoped transactions as any request.
func seedDemo(ctx context.Context, db *bulkhead.DB, st *devState) error {
	pg := db.Postgres()
	h := &identity.Hasher{}
	demo := map[string][][2]string{
		"acme":   {{"Website relaunch", "New marketing site"}, {"Billing v2", "Usage-based invoices"}},
		"globex": {{"Reactor upgrade", "Phase 2"}, {"Secret project", "Do not leak"}},
	}
	st.Tenants = nil
	for _, spec := range []struct {
		slug, name string
		tier       tenant.Tier
		plan       string
	}{{"acme", "Acme Corp", tenant.Pool, "premium"}, {"globex", "Globex Corporation", tenant.Silo, "basic"}} {
		t, _, err := pg.CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(spec.slug), Name: spec.name, Tier: spec.tier, Plan: spec.plan})
		if err != nil {
			return err
		}
		dt := devTenant{ID: spec.slug, Tier: string(spec.tier)}
		for _, role := range []tenant.Role{tenant.Admin, tenant.Member} {
			email := string(role) + "@" + spec.slug + ".test"
			pw := randomPassword()
			hash, err := h.Hash(ctx, pw)
			if err != nil {
				return err
			}
			if _, err := pg.CreateUser(ctx, t.ID, email, hash, role); err != nil && !strings.Contains(err.Error(), "user_exists") {
				return err
			}
			dt.Users = append(dt.Users, devUser{Email: email, Password: pw, Role: string(role)})
		}
		st.Tenants = append(st.Tenants, dt)
		p := tenant.Principal{Subject: "seed", Tenant: t.Slug, TenantID: t.ID, Role: tenant.Admin}
		pctx := tenant.NewContext(ctx, p)
		pt, err := db.Table(pctx, "projects")
		if err != nil {
			return err
		}
		tt, err := db.Table(pctx, "tasks")
		if err != nil {
			return err
		}
		err = db.Tx(pctx, func(tx pgx.Tx) error {
			for i, pr := range demo[spec.slug] {
				var id string
				if err := tx.QueryRow(ctx, `INSERT INTO `+pt+` (name, description) VALUES ($1, $2) RETURNING id`, pr[0], pr[1]).Scan(&id); err != nil {
					return err
				}
				for j := 1; j <= 2; j++ {
					if _, err := tx.Exec(ctx, `INSERT INTO `+tt+` (project_id, title, done) VALUES ($1, $2, $3)`,
						id, fmt.Sprintf("%s task %d", pr[0], j), (i+j)%2 == 0); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	fc, err := pg.CreateFunction(ctx, "demo")
	if err != nil {
		return err
	}
	st.FunctionToken = fc.Token
	return nil
}

func printDevBanner(w io.Writer, d devJSON, path string) {
	acme := d.Tenants[0].Users[0]
	fmt.Fprintf(w, `
bulkhead dev is running at %s  (Ctrl-C stops it and its PostgreSQL)
Everything below is also in %s.

Platform-admin token (short-lived; dev.json always holds a fresh one):
  export ADMIN=%s

Try:
  curl -s %s/v1/tenants -H "Authorization: Bearer $ADMIN"
  TOKEN=$(curl -s %s/v1/auth/token -H 'Content-Type: application/json' \
    -d '{"tenant":"acme","email":"%s","password":"%s"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -s "%s/rest/v1/projects?select=id,name&order=name" -H "Authorization: Bearer $TOKEN"
  curl -s "%s/rest/v1/tasks?done=eq.false" -H "Authorization: Bearer $TOKEN"

The globex tenant lives in its own schema; acme's token can never reach it.
`, d.URL, path, d.AdminToken, d.URL, d.URL, acme.Email, acme.Password, d.URL, d.URL)
}
