package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// memStore is a Store that records batches; the seam is the interface, the
// real store is tested against PostgreSQL in package postgres.
type memStore struct {
	mu      sync.Mutex
	batches [][]Event
	block   chan struct{}
	waiting atomic.Int64 // events in a call held by block
	fail    error
	// reject fails, as a store that cannot hold an event's content does,
	// every commit that holds an event with this action.
	reject string
}

func (m *memStore) AppendEvents(ctx context.Context, es []Event) error {
	if m.block != nil {
		m.waiting.Add(int64(len(es)))
		<-m.block
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, e := range es {
		if m.reject != "" && e.Action == m.reject {
			return fmt.Errorf("%w: event %s", ErrRejected, e.EventID)
		}
	}
	m.batches = append(m.batches, es)
	return nil
}

func TestWriterGroupCommit(t *testing.T) {
	st := &memStore{block: make(chan struct{})}
	w := NewWriter(st, 100, 50)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.Record(context.Background(), Event{Action: "x", Decision: Deny})
		}()
	}
	// The first commit is held until the others are queued behind it.
	for st.waiting.Load()+int64(len(w.queue)) < 40 {
		select {
		case err := <-errs:
			t.Fatalf("a Record returned before its event was durable: %v", err)
		default:
			runtime.Gosched()
		}
	}
	close(st.block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	total := 0
	for _, b := range st.batches {
		total += len(b)
	}
	if total != 40 || len(st.batches) > 2 {
		t.Fatalf("%d events in %d commits; want 40 in at most 2", total, len(st.batches))
	}
}

func TestWriterReportsFailure(t *testing.T) {
	st := &memStore{fail: errors.New("disk full")}
	w := NewWriter(st, 10, 10)
	defer w.Close()
	if err := w.Record(context.Background(), Event{}); err == nil {
		t.Fatal("Record returned nil though the commit failed")
	}
}

func TestWriterFullQueueWaits(t *testing.T) {
	st := &memStore{block: make(chan struct{})}
	w := NewWriter(st, 1, 1)
	go w.Record(context.Background(), Event{}) // taken by the loop, blocked in the store
	go w.Record(context.Background(), Event{}) // fills the queue
	for len(w.queue) < 1 {
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Record(ctx, Event{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record on a full queue with a canceled context = %v, want it to wait and give up", err)
	}
	close(st.block)
	w.Close()
}

// TestWriterIsolatesRejectedEvent: an event the store cannot hold fails its
// own caller only; the other events of its commit, any tenant's, are
// committed on their own.
func TestWriterIsolatesRejectedEvent(t *testing.T) {
	st := &memStore{block: make(chan struct{}), reject: "poison"}
	w := NewWriter(st, 100, 50)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := Event{EventID: fmt.Sprint(i), Action: "data:Insert", Decision: Allow}
			if i == 7 {
				e.Action = "poison"
			}
			errs[i] = w.Record(context.Background(), e)
		}()
	}
	// Held until all are queued, so that the poison shares a commit.
	for st.waiting.Load()+int64(len(w.queue)) < 20 {
		runtime.Gosched()
	}
	close(st.block)
	wg.Wait()
	w.Close()
	for i, err := range errs {
		if i == 7 && !errors.Is(err, ErrRejected) {
			t.Errorf("the rejected event: %v; want ErrRejected", err)
		}
		if i != 7 && err != nil {
			t.Errorf("event %d, which shared a commit with the rejected one: %v", i, err)
		}
	}
	committed := 0
	for _, b := range st.batches {
		committed += len(b)
	}
	if committed != 19 {
		t.Fatalf("%d events committed; want the 19 others", committed)
	}
}

// TestWriterDoesNotRetryFailures: a commit that fails as a whole (the
// store is down) is not retried event by event.
func TestWriterDoesNotRetryFailures(t *testing.T) {
	st := &memStore{block: make(chan struct{}), fail: errors.New("connection refused")}
	calls := 0
	w := NewWriter(storeFunc(func(ctx context.Context, es []Event) error { calls++; return st.AppendEvents(ctx, es) }), 100, 50)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Record(context.Background(), Event{}); err == nil {
				t.Error("Record returned nil though the commit failed")
			}
		}()
	}
	for st.waiting.Load()+int64(len(w.queue)) < 10 {
		runtime.Gosched()
	}
	close(st.block)
	wg.Wait()
	w.Close()
	if calls > 2 {
		t.Fatalf("%d commits for 10 events of a store that is down; want them failed together", calls)
	}
}

type storeFunc func(context.Context, []Event) error

func (f storeFunc) AppendEvents(ctx context.Context, es []Event) error { return f(ctx, es) }
