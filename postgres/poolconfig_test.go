package postgres_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

func TestPoolConfigs(t *testing.T) {
	const base = "postgres://bulkhead_gw_x:pw@127.0.0.1:5432/app"
	for _, tt := range []struct {
		name, url string
		config    func(string) (*pgxpool.Config, error)
		mode      pgx.QueryExecMode
		cache     int // statements cached per connection
		conns     int32
	}{
		{"business code: unnamed statements", base, postgres.AppPoolConfig, pgx.QueryExecModeExec, 0, 0},
		{"business code: whatever the URL asks", base + "?default_query_exec_mode=cache_statement", postgres.AppPoolConfig, pgx.QueryExecModeExec, 0, 0},
		{"gateway: unnamed statements by default", base, postgres.GatewayPoolConfig, pgx.QueryExecModeExec, 0, 0},
		{"gateway: whatever else the URL asks", base + "?default_query_exec_mode=describe_exec", postgres.GatewayPoolConfig, pgx.QueryExecModeExec, 0, 0},
		{"gateway: prepared statements when the URL opts in", base + "?default_query_exec_mode=cache_statement", postgres.GatewayPoolConfig, pgx.QueryExecModeCacheStatement, postgres.StatementCacheSize, 0},
		{"pool size from the URL", base + "?pool_max_conns=3", postgres.GatewayPoolConfig, pgx.QueryExecModeExec, 0, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.config(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ConnConfig.DefaultQueryExecMode != tt.mode {
				t.Errorf("mode = %v, want %v", cfg.ConnConfig.DefaultQueryExecMode, tt.mode)
			}
			if cfg.ConnConfig.StatementCacheCapacity != tt.cache {
				t.Errorf("statement cache = %d, want %d", cfg.ConnConfig.StatementCacheCapacity, tt.cache)
			}
			if tt.conns != 0 && cfg.MaxConns != tt.conns {
				t.Errorf("max conns = %d, want %d", cfg.MaxConns, tt.conns)
			}
		})
	}
	// The simple protocol would put contexts into SQL text.
	for _, config := range []func(string) (*pgxpool.Config, error){postgres.AppPoolConfig, postgres.GatewayPoolConfig} {
		if _, err := config(base + "?default_query_exec_mode=simple_protocol"); fault.CodeOf(err) != "simple_protocol_refused" {
			t.Fatalf("simple protocol: err = %v, want simple_protocol_refused", err)
		}
	}
	if postgres.DefaultAppMaxConns() < 8 {
		t.Fatalf("DefaultAppMaxConns() = %d, want at least 8", postgres.DefaultAppMaxConns())
	}
}

func TestOpenSizesThePools(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	if got, want := db.App().Config().MaxConns, postgres.DefaultAppMaxConns(); got != want {
		t.Fatalf("app pool max conns = %d, want %d", got, want)
	}
	if mode := db.App().Config().ConnConfig.DefaultQueryExecMode; mode != pgx.QueryExecModeExec {
		t.Fatalf("app pool mode = %v, want unnamed statements by default", mode)
	}
	b, err := db.Business(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b == db.App() || b.Config().MaxConns != db.App().Config().MaxConns || b.Config().ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeExec {
		t.Fatalf("business pool: same as the gateway's %v, max conns %d, mode %v; want its own, as large, unnamed statements",
			b == db.App(), b.Config().MaxConns, b.Config().ConnConfig.DefaultQueryExecMode)
	}
	if db.App().Config().ConnConfig.RuntimeParams["application_name"] != postgres.GatewayApplicationName {
		t.Fatalf("the gateway's application_name is %q", db.App().Config().ConnConfig.RuntimeParams["application_name"])
	}
	// Not the gateway's role: business code could change its password or
	// plant its session defaults, for every tenant's data API requests.
	if u := b.Config().ConnConfig.User; u == db.AppRole || !strings.HasPrefix(u, postgres.BusinessRolePrefix) {
		t.Fatalf("business pool logs in as %q, want a %s… role of its own (the gateway's is %q)", u, postgres.BusinessRolePrefix, db.AppRole)
	}
}
