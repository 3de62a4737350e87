package pgcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestThrowawayCluster starts a private cluster the way the test harness
// does when BULKHEAD_TEST_DATABASE_URL is unset, and checks what it
// promises: loopback only, scram passwords, a socket inside its directory.
func TestThrowawayCluster(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bulkhead-pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	c, err := Start(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	conn, err := pgx.Connect(ctx, c.AdminURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var listen, enc, sockets string
	if err := conn.QueryRow(ctx, `SELECT current_setting('listen_addresses'), current_setting('password_encryption'), current_setting('unix_socket_directories')`).Scan(&listen, &enc, &sockets); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" || enc != "scram-sha-256" || sockets != dir {
		t.Fatalf("listen_addresses=%q password_encryption=%q unix_socket_directories=%q", listen, enc, sockets)
	}
	if _, err := pgx.Connect(ctx, c.URL("postgres", "wrong", "postgres")); err == nil {
		t.Fatal("a wrong password connected")
	}
	if _, err := os.Stat(filepath.Join(dir, ".pwfile")); err == nil {
		t.Fatal("the password file was left behind")
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	// A second start reuses the cluster with its stored password.
	c2, err := Start(ctx, Options{Dir: dir, Password: c.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	other, err := os.MkdirTemp("", "bulkhead-pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(other)
	if c3, err := Start(ctx, Options{Dir: other, Port: c2.Port}); err == nil {
		c3.Stop()
		t.Fatal("a second cluster started on a taken port")
	} else if !strings.Contains(err.Error(), "start") {
		t.Fatalf("second cluster on a taken port: %v, want a start failure", err)
	}
}
