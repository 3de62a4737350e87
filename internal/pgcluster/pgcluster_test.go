package pgcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestTempDirSweepsStale: a cluster left by a process that was killed
// before it could stop it is stopped and its directory removed by the
// next TempDir of the same prefix; a directory whose owner still runs,
// and one whose postmaster.pid names a process that is not its cluster's,
// are left alone.
func TestTempDirSweepsStale(t *testing.T) {
	ctx := context.Background()
	prefix := "bulkhead-pgcluster-stale-" + randomHex(4) + "-"
	t.Cleanup(func() {
		left, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
		for _, d := range left {
			os.RemoveAll(d)
		}
	})
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := []byte(strconv.Itoa(dead.Process.Pid) + "\n")

	// A killed owner's cluster, still running.
	stale, _, err := TempDir(prefix)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(ctx, Options{Dir: stale})
	if err != nil {
		t.Fatal(err)
	}
	pm, ok := readPID(filepath.Join(c.PGData(), "postmaster.pid"))
	if !ok || !alive(pm) {
		t.Fatalf("no running postmaster for %s", stale)
	}
	// A directory whose owner runs: this process.
	live, _, err := TempDir(prefix)
	if err != nil {
		t.Fatal(err)
	}
	// A dead owner, and a postmaster.pid naming a process that is not
	// this directory's postmaster.
	bystander := exec.Command("sleep", "60")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer bystander.Process.Kill()
	foreign, _, err := TempDir(prefix)
	if err != nil {
		t.Fatal(err)
	}
	// The owners of the first and the last exit (each TempDir sweeps).
	for _, d := range []string{stale, foreign} {
		if err := os.WriteFile(filepath.Join(d, ownerFile), deadPID, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(foreign, "pgdata"), 0o700)
	os.WriteFile(filepath.Join(foreign, "pgdata", "postmaster.pid"), []byte(strconv.Itoa(bystander.Process.Pid)+"\n"), 0o600)

	dir, swept, err := TempDir(prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if len(swept) != 1 || swept[0] != stale {
		t.Fatalf("swept %v, want only %s", swept, stale)
	}
	if alive(pm) {
		t.Error("the stale cluster's postmaster still runs")
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale directory is still there (%v)", err)
	}
	for _, d := range []string{live, foreign} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
	if !alive(bystander.Process.Pid) {
		t.Error("a process named by a foreign postmaster.pid was signalled")
	}
	if pid, ok := readPID(filepath.Join(dir, ownerFile)); !ok || pid != os.Getpid() {
		t.Errorf("the new directory's owner: %d, want this process %d", pid, os.Getpid())
	}
}
