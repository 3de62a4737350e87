package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// TestFunctionStatementWritesNoTempFiles: the function flood's statement
// is CPU work alone. The same count over generate_series in FROM stores
// the series first and spills it to temporary files, which made the flood
// one of writes too; this catches a return to that form.
func TestFunctionStatementWritesNoTempFiles(t *testing.T) {
	t.Parallel()
	d := pgtest.NewDB(t)
	conn, err := pgx.Connect(t.Context(), d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	written := func(sql string) (blocks float64) {
		t.Helper()
		var out []byte
		if err := conn.QueryRow(t.Context(), `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+sql).Scan(&out); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		var plans []struct {
			Plan map[string]any
		}
		if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
			t.Fatalf("the plan of %s: %v\n%s", sql, err, out)
		}
		b, ok := plans[0].Plan["Temp Written Blocks"].(float64)
		if !ok {
			t.Fatalf("the plan of %s has no Temp Written Blocks:\n%s", sql, out)
		}
		return b
	}
	// The test's own witness: the FROM form does spill with this
	// database's settings, so a zero below is not the default work_mem
	// hiding it.
	if b := written(`SELECT count(*) FROM generate_series(1, 2000000)`); b == 0 {
		t.Fatal("the series in FROM wrote no temporary blocks; the comparison shows nothing")
	}
	if b := written(functionStatement); b != 0 {
		t.Errorf("the function flood's statement wrote %v temporary blocks", b)
	}
}

// TestMeterKeepsEndedSessions: the CPU of a PostgreSQL session that has
// ended stays in the cluster's reading. Before the meter read the
// postmaster's waited-for children, a flood's sessions that closed
// between two readings took their CPU with them, and the bench printed a
// negative CPU per second for PostgreSQL. The session's own CPU, read
// from /proc before it ends, is the yardstick: a machine's speed decides
// how much six counts take.
func TestMeterKeepsEndedSessions(t *testing.T) {
	t.Parallel()
	d := pgtest.NewDB(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	if err := conn.QueryRow(ctx, `SELECT current_setting('data_directory')`).Scan(&dir); err != nil {
		t.Fatal(err)
	}
	m := newCPUMeter(dir)
	if m.postmaster == 0 {
		conn.Close(ctx)
		t.Skipf("the cluster's postmaster.pid is not readable here (%s): another machine's cluster", dir)
	}
	// About a second of one CPU in a session of its own, which then ends.
	var pid int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	ownBefore := processCPU(t, pid)
	before := m.read()
	if !before.ok {
		t.Fatal("the meter cannot read /proc")
	}
	for range 6 {
		if _, err := conn.Exec(ctx, functionStatement); err != nil {
			t.Fatal(err)
		}
	}
	own := processCPU(t, pid) - ownBefore
	if own < 100*time.Millisecond {
		t.Fatalf("the session's six counts took %s of CPU: too little to tell", own)
	}
	conn.Close(ctx)
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			break
		}
		if i == 300 {
			t.Fatalf("backend %d did not exit", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The cluster's reading holds at least what the session spent, less
	// a tick of each of the two readings.
	after := m.read()
	if got := after.pg - before.pg; got < own-2*clockTick {
		t.Fatalf("a session that spent %s of CPU and ended: the cluster's CPU grew by %s", own, got)
	}
}

// processCPU is a live process's user and system time, from /proc.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * clockTick
}
