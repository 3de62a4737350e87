package audit

import (
	"context"
	"errors"
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
