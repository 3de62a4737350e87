package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

func TestAppPoolConfig(t *testing.T) {
	const base = "postgres://bulkhead_gw_x:pw@127.0.0.1:5432/app"
	for _, tt := range []struct {
		name, url string
		mode      pgx.QueryExecMode
		conns     int32 // 0: pgx's own default, left alone here
	}{
		{"default: cached prepared statements", base, pgx.QueryExecModeCacheStatement, 0},
		{"exec mode for poolers without prepared statements", base + "?default_query_exec_mode=exec", pgx.QueryExecModeExec, 0},
		{"pool size from the URL", base + "?pool_max_conns=3", pgx.QueryExecModeCacheStatement, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := postgres.AppPoolConfig(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ConnConfig.DefaultQueryExecMode != tt.mode {
				t.Errorf("mode = %v, want %v", cfg.ConnConfig.DefaultQueryExecMode, tt.mode)
			}
			if cfg.ConnConfig.StatementCacheCapacity != postgres.StatementCacheSize {
				t.Errorf("statement cache = %d, want %d", cfg.ConnConfig.StatementCacheCapacity, postgres.StatementCacheSize)
			}
			if tt.conns != 0 && cfg.MaxConns != tt.conns {
				t.Errorf("max conns = %d, want %d", cfg.MaxConns, tt.conns)
			}
		})
	}
	// The simple protocol would put contexts into SQL text.
	if _, err := postgres.AppPoolConfig(base + "?default_query_exec_mode=simple_protocol"); fault.CodeOf(err) != "simple_protocol_refused" {
		t.Fatalf("simple protocol: err = %v, want simple_protocol_refused", err)
	}
	if postgres.DefaultAppMaxConns() < 8 {
		t.Fatalf("DefaultAppMaxConns() = %d, want at least 8", postgres.DefaultAppMaxConns())
	}
}

func TestOpenSizesTheAppPool(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	if got, want := db.App().Config().MaxConns, postgres.DefaultAppMaxConns(); got != want {
		t.Fatalf("app pool max conns = %d, want %d", got, want)
	}
}
