package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// Limit is what one tenant of a plan may use, so that a noisy tenant slows
// only itself.
type Limit struct {
	Rate             float64       // data requests per second (token bucket)
	Burst            int           // bucket size
	Concurrent       int           // data transactions at once (at most half the app pool, whatever this says)
	StatementTimeout time.Duration // per statement, set in the transaction
}

// DefaultLimits are the limits per plan.
var DefaultLimits = map[string]Limit{
	"basic":   {Rate: 50, Burst: 100, Concurrent: 4, StatementTimeout: 5 * time.Second},
	"premium": {Rate: 200, Burst: 400, Concurrent: 16, StatementTimeout: 15 * time.Second},
}

type tenantLimiter struct {
	bucket    *rate.Limiter
	passwords *rate.Limiter // the tenant's share of the server's password checks, for new users
	slots     chan struct{}
	used      time.Time
	refused   atomic.Int64 // when this tenant was last refused, in Unix nanoseconds
}

// limiters holds one token bucket and one set of transaction slots per
// tenant, made on first use and dropped after an idle while.
type limiters struct {
	mu     sync.Mutex
	m      map[tenant.ID]*tenantLimiter
	limits map[string]Limit
	share  int // the most transactions one tenant may hold, whatever its plan; 0 is no cap
	swept  time.Time
	// pause is how long a refusal is held before it is sent when the tenant
	// was already refused within the last second: a client that ignores
	// Retry-After and retries at once is slowed to a few requests per
	// second per connection, so a flood's refusals cost the server little.
	// 0 holds nothing. held bounds the refusals held at once.
	pause time.Duration
	held  chan struct{}
	sleep func(time.Duration) // time.Sleep; tests record the holds instead
	// passwords is each tenant's share of the server's budget of password
	// checks for the users it creates: a quarter of it.
	passwords Bucket
}

// maxHeld is the most refusals held at once across all tenants; beyond it
// they are sent at once.
const maxHeld = 1024

var errTooMany = fault.E(fault.TooMany, "rate_limited", "This tenant is sending requests faster than its plan allows; retry after the indicated time.")
var errTooManyPasswords = fault.E(fault.TooMany, "too_many_new_passwords", "This tenant is setting new passwords faster than its share of the server's password checks allows; retry after the indicated time.")
var errBusy = fault.E(fault.TooMany, "too_many_transactions", "This tenant has too many requests in progress; retry shortly.")

// admit takes a token from t's bucket, or says how long to wait. Every
// request of a tenant's user takes one, whatever it asks for: one the
// server refuses (an unknown table, another tenant's id) still costs work
// and an audit event, so it counts against the plan like any other.
func (l *limiters) admit(t *tenant.Tenant) (retry time.Duration, err error) {
	tl := l.get(t)
	now := time.Now()
	r := tl.bucket.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		l.refused(tl, d)
		return d, errTooMany
	}
	return 0, nil
}

// slot takes one of t's transaction slots, or says how long to wait. The
// returned release gives it back.
func (l *limiters) slot(t *tenant.Tenant) (release func(), retry time.Duration, err error) {
	tl := l.get(t)
	select {
	case tl.slots <- struct{}{}:
		return func() { <-tl.slots }, 0, nil
	default:
		l.refused(tl, busyRetry)
		return nil, busyRetry, errBusy
	}
}

// password takes one from t's share of the server's password checks, for
// a user it creates, or says how long to wait. One tenant creating users
// as fast as its plan allows then uses at most a quarter of the budget,
// and the other tenants' logins keep the rest.
func (l *limiters) password(t *tenant.Tenant) (retry time.Duration, err error) {
	tl := l.get(t)
	now := time.Now()
	r := tl.passwords.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 || !r.OK() {
		r.CancelAt(now)
		if !r.OK() {
			d = time.Second
		}
		l.refused(tl, d)
		return d, errTooManyPasswords
	}
	return 0, nil
}

// busyRetry is the wait a refusal for too many transactions suggests.
const busyRetry = 100 * time.Millisecond

// refused notes a refusal of tl's tenant. A tenant refused again within a
// second has this refusal held before it is sent: isolation, since only
// this tenant's own refusal waits, and never longer than its Retry-After
// tells the client to.
func (l *limiters) refused(tl *tenantLimiter, retry time.Duration) {
	now := time.Now().UnixNano()
	if last := tl.refused.Swap(now); l.pause > 0 && now-last < int64(time.Second) {
		l.hold(min(l.pause, retryAfter(retry)))
	}
}

// hold waits d, unless maxHeld refusals are already waiting.
func (l *limiters) hold(d time.Duration) {
	select {
	case l.held <- struct{}{}:
		l.sleep(d)
		<-l.held
	default:
	}
}

// get returns t's limiter, made on first use, and drops the limiters of
// tenants idle for a while.
func (l *limiters) get(t *tenant.Tenant) *tenantLimiter {
	lim, ok := l.limits[t.Plan]
	if !ok {
		lim = DefaultLimits["basic"]
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[tenant.ID]*tenantLimiter{}
	}
	tl, ok := l.m[t.ID]
	if !ok {
		slots := lim.Concurrent
		if l.share > 0 {
			slots = min(slots, l.share)
		}
		tl = &tenantLimiter{bucket: rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst), slots: make(chan struct{}, slots),
			passwords: rate.NewLimiter(rate.Limit(l.passwords.Rate), l.passwords.Burst)}
		l.m[t.ID] = tl //bulkhead:ok keyed by the verified tenant's UUID; holds counters, no tenant data
	}
	tl.used = now
	if now.Sub(l.swept) > time.Minute {
		for id, x := range l.m {
			if now.Sub(x.used) > 10*time.Minute && len(x.slots) == 0 {
				delete(l.m, id) //bulkhead:ok drops an idle tenant's counters
			}
		}
		l.swept = now
	}
	return tl
}

// setRetryAfter sets Retry-After in whole seconds, at least one.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter(d)/time.Second)))
}

// retryAfter is d as Retry-After says it: whole seconds, at least one.
func retryAfter(d time.Duration) time.Duration {
	return time.Duration(math.Max(1, math.Ceil(d.Seconds()))) * time.Second
}
