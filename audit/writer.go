package audit

import (
	"context"
	"errors"
	"sync"
)

// Store is where events become durable.
type Store interface {
	// AppendEvents commits events; nil means they are durable.
	AppendEvents(ctx context.Context, events []Event) error
}

// Writer records events with group commit: events from many callers are
// committed together, and each caller returns only once its event is
// durable. When the queue is full, callers wait (honouring their context)
// rather than drop events.
type Writer struct {
	store    Store
	maxBatch int
	queue    chan pending
	closing  chan struct{}
	done     chan struct{}
	once     sync.Once
}

type pending struct {
	e   Event
	ack chan error
}

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit: writer closed")

// ErrRejected is in the chain of a Store's error when the store refused
// the content of an event (PostgreSQL's data exceptions), not the commit as
// such. The Writer then commits each event of the batch on its own, so
// that one event the store cannot hold fails only its own caller, never
// the other requests, of any tenant, whose events shared its commit.
var ErrRejected = errors.New("audit: the store rejected an event's content")

// NewWriter starts a writer. queue bounds the events waiting to be
// committed; maxBatch bounds one commit.
func NewWriter(store Store, queue, maxBatch int) *Writer {
	if queue <= 0 {
		queue = 4096
	}
	if maxBatch <= 0 {
		maxBatch = 256
	}
	w := &Writer{store: store, maxBatch: maxBatch, queue: make(chan pending, queue),
		closing: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

// Record makes e durable and returns when it is (or when ctx ends first:
// then the event may still be committed later, and the caller must not
// claim it was).
func (w *Writer) Record(ctx context.Context, e Event) error {
	p := pending{e: e, ack: make(chan error, 1)}
	select {
	case <-w.closing:
		return ErrClosed
	default:
	}
	select {
	case w.queue <- p:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.closing:
		return ErrClosed
	}
	select {
	case err := <-p.ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) loop() {
	defer close(w.done)
	for {
		var first pending
		select {
		case first = <-w.queue:
		case <-w.closing:
			// Commit what is queued, then stop.
			for {
				select {
				case p := <-w.queue:
					w.commit([]pending{p})
				default:
					return
				}
			}
		}
		batch := []pending{first}
	fill:
		for len(batch) < w.maxBatch {
			select {
			case p := <-w.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		w.commit(batch)
	}
}

func (w *Writer) commit(batch []pending) {
	events := make([]Event, len(batch))
	for i, p := range batch {
		events[i] = p.e
	}
	err := w.store.AppendEvents(context.Background(), events)
	if err != nil && len(batch) > 1 && errors.Is(err, ErrRejected) {
		for _, p := range batch {
			p.ack <- w.store.AppendEvents(context.Background(), []Event{p.e})
		}
		return
	}
	for _, p := range batch {
		p.ack <- err
	}
}

// Close stops the writer once the events already queued are committed.
func (w *Writer) Close() {
	w.once.Do(func() { close(w.closing) })
	<-w.done
}
