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

// TestShutdownDelay: with --shutdown-delay, a signal makes GET /readyz
// answer 503 while the server still serves (liveness, the data API), with
// keep-alives off, until the delay is over; then it stops. The delay's
// timer is the test's, so nothing here depends on the machine's speed.
// Values out of range: TestServeFlagValues.
func TestShutdownDelay(t *testing.T) {
	over := make(chan time.Time)
	var asked atomic.Int64
	drainTimer = func(d time.Duration) <-chan time.Time {
		asked.Store(int64(d))
		return over
	}
	t.Cleanup(func() { drainTimer = time.After })
	pg := pgtest.NewDB(t)
	stdout, stderr, stop := start(t, "serve", "--addr", "127.0.0.1:0", "--database-url", pg.AdminURL, "--shutdown-delay", "45s")
	re := regexp.MustCompile(`serving on (http://\S+)`)
	waitFor(t, "the server", stderr, func() bool { return re.MatchString(stdout.String()) })
	base := re.FindStringSubmatch(stdout.String())[1]
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	if res, body := get("/readyz"); res.StatusCode != 200 {
		t.Fatalf("readyz before the signal: %d %s", res.StatusCode, body)
	}

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	waitFor(t, "the drain", stderr, func() bool { return strings.Contains(stderr.String(), `msg="draining:`) })
	if got := time.Duration(asked.Load()); got != 45*time.Second {
		t.Fatalf("the drain waits %v, want the flag's 45s", got)
	}
	res, body := get("/readyz")
	if res.StatusCode != 503 || !strings.Contains(body, `"code":"not_ready"`) || !strings.Contains(body, "shutting down") {
		t.Fatalf("readyz while draining: %d %s", res.StatusCode, body)
	}
	if !res.Close {
		t.Error("a response while draining keeps its connection open; want Connection: close")
	}
	// Still serving: liveness, and the data API's refusal of a request
	// without credentials (a data request runs through every middleware).
	if res, body := get("/healthz"); res.StatusCode != 200 {
		t.Fatalf("healthz while draining: %d %s", res.StatusCode, body)
	}
	if res, body := get("/rest/v1/projects"); res.StatusCode != 401 {
		t.Fatalf("a data request while draining: %d %s", res.StatusCode, body)
	}
	select {
	case err := <-stopped:
		t.Fatalf("serve stopped before the delay was over: %v", err)
	default:
	}
	close(over)
	if err := <-stopped; err != nil {
		t.Fatalf("serve with --shutdown-delay did not stop cleanly: %v", err)
	}
	if !strings.Contains(stderr.String(), `msg="shutting down"`) {
		t.Fatalf("no shutdown after the drain; stderr:\n%s", stderr.String())
	}
}
