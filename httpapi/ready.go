package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// readyEvery is how often GET /readyz asks PostgreSQL at most; requests
// in between get the last answer, so a flood of them costs no more than
// GET /healthz does.
const readyEvery = time.Second

// readyTimeout bounds one check: a database that has not answered by
// then is not ready.
const readyTimeout = 2 * time.Second

var (
	errNotReady = fault.E(fault.Unavailable, "not_ready", "The server cannot reach its database.")
	errDraining = fault.E(fault.Unavailable, "not_ready", "The server is shutting down.")
)

// readiness remembers the last check of GET /readyz.
type readiness struct {
	mu      sync.Mutex
	every   time.Duration  // readyEvery when zero
	at      time.Time      // when the last check ended; zero before the first
	err     error          // its outcome
	running bool           // a check runs in the background
	checks  sync.WaitGroup // the background checks, for tests
}

// ready answers GET /readyz: 200 when the server reaches PostgreSQL as
// both of its roles, 503 not_ready otherwise. The cause goes to the log,
// never to the client.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	notReady := func(e *fault.Error) {
		sendProblem(w, fault.Unavailable, http.StatusServiceUnavailable, fault.CodeOf(e), fault.MessageOf(e), requestIDFrom(r.Context()))
	}
	if s.draining.Load() {
		notReady(errDraining)
		return
	}
	if err := s.readiness.check(r.Context(), s.pg.Ping, s.log); err != nil { //bulkhead:ok the database's reachability, the same for every caller; no tenant data, and /readyz serves no tenant
		notReady(errNotReady)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Drain makes GET /readyz answer 503 from now on, while every other
// request is served as before: a server about to stop tells its load
// balancers first (bulkhead serve --shutdown-delay).
func (s *Server) Drain() { s.draining.Store(true) }

// check returns the outcome of the last check of ping. Only the first
// caller waits for one; after it, a caller gets the last outcome at once,
// and when that is older than the interval a new check starts in the
// background, one at a time: a database that hangs makes no caller wait,
// and turns the answer to not ready once the check's deadline passes.
// Checks run on their own deadline, not on a caller's, whose leaving must
// not make the next callers' answer a failure.
func (rd *readiness) check(ctx context.Context, ping func(context.Context) error, log *slog.Logger) error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	every := rd.every
	if every == 0 {
		every = readyEvery
	}
	switch {
	case rd.at.IsZero():
		rd.record(ctx, pingWithin(ctx, ping), log)
	case time.Since(rd.at) >= every && !rd.running:
		rd.running = true
		rd.checks.Add(1)
		go func() {
			defer rd.checks.Done()
			err := pingWithin(ctx, ping)
			rd.mu.Lock()
			defer rd.mu.Unlock()
			rd.running = false
			rd.record(ctx, err, log)
		}()
	}
	return rd.err
}

// pingWithin runs one check with ctx's values, not its cancellation, and
// readyTimeout to answer.
func pingWithin(ctx context.Context, ping func(context.Context) error) error {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
	defer cancel()
	return ping(c)
}

// record keeps a check's outcome, logging a change. rd.mu is held.
func (rd *readiness) record(ctx context.Context, err error, log *slog.Logger) {
	if err != nil && (rd.at.IsZero() || rd.err == nil) {
		log.LogAttrs(ctx, slog.LevelWarn, "not ready", slog.String("err", err.Error()))
	}
	if err == nil && rd.err != nil {
		log.LogAttrs(ctx, slog.LevelInfo, "ready again")
	}
	rd.at, rd.err = time.Now(), err
}
