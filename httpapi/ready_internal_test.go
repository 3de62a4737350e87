package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// TestReadinessShared: callers within the interval share one check,
// whether it passed or failed, and the next interval checks again.
func TestReadinessShared(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	var mu sync.Mutex
	calls := 0
	var fail error
	ping := func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the check runs without a deadline")
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		return fail
	}
	rd := &readiness{every: time.Hour}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := rd.check(t.Context(), ping, log); err != nil {
				t.Errorf("check: %v", err)
			}
		})
	}
	wg.Wait()
	if calls != 1 {
		t.Fatalf("50 callers in one interval pinged %d times, want 1", calls)
	}

	// A canceled caller does not fail the check it starts.
	rd.at = time.Time{}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := rd.check(canceled, func(ctx context.Context) error { return ctx.Err() }, log); err != nil {
		t.Fatalf("a caller that left failed the check: %v", err)
	}

	// Down: the failure is shared the same way, then the next interval
	// sees the database back.
	fail = errors.New("connection refused")
	fail0 := fail
	rd.at = time.Time{}
	for range 3 {
		if err := rd.check(t.Context(), ping, log); !errors.Is(err, fail) {
			t.Fatalf("check with the database down: %v", err)
		}
	}
	if calls != 2 {
		t.Fatalf("pinged %d times, want 2", calls)
	}
	// Stale: the caller gets the last outcome at once, and one check
	// starts in the background; callers meanwhile start no other.
	fail = nil
	release := make(chan struct{})
	slow := func(ctx context.Context) error {
		<-release
		return ping(ctx)
	}
	rd.at = time.Now().Add(-2 * time.Hour)
	for range 5 {
		if err := rd.check(t.Context(), slow, log); !errors.Is(err, fail0) {
			t.Fatalf("a stale check: %v, want the last outcome (%v) at once", err, fail0)
		}
	}
	close(release)
	rd.checks.Wait()
	if err := rd.check(t.Context(), ping, log); err != nil || calls != 3 {
		t.Fatalf("after the background check: %v after %d pings, want nil after 3", err, calls)
	}
}
