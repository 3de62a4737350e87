package main

import (
	"bufio"
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
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
