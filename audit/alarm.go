package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Rules say when an alarm fires.
type Rules struct {
	// DenialBurst fires when one principal is denied more than DenialLimit
	// times within DenialWindow. Zero DenialLimit turns it off.
	DenialLimit  int
	DenialWindow time.Duration
	// Probe fires on any cross-tenant probe.
	Probe bool
	// RowSecurity fires on any write PostgreSQL refused by row security
	// (code row_security_violation): business code aimed at another tenant.
	RowSecurity bool
	// InvalidContext fires on any context that was present but did not
	// verify (from the PostgreSQL log, see TailLog).
	InvalidContext bool
	// Quiet is how long an alarm stays firing after its last trigger;
	// zero means DenialWindow, or five minutes.
	Quiet time.Duration
}

// Alarm is the state of one alarm.
type Alarm struct {
	ID       string     `json:"id"`   // rule and key, e.g. "denial_burst:acme/u-1"
	Rule     string     `json:"rule"` // denial_burst, cross_tenant_probe, row_security_violation
	Firing   bool       `json:"firing"`
	Since    time.Time  `json:"since"`
	Last     time.Time  `json:"last"`
	Resolved *time.Time `json:"resolved,omitempty"`
	Count    int        `json:"count"`
	Why      string     `json:"why"`
	TenantID string     `json:"tenant_id,omitempty"`
}

// Sink receives alarm transitions (fired and resolved).
type Sink interface {
	Notify(ctx context.Context, a Alarm)
}

// Alarms evaluates chained events against rules. It is safe for
// concurrent use.
type Alarms struct {
	rules Rules
	sinks []Sink
	now   func() time.Time

	mu      sync.Mutex
	state   map[string]*Alarm
	denials map[string][]time.Time // principal key → recent denial times
}

// NewAlarms returns an evaluator; now may be nil (time.Now).
func NewAlarms(r Rules, now func() time.Time, sinks ...Sink) *Alarms {
	if r.DenialWindow == 0 {
		r.DenialWindow = time.Minute
	}
	if r.Quiet == 0 {
		r.Quiet = max(r.DenialWindow, 5*time.Minute)
	}
	if now == nil {
		now = time.Now
	}
	return &Alarms{rules: r, sinks: sinks, now: now, state: map[string]*Alarm{}, denials: map[string][]time.Time{}}
}

// Observe feeds one event.
func (a *Alarms) Observe(ctx context.Context, e Event) {
	now := a.now()
	var fire []Alarm
	a.mu.Lock()
	switch {
	case e.Decision == Probe && a.rules.Probe:
		fire = append(fire, a.trigger("cross_tenant_probe", e.TenantID, e.TenantID, now,
			fmt.Sprintf("tenant %s asked for another tenant's row (request %s)", e.TenantID, e.RequestID)))
	case e.Decision == Invalid && a.rules.InvalidContext:
		fire = append(fire, a.trigger("invalid_context", e.LoginRole, e.TenantID, now,
			fmt.Sprintf("login role %s presented a tenant context that did not verify", e.LoginRole)))
	case e.Code == "row_security_violation" && a.rules.RowSecurity:
		fire = append(fire, a.trigger("row_security_violation", e.TenantID+"/"+e.Subject, e.TenantID, now,
			fmt.Sprintf("a write by %s of tenant %s was refused by row security", e.Subject, e.TenantID)))
	}
	if e.Decision == Deny && a.rules.DenialLimit > 0 {
		key := e.TenantID + "/" + e.Subject
		if e.Subject == "" {
			key = "ip:" + e.SourceIP
		}
		times := append(a.denials[key], now)
		cut := 0
		for cut < len(times) && now.Sub(times[cut]) > a.rules.DenialWindow {
			cut++
		}
		times = times[cut:]
		a.denials[key] = times
		if len(times) > a.rules.DenialLimit {
			fire = append(fire, a.trigger("denial_burst", key, e.TenantID, now,
				fmt.Sprintf("%d denials for %s within %s", len(times), key, a.rules.DenialWindow)))
		}
	}
	a.mu.Unlock()
	for _, al := range fire {
		if al.ID != "" {
			a.notify(ctx, al)
		}
	}
}

// trigger records a trigger; it returns the alarm when it starts firing.
func (a *Alarms) trigger(rule, key, tenantID string, now time.Time, why string) Alarm {
	id := rule + ":" + key
	al, ok := a.state[id]
	if !ok || !al.Firing {
		al = &Alarm{ID: id, Rule: rule, Firing: true, Since: now, TenantID: tenantID}
		a.state[id] = al
		ok = false
	}
	al.Last, al.Why = now, why
	al.Count++
	if ok {
		return Alarm{} // already firing
	}
	return *al
}

// ResolvedRetention is how long a resolved alarm stays in [Alarms.State]
// (GET /v1/alarms, the metrics) after it resolved.
const ResolvedRetention = time.Hour

// Tick resolves alarms whose last trigger is older than the quiet period,
// and forgets those resolved more than ResolvedRetention ago.
func (a *Alarms) Tick(ctx context.Context) {
	now := a.now()
	var resolved []Alarm
	a.mu.Lock()
	for _, al := range a.state {
		if al.Firing && now.Sub(al.Last) >= a.rules.Quiet {
			at := now
			al.Firing, al.Resolved = false, &at
			resolved = append(resolved, *al)
		}
	}
	for k, ts := range a.denials {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) > a.rules.DenialWindow {
			delete(a.denials, k)
		}
	}
	// Resolved alarms are kept for ResolvedRetention, then forgotten: an
	// alarm keyed by a source address would otherwise stay for the life of
	// the process for every address that ever crossed the limit.
	for id, al := range a.state {
		if !al.Firing && al.Resolved != nil && now.Sub(*al.Resolved) > ResolvedRetention {
			delete(a.state, id)
		}
	}
	a.mu.Unlock()
	for _, al := range resolved {
		a.notify(ctx, al)
	}
}

func (a *Alarms) notify(ctx context.Context, al Alarm) {
	for _, s := range a.sinks {
		s.Notify(ctx, al)
	}
}

// State returns every alarm, firing first, newest first.
func (a *Alarms) State() []Alarm {
	a.mu.Lock()
	out := make([]Alarm, 0, len(a.state))
	for _, al := range a.state {
		out = append(out, *al)
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Firing != out[j].Firing {
			return out[i].Firing
		}
		return out[i].Last.After(out[j].Last)
	})
	return out
}

// LogSink logs transitions: firing at Error (an operator must act),
// resolved at Info.
type LogSink struct{ Logger *slog.Logger }

// Notify implements Sink.
func (l LogSink) Notify(ctx context.Context, a Alarm) {
	if a.Firing {
		l.Logger.ErrorContext(ctx, "alarm firing", "alarm", a.ID, "rule", a.Rule, "why", a.Why, "tenant_id", a.TenantID)
		return
	}
	l.Logger.InfoContext(ctx, "alarm resolved", "alarm", a.ID, "rule", a.Rule)
}

// WebhookSink POSTs each transition as JSON with an
// X-Bulkhead-Signature header, "sha256=" and the hex HMAC-SHA256 of the
// body under Secret, retrying with exponential backoff.
type WebhookSink struct {
	URL      string
	Secret   []byte
	Client   *http.Client  // nil: a client with a 10 s timeout; redirects are never followed
	Attempts int           // zero: 5
	Backoff  time.Duration // first wait; zero: 200 ms, doubling
	Logger   *slog.Logger
	// What is logged when a delivery fails; empty: "alarm webhook failed".
	FailureMessage string

	inflight sync.WaitGroup
}

// Close waits, at most until ctx ends, for deliveries still in flight, so
// that what was posted last (the shutdown checkpoint, the last alarms)
// reaches the receiver or has run out of attempts before the process exits.
func (w *WebhookSink) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: webhook deliveries still in flight: %w", ctx.Err())
	}
}

// TimestampedSignature returns the X-Bulkhead-Signature-Timestamped value
// of body sent at the Unix time ts: "sha256=" and the hex HMAC-SHA256 of
// "<ts>.<body>" under secret. A receiver that checks it, and that ts (the
// X-Bulkhead-Timestamp header) is recent, refuses a captured delivery
// replayed later; X-Bulkhead-Signature alone covers the body only.
func TimestampedSignature(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Signature returns the X-Bulkhead-Signature value of body under secret.
func Signature(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Notify implements Sink. It delivers in the background.
func (w *WebhookSink) Notify(ctx context.Context, a Alarm) { w.Post(ctx, a) }

// Post delivers any JSON document the same way (signed, retried, in the
// background): the sequencer anchors its checkpoints outside the database
// with it.
func (w *WebhookSink) Post(ctx context.Context, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		return
	}
	w.inflight.Add(1)
	go func() {
		defer w.inflight.Done()
		w.deliver(context.WithoutCancel(ctx), body)
	}()
}

// noRedirects makes a 3xx the answer: a redirect is not a delivery (Go
// would resend the POST as a bodiless GET on 301-303, and the signed body
// elsewhere on 307 and 308).
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func (w *WebhookSink) deliver(ctx context.Context, body []byte) {
	client := &http.Client{Timeout: 10 * time.Second}
	if w.Client != nil {
		c := *w.Client
		client = &c
	}
	client.CheckRedirect = noRedirects
	attempts, wait := w.Attempts, w.Backoff
	if attempts == 0 {
		attempts = 5
	}
	if wait == 0 {
		wait = 200 * time.Millisecond
	}
	for i := 0; i < attempts; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Bulkhead-Signature", Signature(w.Secret, body))
		ts := time.Now().Unix()
		req.Header.Set("X-Bulkhead-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("X-Bulkhead-Signature-Timestamped", TimestampedSignature(w.Secret, ts, body))
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode < 300 {
				return
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		if w.Logger != nil {
			msg := w.FailureMessage
			if msg == "" {
				msg = "alarm webhook failed"
			}
			w.Logger.WarnContext(ctx, msg, "attempt", i+1, "err", err)
		}
		if i == attempts-1 {
			return
		}
		time.Sleep(wait)
		wait *= 2
	}
}
