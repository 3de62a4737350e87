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

// Tick resolves alarms whose last trigger is older than the quiet period.
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
	Client   *http.Client  // nil: a client with a 10 s timeout
	Attempts int           // zero: 5
	Backoff  time.Duration // first wait; zero: 200 ms, doubling
	Logger   *slog.Logger
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
	go w.deliver(context.WithoutCancel(ctx), body)
}

func (w *WebhookSink) deliver(ctx context.Context, body []byte) {
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
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
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode < 300 {
				return
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		if w.Logger != nil {
			w.Logger.WarnContext(ctx, "alarm webhook failed", "attempt", i+1, "err", err)
		}
		time.Sleep(wait)
		wait *= 2
	}
}
