package httpapi

import (
	"sync"
	"time"
)

// releaseGrain is how finely held refusals are released: every hold that
// falls due within the same grain ends at once, at the grain's start.
const releaseGrain = 25 * time.Millisecond

// releases holds refusals and lets them go in batches. Holding each one
// with its own timer (time.Sleep) cost the server a timer firing and a
// thread woken per refusal: a paced flood that kept a few hundred
// refusals held (each for its tenant's pause) raised another tenant's p99
// well above what the same flood at a bare handler did. Here, the holds
// due within one grain share one timer and one channel, so that a flood
// costs at most 1/releaseGrain timers a second whatever its rate.
//
// A hold ends up to one grain before it is due, never after: never
// longer than the Retry-After it is bounded by.
type releases struct {
	now       func() time.Time
	afterFunc func(time.Duration, func()) // time.AfterFunc; tests fire it themselves

	mu    sync.Mutex
	slots map[int64]chan struct{} // by grain number since the epoch
}

func newReleases() *releases {
	return &releases{now: time.Now, afterFunc: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

// sleep returns at the start of the grain in which d from now falls, or at
// once if that has passed.
func (r *releases) sleep(d time.Duration) {
	if ch := r.wait(d); ch != nil {
		<-ch
	}
}

// wait returns the channel that is closed when a hold of d from now ends,
// or nil if it ends at once.
func (r *releases) wait(d time.Duration) <-chan struct{} {
	now := r.now()
	grain := now.Add(d).UnixNano() / int64(releaseGrain)
	after := time.Unix(0, grain*int64(releaseGrain)).Sub(now)
	if after <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ch, ok := r.slots[grain]
	if !ok {
		if r.slots == nil {
			r.slots = map[int64]chan struct{}{}
		}
		ch = make(chan struct{})
		r.slots[grain] = ch
		r.afterFunc(after, func() {
			r.mu.Lock()
			delete(r.slots, grain)
			r.mu.Unlock()
			close(ch)
		})
	}
	return ch
}
