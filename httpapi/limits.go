package httpapi

import (
	"context"
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
	// StatementTime is the database time the tenant's data requests and
	// audit reads may take per second, measured around each one's
	// transaction, with a
	// burst of one second's worth. Each request is charged what the
	// tenant's recent requests took when it starts (until one has ended,
	// they run one at a time), and settled with
	// what it took when it ends; one that does not fit gets 429
	// statement_time_spent. Zero means no such budget. It bounds what a
	// tenant's expensive queries (filters no index serves, over many
	// rows) cost the others, which the rate and the transactions at once
	// do not: a few requests a second can each take a second.
	StatementTime time.Duration
	// ParallelWorkers is how many parallel workers PostgreSQL may start
	// for one of the tenant's statements (max_parallel_workers_per_gather,
	// set in the transaction). 0, every plan's default, runs each statement
	// in its one backend: a statement with n workers keeps n+1 CPUs busy
	// while StatementTime and the transactions at once count it as one,
	// and the workers come from a pool all tenants share
	// (max_parallel_workers).
	ParallelWorkers int
}

// DefaultLimits are the limits per plan.
var DefaultLimits = map[string]Limit{
	"basic":   {Rate: 50, Burst: 100, Concurrent: 4, StatementTimeout: 5 * time.Second, StatementTime: 200 * time.Millisecond},
	"premium": {Rate: 200, Burst: 400, Concurrent: 16, StatementTimeout: 15 * time.Second, StatementTime: 500 * time.Millisecond},
}

type tenantLimiter struct {
	plan      string // the plan the bucket, slots and budget were made for
	bucket    *rate.Limiter
	passwords *rate.Limiter // the tenant's share of the server's password checks, for new users
	dbTime    *timeBudget   // Limit.StatementTime; nil without a budget
	slots     chan struct{}
	used      time.Time
	refused   atomic.Int64  // when this tenant was last refused, in Unix nanoseconds
	held      *atomic.Int32 // this tenant's refusals held now (maxHeldPerTenant)
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
	sleep func(time.Duration) // releases.sleep; tests record the holds instead
	// passwords is each tenant's share of the server's budget of password
	// checks for the users it creates: a quarter of it.
	passwords Bucket
}

// maxHeld is the most refusals held at once across all tenants; beyond it
// they are sent at once.
const maxHeld = 1024

// maxHeldPerTenant is the most of one tenant's refusals held at once;
// beyond it they are sent at once. A client that retries at once over a
// few connections is slowed as before, each connection's refusal held. A
// flood paced over hundreds of connections is not slowed by holding (it
// opens more), and holding hundreds of its refusals at a time cost the
// server more than answering them (docs/PERFORMANCE.md); nor can one
// tenant's flood take all of maxHeld from the others'.
const maxHeldPerTenant = 64

var errTooMany = fault.E(fault.TooMany, "rate_limited", "This tenant is sending requests faster than its plan allows; retry after the indicated time.")
var errTooManyPasswords = fault.E(fault.TooMany, "too_many_new_passwords", "This tenant is setting new passwords faster than its share of the server's password checks allows; retry after the indicated time.")
var errBusy = fault.E(fault.TooMany, "too_many_transactions", "This tenant has too many requests in progress; retry shortly.")
var errStatementTime = fault.E(fault.TooMany, "statement_time_spent", "This tenant's requests have used the database time its plan allows per second; retry after the indicated time.")

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

// beginTime admits a data request of t if its budget of statement time
// holds what one is expected to take, and charges that; otherwise it says
// how long until it will. The caller settles the returned spend with
// endTime, on the budget it was charged to, even if the tenant's plan
// changes meanwhile.
//
// Until one of the tenant's requests has ended, the budget does not know
// what they cost, so they run one at a time: a request that arrives while
// the first runs waits for it (or for ctx), then is charged what it took.
// Otherwise a tenant's first requests after a while idle, or after the
// server starts, would all be admitted at once, however expensive.
func (l *limiters) beginTime(ctx context.Context, t *tenant.Tenant) (sp spend, retry time.Duration, err error) {
	tl := l.get(t)
	if tl.dbTime == nil {
		return spend{}, 0, nil
	}
	for {
		charged, retry, first, ok := tl.dbTime.begin(time.Now())
		if first != nil {
			select {
			case <-first:
				continue
			case <-ctx.Done():
				// Its deadline passed, or the client left, while it waited:
				// 503 timeout, as for one that ran out of time in the database.
				return spend{}, 0, &fault.Error{Kind: fault.Canceled, Code: "canceled", Message: "The request was canceled or ran out of time.", Err: ctx.Err()}
			}
		}
		if !ok {
			l.refused(tl, retry)
			return spend{}, retry, errStatementTime
		}
		return spend{b: tl.dbTime, charged: charged}, 0, nil
	}
}

// spend is a request's charge to its tenant's budget of statement time;
// the zero value is a tenant without one.
type spend struct {
	b       *timeBudget
	charged time.Duration
}

// endTime settles sp with what its request took.
func (l *limiters) endTime(sp spend, took time.Duration) {
	if sp.b != nil {
		sp.b.end(time.Now(), sp.charged, took)
	}
}

// spendTime runs f, which sets *took to the database time it took, and
// settles sp with it however f ends, a panic included: a first request
// left unsettled would keep every later request of its tenant waiting
// for it until their deadlines.
func (l *limiters) spendTime(sp spend, f func(took *time.Duration) error) error {
	var took time.Duration
	defer func() { l.endTime(sp, took) }()
	return f(&took)
}

// timeBudget is a tenant's budget of statement time: a bucket of time
// that refills at rate, up to burst, and may run into debt. A request is
// charged, when it starts, what the tenant's requests have lately taken
// (at most a burst), so that expensive requests are admitted one at a
// time as the budget allows, not as many as arrive before the first
// ends; it is settled with what it took when it ends.
type timeBudget struct {
	mu       sync.Mutex
	rate     float64 // seconds of statement time per second
	burst    float64 // seconds
	tokens   float64 // seconds; negative is debt
	last     time.Time
	expected float64 // seconds: a moving average of what requests took
	// first, until a request has ended, is closed when the first does;
	// firstIn says that one has been admitted. Nil once the budget has
	// learned.
	first   chan struct{}
	firstIn bool
}

func newTimeBudget(perSecond time.Duration, now time.Time) *timeBudget {
	r := perSecond.Seconds()
	return &timeBudget{rate: r, burst: r, tokens: r, last: now, first: make(chan struct{})}
}

func (b *timeBudget) refill(now time.Time) {
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// begin charges what a request is expected to take, if the budget holds
// it; otherwise it reports how long until it will. While the budget has
// not learned what requests take and one runs, it returns first instead:
// wait for it to close, then begin again.
func (b *timeBudget) begin(now time.Time) (charged, retry time.Duration, first <-chan struct{}, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.first != nil && b.firstIn {
		return 0, 0, b.first, false
	}
	b.refill(now)
	need := min(b.expected, b.burst)
	if b.tokens < need {
		return 0, time.Duration((need - b.tokens) / b.rate * float64(time.Second)), nil, false
	}
	b.tokens -= need
	b.firstIn = b.first != nil
	return time.Duration(need * float64(time.Second)), 0, nil, true
}

// end settles a request charged charged that took took, and learns from
// it what the next one is expected to take.
func (b *timeBudget) end(now time.Time, charged, took time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens -= (took - charged).Seconds()
	if b.first != nil {
		// The first request to end: what it took is what the next is
		// expected to take, and those waiting for it go on.
		b.expected = took.Seconds()
		close(b.first)
		b.first = nil
		return
	}
	b.expected += (took.Seconds() - b.expected) / 4
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
		if tl.held.Add(1) <= maxHeldPerTenant {
			l.hold(min(l.pause, retryAfter(retry)))
		}
		tl.held.Add(-1)
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

// limit is the Limit of t's plan, or the basic plan's for a plan l does
// not know.
func (l *limiters) limit(t *tenant.Tenant) Limit {
	if lim, ok := l.limits[t.Plan]; ok {
		return lim
	}
	return DefaultLimits["basic"]
}

// get returns t's limiter, made on first use, and drops the limiters of
// tenants idle for a while.
func (l *limiters) get(t *tenant.Tenant) *tenantLimiter {
	lim := l.limit(t)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[tenant.ID]*tenantLimiter{}
	}
	tl, ok := l.m[t.ID]
	if !ok || tl.plan != t.Plan {
		// A tenant moved to another plan gets limits made for it. Its
		// requests in flight give their slots back to the limiter they
		// took them from; its share of the password checks, when it was
		// last refused and how many of its refusals are held are not the
		// plan's and carry over.
		slots := lim.Concurrent
		if l.share > 0 {
			slots = min(slots, l.share)
		}
		next := &tenantLimiter{plan: t.Plan, bucket: rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst), slots: make(chan struct{}, slots)}
		if ok {
			next.passwords, next.held = tl.passwords, tl.held
			next.refused.Store(tl.refused.Load())
		} else {
			next.passwords, next.held = rate.NewLimiter(rate.Limit(l.passwords.Rate), l.passwords.Burst), new(atomic.Int32)
		}
		if lim.StatementTime > 0 {
			next.dbTime = newTimeBudget(lim.StatementTime, now)
		}
		tl = next
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
