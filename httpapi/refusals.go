package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"runtime"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// Bucket is a token bucket: Rate tokens a second, at most Burst at once.
type Bucket struct {
	Rate  float64
	Burst int
}

// DefaultAnonymousRefusals is how many denials of requests without a
// principal each source may get: past it, 429 too_many_refusals.
var DefaultAnonymousRefusals = Bucket{Rate: 20, Burst: 200}

// DefaultAnonymousRefusalsTotal is how many denials of requests without a
// principal the whole server gives, from all sources together, before
// the rest get 429 too_many_refusals: it bounds a flood from many
// addresses, each within its share. Its burst is one second's worth:
// a burst of ten seconds' worth let a flood's first half second bring a
// thousand signature checks and audited denials at once, which raised
// a quiet tenant's p99 in the bench several times more than the steady
// rate did (docs/PERFORMANCE.md).
var DefaultAnonymousRefusalsTotal = Bucket{Rate: 100, Burst: 100}

// DefaultFailedLogins is how many failed logins each source may have
// before its logins get 429 too_many_refusals without a password check.
var DefaultFailedLogins = Bucket{Rate: 1, Burst: 10}

// DefaultPasswordChecks is the server's budget of password checks when
// Config.PasswordChecks is zero: 2 a second for each CPU the process may
// use (GOMAXPROCS), with a burst of twice as many. With OWASP's argon2id
// parameters a check takes about 30 ms of a CPU here, so a flood holds
// password work to about 6% of the CPUs; servers whose users log in more
// often raise it.
func DefaultPasswordChecks() Bucket {
	n := runtime.GOMAXPROCS(0)
	return Bucket{Rate: 2 * float64(n), Burst: 4 * n}
}

var errPasswordChecksBusy = fault.E(fault.Unavailable, "password_checks_busy", "The server is checking as many passwords as it allows; retry after the indicated time.")

var errTenantLoginsBusy = fault.E(fault.Unavailable, "tenant_logins_busy", "Logins to this tenant are using all of its share of the server's password checks; retry after the indicated time.")

var errTooManyRefusals = fault.E(fault.TooMany, "too_many_refusals", "Too many requests without valid credentials came from this address; retry after the indicated time.")

// maxSources bounds the sources tallied at once; beyond it, refusals from
// new sources share one tally under the zero address.
const maxSources = 100_000

// anonTally bounds, per source, the denials of requests that carry no
// valid credentials (401, unknown routes, failed logins). Each denial is
// audited before it is answered; without a bound, anyone who can reach the
// server could make it write to the audit trail, durably and in order
// with every tenant's events, as fast as they could send. Past its share
// a source gets 429 too_many_refusals instead, not audited one by one but
// counted, and FlushRefusals writes one event per source with the count.
type anonTally struct {
	mu      sync.Mutex
	bucket  Bucket
	sources map[netip.Addr]*anonSource
	swept   time.Time
	// total, when not nil, bounds the denials of all sources together:
	// past it they are counted under the zero address, the overflow tally.
	total *rate.Limiter
}

type anonSource struct {
	bucket      *rate.Limiter
	inflight    int // requests admitted by begin and not done yet
	used        time.Time
	unrecorded  int64
	codes       map[string]int64
	first, last time.Time
}

// sourceKey is the tally key of a client address: the address itself for
// IPv4, its /64 for IPv6, since one host commonly holds a whole /64.
func sourceKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.Addr()
		}
	}
	return a.Unmap()
}

// source returns addr's tally, made on first use; t.mu is held. It drops
// the tallies of sources idle for a while, and past maxSources new sources
// share one tally under the zero address.
func (t *anonTally) source(addr netip.Addr, now time.Time) *anonSource {
	key := sourceKey(addr)
	if t.sources == nil {
		t.sources = map[netip.Addr]*anonSource{} //bulkhead:ok counters keyed by source address, no tenant data
	}
	if now.Sub(t.swept) > time.Minute {
		for k, s := range t.sources {
			if s.unrecorded == 0 && s.inflight == 0 && now.Sub(s.used) > 10*time.Minute {
				delete(t.sources, k) //bulkhead:ok counters keyed by source address, no tenant data
			}
		}
		t.swept = now //bulkhead:ok counters keyed by source address, no tenant data
	}
	s, ok := t.sources[key]
	if !ok {
		if len(t.sources) >= maxSources {
			key = netip.Addr{}
			s = t.sources[key]
		}
		if s == nil {
			s = &anonSource{bucket: rate.NewLimiter(rate.Limit(t.bucket.Rate), t.bucket.Burst)}
			t.sources[key] = s //bulkhead:ok counters keyed by source address, no tenant data
		}
	}
	s.used = now //bulkhead:ok counters keyed by source address, no tenant data
	return s
}

// count notes one request refused with 429 that would have been denied
// with code, for the next flush; the tally's lock is held.
func (s *anonSource) count(code string, now time.Time) {
	if s.unrecorded == 0 {
		s.first, s.codes = now, map[string]int64{} //bulkhead:ok counters keyed by source address, no tenant data
	}
	s.unrecorded++  //bulkhead:ok counters keyed by source address, no tenant data
	s.codes[code]++ //bulkhead:ok counters keyed by source address, no tenant data
	s.last = now    //bulkhead:ok counters keyed by source address, no tenant data
}

// allow says whether a request from addr may be denied with code (and
// the denial audited), taking from the share; if not, it is counted for
// the next flush, and retry says when the source has a share again.
func (t *anonTally) allow(addr netip.Addr, code string, now time.Time) (retry time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.source(addr, now)
	r := s.bucket.ReserveN(now, 1)
	if retry = r.DelayFrom(now); retry != 0 {
		r.CancelAt(now)
		s.count(code, now)
		return retry, false
	}
	if t.total == nil {
		return 0, true
	}
	g := t.total.ReserveN(now, 1)
	if retry = g.DelayFrom(now); retry == 0 && g.OK() {
		return 0, true
	}
	g.CancelAt(now)
	r.CancelAt(now)
	t.overflow(now).count(code, now)
	return max(retry, time.Millisecond), false
}

// overflow returns the tally of the zero address, where denials past the
// server's total (and those of sources beyond maxSources) are counted;
// t.mu is held.
func (t *anonTally) overflow(now time.Time) *anonSource {
	if t.sources == nil {
		t.sources = map[netip.Addr]*anonSource{} //bulkhead:ok counters keyed by source address, no tenant data
	}
	s := t.sources[netip.Addr{}]
	if s == nil {
		s = &anonSource{bucket: rate.NewLimiter(rate.Limit(t.bucket.Rate), t.bucket.Burst)}
		t.sources[netip.Addr{}] = s //bulkhead:ok counters keyed by source address, no tenant data
	}
	s.used = now //bulkhead:ok counters keyed by source address, no tenant data
	return s
}

// overAll is over with the server's total as well: addr is over when its
// own share is used up, or when the shares of all sources together are.
// It guards work that only a request with valid credentials deserves,
// such as checking a token the server has not seen pass.
func (t *anonTally) overAll(addr netip.Addr, code string, now time.Time) (retry time.Duration, over bool) {
	if retry, over = t.over(addr, code, now); over || t.total == nil {
		return retry, over
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tokens := t.total.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	t.overflow(now).count(code, now)
	return untilOne(tokens, float64(t.total.Limit())), true
}

// over says whether addr has used up its share, without taking from it;
// if it has, the request is counted with code for the next flush, and
// retry says when the share has room again. It guards work done before a
// request can fail, such as a credential lookup.
func (t *anonTally) over(addr netip.Addr, code string, now time.Time) (retry time.Duration, over bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.source(addr, now)
	tokens := s.bucket.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	s.count(code, now)
	return untilOne(tokens, t.bucket.Rate), true
}

// spend takes one from addr's share when it has one, without counting a
// denial and without the server's total. It is for answers that are not
// denials and take nothing from other sources' shares, but of which one
// source sending many should still use up its share: logins refused
// because the password checks are busy.
func (t *anonTally) spend(addr netip.Addr, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.source(addr, now)
	if s.bucket.TokensAt(now) >= 1 {
		s.bucket.ReserveN(now, 1)
	}
}

// begin admits a request from addr whose outcome is not known yet, such
// as a login before its password is checked, if the share has room for it
// and for every such request already in flight from addr; done then says
// whether it failed, and only a failure takes from the share. Past the
// share, the request is counted with code for the next flush, and retry
// says when the share has room again.
func (t *anonTally) begin(addr netip.Addr, code string, now time.Time) (done func(failed bool), retry time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.source(addr, now)
	if room := s.bucket.TokensAt(now) - float64(s.inflight); room < 1 {
		s.count(code, now)
		return nil, untilOne(room, t.bucket.Rate), false
	}
	s.inflight++ //bulkhead:ok counters keyed by source address, no tenant data
	return func(failed bool) {
		t.mu.Lock()
		defer t.mu.Unlock()
		s.inflight-- //bulkhead:ok counters keyed by source address, no tenant data
		if failed {
			s.bucket.ReserveN(time.Now(), 1) // taken, even into debt: the request already ran
		}
	}, 0, true
}

// untilOne is how long a bucket holding tokens takes to hold one.
func untilOne(tokens, perSecond float64) time.Duration {
	return max(time.Duration((1-tokens)/perSecond*float64(time.Second)), time.Millisecond)
}

// refusalSummary is what Flush writes for one source.
type refusalSummary struct {
	source      netip.Addr
	count       int64
	codes       map[string]int64
	first, last time.Time
}

// drain returns the counted refusals, by source, and starts counting
// afresh.
func (t *anonTally) drain() []refusalSummary {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []refusalSummary
	for k, s := range t.sources {
		if s.unrecorded == 0 {
			continue
		}
		out = append(out, refusalSummary{source: k, count: s.unrecorded, codes: s.codes, first: s.first, last: s.last})
		s.unrecorded, s.codes = 0, nil //bulkhead:ok counters keyed by source address, no tenant data
	}
	sort.Slice(out, func(i, j int) bool { return out[i].source.Less(out[j].source) })
	return out
}

// putBack returns summaries that could not be written to the tally, so
// that the next Flush writes them.
func (t *anonTally) putBack(rs []refusalSummary) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range rs {
		s := t.source(r.source, r.last)
		if s.unrecorded == 0 {
			s.first, s.last, s.codes = r.first, r.last, map[string]int64{} //bulkhead:ok counters keyed by source address, no tenant data
		}
		s.unrecorded += r.count //bulkhead:ok counters keyed by source address, no tenant data
		for c, n := range r.codes {
			s.codes[c] += n //bulkhead:ok counters keyed by source address, no tenant data
		}
		s.first = minTime(s.first, r.first) //bulkhead:ok counters keyed by source address, no tenant data
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// anonymousShare says whether r may be denied with code: always when it
// has a principal (a tenant's requests are bounded by its plan's bucket,
// and platform admins are few), and otherwise within its source's share
// (Config.AnonymousRefusals). Past the share the answer is held as a
// tenant's repeated refusals are, so that a client that retries at once
// is slowed, and retry says when to come back.
func (s *Server) anonymousShare(r *http.Request, code string) (retry time.Duration, ok bool) {
	if _, ok := tenant.FromContext(r.Context()); ok {
		return 0, true
	}
	retry, ok = s.anon.allow(sourceIP(r), code, time.Now())
	if !ok {
		s.holdAnonymous(retry)
	}
	return retry, ok
}

// refuseIfOver answers 429 too_many_refusals, and reports true, when r's
// source has used up its share in t (Config.AnonymousRefusals or
// Config.FailedLogins), without taking from the share. Handlers that spend real work before
// they can fail, such as a login's password hash, call it first, so that
// a source past its share costs no more than its refusal.
func (s *Server) refuseIfOver(w http.ResponseWriter, r *http.Request, t *anonTally, code string) bool {
	retry, over := t.over(sourceIP(r), code, time.Now())
	return over && s.refuseOver(w, r, retry)
}

// refuseIfOverAll is refuseIfOver with the server's total of denials as
// well (Config.AnonymousRefusalsTotal).
func (s *Server) refuseIfOverAll(w http.ResponseWriter, r *http.Request, t *anonTally, code string) bool {
	retry, over := t.overAll(sourceIP(r), code, time.Now())
	return over && s.refuseOver(w, r, retry)
}

// refuseOver answers 429 too_many_refusals, held, and reports true.
func (s *Server) refuseOver(w http.ResponseWriter, r *http.Request, retry time.Duration) bool {
	s.holdAnonymous(retry)
	setRetryAfter(w, retry)
	s.writeError(w, r, errTooManyRefusals)
	return true
}

// beginLogin admits a login from r's source before its password is
// checked, if its share of failed logins has room for it and for the
// logins already in flight from there; otherwise it answers
// 429 too_many_refusals and reports false. done says whether the login
// failed: only a failure takes from the share.
func (s *Server) beginLogin(w http.ResponseWriter, r *http.Request) (done func(failed bool), ok bool) {
	done, retry, ok := s.logins.begin(sourceIP(r), errLogin.Code, time.Now())
	if ok {
		return done, true
	}
	s.holdAnonymous(retry)
	setRetryAfter(w, retry)
	s.writeError(w, r, errTooManyRefusals)
	return nil, false
}

// passwordCheck takes one password check from the server's budget
// (Config.PasswordChecks). Past it, it answers 503 password_checks_busy
// with Retry-After and reports false: the caller checks no password.
func (s *Server) passwordCheck(w http.ResponseWriter, r *http.Request) bool {
	return s.takeCheck(w, r, nil)
}

// loginCheck takes one password check from the server's budget and one
// from the share of it that logins naming this tenant get (a quarter).
// Past either it answers 503 with Retry-After, password_checks_busy or
// tenant_logins_busy, and reports false: the caller looks nothing up and
// checks no password. The answer depends only on the name the login
// gives and the time, never on whether that tenant, its user or the
// password exist. A login refused by its tenant's share takes nothing
// from the server's budget, so a flood naming one tenant leaves the rest
// to the other tenants' logins.
func (s *Server) loginCheck(w http.ResponseWriter, r *http.Request, name string) bool {
	return s.takeCheck(w, r, func(now time.Time) *rate.Reservation { return s.loginShares.reserve(name, now) })
}

// takeCheck takes one check from the server's budget and, when share is
// not nil, one from the share it reserves; if either has none, it gives
// back what it took, answers 503, and reports false.
func (s *Server) takeCheck(w http.ResponseWriter, r *http.Request, share func(time.Time) *rate.Reservation) bool {
	now := time.Now()
	all := s.checks.ReserveN(now, 1)
	if retry := all.DelayFrom(now); !all.OK() || retry > 0 {
		all.CancelAt(now)
		s.checksBusy(w, r, errPasswordChecksBusy, all.OK(), retry)
		return false
	}
	if share == nil {
		return true
	}
	one := share(now)
	if retry := one.DelayFrom(now); !one.OK() || retry > 0 {
		one.CancelAt(now)
		all.CancelAt(now)
		s.checksBusy(w, r, errTenantLoginsBusy, one.OK(), retry)
		return false
	}
	return true
}

// checksBusy answers err with its Retry-After: retry, or a second when
// the bucket could never grant the check (ok false). A request without
// credentials (a login) gets its answer held as a 429 of such a request
// is, so that a flood of logins from many addresses, each refused here,
// is answered in batches rather than one wake-up at a time.
func (s *Server) checksBusy(w http.ResponseWriter, r *http.Request, err error, ok bool, retry time.Duration) {
	if !ok {
		retry = time.Second
	}
	if _, authenticated := tenant.FromContext(r.Context()); !authenticated {
		s.holdAnonymous(retry)
	}
	setRetryAfter(w, retry)
	s.writeError(w, r, err)
}

// loginShares holds, for each tenant name logins give, that name's share
// of the server's budget of password checks. It is keyed by the name as
// given, whether or not a tenant has it, so that a share's state says
// nothing about which tenants exist beyond what others' logins with that
// name show (a residual risk: docs/trust-model.md); names that are not
// valid slugs share one. A share is made only for a login the server's budget admitted, so
// at most that many are made a second, and a share idle long enough to
// be full again is dropped: the map stays small.
type loginShares struct {
	mu     sync.Mutex
	bucket Bucket
	m      map[string]*loginShare
	swept  time.Time
}

type loginShare struct {
	lim  *rate.Limiter
	used time.Time
}

// reserve takes one check from name's share at now.
func (l *loginShares) reserve(name string, now time.Time) *rate.Reservation {
	if _, err := tenant.ParseSlug(name); err != nil {
		name = ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*loginShare{} //bulkhead:ok counters keyed by a login's tenant name, no tenant data
	}
	if now.Sub(l.swept) > time.Minute {
		for k, x := range l.m {
			if now.Sub(x.used) > time.Minute && x.lim.TokensAt(now) >= float64(x.lim.Burst()) {
				delete(l.m, k) //bulkhead:ok drops a full, idle share: the same as a new one
			}
		}
		l.swept = now //bulkhead:ok counters keyed by a login's tenant name, no tenant data
	}
	x, ok := l.m[name]
	if !ok {
		x = &loginShare{lim: rate.NewLimiter(rate.Limit(l.bucket.Rate), l.bucket.Burst)}
		l.m[name] = x //bulkhead:ok counters keyed by a login's tenant name, no tenant data
	}
	x.used = now
	return x.lim.ReserveN(now, 1)
}

// holdAnonymous holds a 429 for a source past its share, as a tenant's
// repeated refusals are held (Config.RefusalPause, never longer than its
// Retry-After), but in slots of its own: a flood without credentials that
// fills them cannot stop the holding of tenants' refusals, nor the other
// way round.
func (s *Server) holdAnonymous(retry time.Duration) {
	if s.quota.pause <= 0 {
		return
	}
	select {
	case s.anonHeld <- struct{}{}:
		s.quota.sleep(min(s.quota.pause, retryAfter(retry)))
		<-s.anonHeld
	default:
	}
}

// FlushRefusals writes one audit event per source that got
// 429 too_many_refusals since the last flush (see
// Config.AnonymousRefusals): how many, with the codes the denials would
// have had, between when and when. Run it every few seconds and once more after the server has
// stopped taking requests; summaries it could not write are kept for the
// next call.
func (s *Server) FlushRefusals(ctx context.Context) error {
	if err := s.flush(ctx, &s.anon); err != nil {
		return err
	}
	return s.flush(ctx, &s.logins)
}

func (s *Server) flush(ctx context.Context, t *anonTally) error {
	rs := t.drain()
	for i, r := range rs {
		detail, err := json.Marshal(map[string]any{"count": r.count, "codes": r.codes,
			"first": r.first.UTC().Format(time.RFC3339Nano), "last": r.last.UTC().Format(time.RFC3339Nano)})
		if err != nil {
			return err
		}
		src := r.source.String()
		if !r.source.IsValid() {
			src = "" // the overflow tally: sources beyond maxSources
		}
		e := audit.Event{At: time.Now(), Action: "http:Refusals", Decision: audit.Deny, Code: "too_many_refusals",
			SourceIP: src, Detail: detail, Visibility: audit.VisiblePlatform}
		if s.audit == nil {
			continue
		}
		if err := s.audit.Record(ctx, e); err != nil {
			t.putBack(rs[i:])
			return fmt.Errorf("httpapi: audit the counted refusals: %w", err)
		}
	}
	return nil
}

// RunRefusalFlush calls FlushRefusals every interval until ctx ends.
func (s *Server) RunRefusalFlush(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.FlushRefusals(ctx); err != nil {
				s.log.Warn("counted refusals not written yet", "err", err)
			}
		}
	}
}
