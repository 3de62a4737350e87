package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// On SIGTERM serve "writes a last checkpoint" and --checkpoint-webhook
// "POSTs each signed checkpoint"; but Post delivers in a goroutine that
// wait() never waits for, so when run returns (and main exits) the last
// checkpoint, the anchor of everything chained since the previous one,
// has not even been sent.
// TestLastCheckpointAnchoredBeforeExit: serve returns (and the process
// exits) only once its last checkpoint has reached --checkpoint-webhook.
func TestLastCheckpointAnchoredBeforeExit(t *testing.T) {
	pg := pgtest.NewDB(t)
	secret := "alarm-webhook-secret-0123456789"
	t.Setenv("BULKHEAD_ALARM_WEBHOOK_SECRET", secret)
	var delivered atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"type":"checkpoint"`) {
			delivered.Add(1)
		}
	}))
	defer hook.Close()
	stdout, stderr, stop := start(t, "serve", "--addr", "127.0.0.1:0", "--database-url", pg.AdminURL,
		"--checkpoint-webhook", hook.URL)
	re := regexp.MustCompile(`serving on (http://\S+)`)
	waitFor(t, "the server", stderr, func() bool { return re.MatchString(stdout.String()) })
	base := re.FindStringSubmatch(stdout.String())[1]
	// One audited denial, chained by the sequencer within a second.
	if res, err := http.Get(base + "/rest/v1/projects"); err == nil {
		res.Body.Close()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if delivered.Load() == 0 {
		t.Fatalf("serve returned (the process would exit) before its last checkpoint reached --checkpoint-webhook; stderr:\n%s", stderr.String())
	}
}
