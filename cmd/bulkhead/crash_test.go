package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TestNoAnsweredDenialLostOnCrash floods a real server process with
// requests that are denied, kills it with SIGKILL in the middle, and then
// checks every request that got its answer against the audit trail: each
// answered denial must have its event, because a denial is answered only
// once its event is committed.
func TestNoAnsweredDenialLostOnCrash(t *testing.T) {
	pg := pgtest.NewDB(t)
	bin := filepath.Join(t.TempDir(), "bulkhead")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database-url", pg.AdminURL, "--alarm-denials", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var base string
	sc := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`serving on (http://\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		t.Fatal("the server did not start")
	}
	// Flood: several clients, each sending denied requests until the
	// server dies, remembering the request id of every answer.
	var mu sync.Mutex
	var answered []string
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for c := 0; c < 32; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for time.Now().Before(deadline) {
				res, err := client.Get(base + "/rest/v1/projects")
				if err != nil {
					return // the server is gone
				}
				res.Body.Close()
				if res.StatusCode == http.StatusUnauthorized {
					mu.Lock()
					answered = append(answered, res.Header.Get("X-Request-Id"))
					mu.Unlock()
				}
			}
		}()
	}
	// Kill it once a good number of answers are in.
	for i := 0; i < 400; i++ {
		mu.Lock()
		n := len(answered)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	wg.Wait()
	if len(answered) < 50 {
		t.Fatalf("only %d answers before the kill; the test proves little", len(answered))
	}
	// Reconcile: every answered request id is in the inbox or the chain.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var missing int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]) rid
		WHERE NOT EXISTS (SELECT 1 FROM bulkhead_audit.inbox WHERE event->>'request_id' = rid)
		  AND NOT EXISTS (SELECT 1 FROM bulkhead_audit.events WHERE body::jsonb->>'request_id' = rid)`, answered).Scan(&missing)
	if err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Fatalf("%d of %d answered denials have no audit event after the crash", missing, len(answered))
	}
	t.Logf("%d answered denials before SIGKILL, all in the audit trail", len(answered))
}

// TestMigrateResumesAfterCrash kills `bulkhead migrate` with SIGKILL while
// two silos are half-way through their migration (each blocked on a lock
// the test holds on its second table, after its first table's DDL ran),
// and checks that every silo is wholly on its old version or wholly on the
// new one, that the catalog says which, and that a second run finishes
// the rest.
func TestMigrateResumesAfterCrash(t *testing.T) {
	pg := pgtest.NewDB(t)
	ctx := t.Context()
	bin := filepath.Join(t.TempDir(), "bulkhead")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	db, err := postgres.Open(ctx, postgres.Config{AdminURL: pg.AdminURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	adm, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(ctx)
	const n = 20
	placement := make([]string, n)
	for i := range n {
		s, _, err := db.CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(fmt.Sprintf("silo-%02d", i)), Tier: tenant.Silo})
		if err != nil {
			t.Fatal(err)
		}
		placement[i] = s.Placement
		// Back to version 1: no audit triggers.
		for _, tbl := range postgres.TenantTableNames {
			for _, trg := range []string{"audit_insert", "audit_update", "audit_delete"} {
				if _, err := adm.Exec(ctx, `DROP TRIGGER `+trg+` ON `+s.Placement+`.`+tbl); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := adm.Exec(ctx, `UPDATE bulkhead_control.tenants SET schema_version = 1 WHERE tier = 'silo'`); err != nil {
		t.Fatal(err)
	}
	// Hold silo-10's and silo-11's second table: with two workers, the
	// first ten migrate, then both workers stop half-way, inside their
	// transactions.
	lock, err := adm.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second := postgres.TenantTableNames[1]
	if _, err := lock.Exec(ctx, `LOCK TABLE `+placement[10]+`.`+second+`, `+placement[11]+`.`+second+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "migrate", "--database-url", pg.AdminURL, "--concurrency", "2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	mon, err := pgx.Connect(ctx, pg.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close(ctx)
	blocked := func() (n int) {
		mon.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return n
	}
	for i := 0; blocked() < 2; i++ {
		if i == 600 {
			t.Fatal("the migration never reached the locked silos")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// The orphaned backends finish their statement once the lock goes,
	// find their client gone, and roll back.
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	state := func(i int) (version, triggers int) {
		t.Helper()
		if err := adm.QueryRow(ctx, `SELECT t.schema_version, (SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
			JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = t.placement AND g.tgname LIKE 'audit\_%')
			FROM bulkhead_control.tenants t WHERE t.slug = $1`, fmt.Sprintf("silo-%02d", i)).Scan(&version, &triggers); err != nil {
			t.Fatal(err)
		}
		return version, triggers
	}
	whole := 3 * len(postgres.TenantTableNames)
	var migrated int
	for i := range n {
		v, trg := state(i)
		switch {
		case v == postgres.TenantSchemaVersion && trg == whole:
			migrated++
		case v == 1 && trg == 0:
		default:
			t.Errorf("silo-%02d after the crash: catalog version %d with %d of its %d audit triggers", i, v, trg, whole)
		}
		if (i == 10 || i == 11) && v != 1 {
			t.Errorf("silo-%02d was half-way when the process died, yet is on version %d", i, v)
		}
	}
	if migrated != 10 {
		t.Errorf("%d silos migrated before the crash, want the 10 before the locked ones", migrated)
	}

	var stdout bytes.Buffer
	again := exec.Command(bin, "migrate", "--database-url", pg.AdminURL)
	again.Stdout = &stdout
	if err := again.Run(); err != nil {
		t.Fatalf("second run: %v\n%s", err, stdout.String())
	}
	if want := fmt.Sprintf("silos: %d behind, %d migrated", n-migrated, n-migrated); !strings.Contains(stdout.String(), want) {
		t.Fatalf("second run said %q, want %q", stdout.String(), want)
	}
	for i := range n {
		if v, trg := state(i); v != postgres.TenantSchemaVersion || trg != whole {
			t.Errorf("silo-%02d after the second run: version %d, %d audit triggers", i, v, trg)
		}
	}
}
