// Package audit defines bulkhead's audit events and their tamper-evident
// hash chain.
//
// An event is written first to an inbox: by triggers on the tenant tables
// in the same transaction as the change (so direct-SQL functions are
// audited too), or by the server for decisions such as denials. One trusted
// sequencer, outside tenant transactions, then moves events from the inbox
// into the chain: it gives each a sequence number and the hash
//
//	hash(n) = SHA-256(hash(n-1) || body(n))
//
// where body is the event's canonical JSON ([Event.Canonical]). Editing,
// deleting, inserting or reordering chained events breaks the chain at the
// first event touched, which [VerifyChain] names. Checkpoints (the hash at a
// sequence number, signed with the audit key) are written outside the
// database too, so that cutting off the tail of the chain is detectable.
package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Decisions.
const (
	Allow = "allow"
	Deny  = "deny"
	// Probe marks a request for an id that exists in another tenant. It is
	// visible to platform administrators only.
	Probe = "probe"
	// Invalid marks a tenant context that was present but did not verify.
	Invalid = "invalid"
)

// Visibility says who may read an event.
const (
	VisibleTenant   = "tenant"   // the tenant's admins and platform admins
	VisiblePlatform = "platform" // platform admins only
)

// Event is one audit event. Field order is the canonical order.
type Event struct {
	EventID    string          `json:"event_id"`
	At         time.Time       `json:"at"`
	RequestID  string          `json:"request_id,omitempty"`
	TenantID   string          `json:"tenant_id,omitempty"`
	Tenant     string          `json:"tenant,omitempty"`
	Subject    string          `json:"sub,omitempty"`
	Role       string          `json:"role,omitempty"`
	LoginRole  string          `json:"login_role,omitempty"`
	Action     string          `json:"action"`
	Resource   string          `json:"resource,omitempty"`
	Decision   string          `json:"decision"`
	Code       string          `json:"code,omitempty"`
	Status     int             `json:"status,omitempty"`
	SourceIP   string          `json:"source_ip,omitempty"`
	UserAgent  string          `json:"user_agent,omitempty"`
	Statement  string          `json:"statement,omitempty"`
	Rows       int64           `json:"rows,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	Visibility string          `json:"visibility"`
}

// Canonical returns the event's canonical encoding: JSON with fields in
// declaration order, times in UTC with microseconds (PostgreSQL's
// precision), no insignificant space, and detail compacted. A NUL
// character in any string (a request's path can carry one as %00) is
// written as U+FFFD, since PostgreSQL's jsonb cannot hold U+0000; invalid
// UTF-8 is written as U+FFFD by encoding/json already.
func (e Event) Canonical() ([]byte, error) {
	e.At = e.At.UTC().Truncate(time.Microsecond)
	if e.Visibility == "" {
		e.Visibility = VisibleTenant
	}
	if len(e.Detail) > 0 {
		var b bytes.Buffer
		if err := json.Compact(&b, e.Detail); err != nil {
			return nil, fmt.Errorf("audit: detail: %w", err)
		}
		e.Detail = b.Bytes()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return scrubNUL(b), nil
}

// scrubNUL rewrites each \u0000 escape in the JSON text b as \ufffd. In
// JSON a backslash starts an escape only inside a string, and an escaped
// backslash (\\) is skipped whole, so text that merely spells \u0000 is
// left as it is.
func scrubNUL(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if bytes.HasPrefix(b[i:], []byte(`\u0000`)) {
			out = append(out, `\ufffd`...)
			i += len(`\u0000`) - 1
			continue
		}
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}

// Genesis is the hash before the first event.
var Genesis = make([]byte, sha256.Size)

// Link returns the hash of an event whose canonical body is body and whose
// predecessor's hash is prev.
func Link(prev, body []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(body)
	return h.Sum(nil)
}

// Chained is an event as stored in the chain.
type Chained struct {
	Seq      int64
	Body     []byte
	PrevHash []byte
	Hash     []byte
}

// Break says where and why a chain stops verifying.
type Break struct {
	Seq    int64  // the first event that does not verify (0 when the chain is empty but should not be)
	Reason string // what is wrong with it
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit chain breaks at event %d: %s", b.Seq, b.Reason)
}

// VerifyChain checks events, which must be the whole chain in sequence
// order, and returns the first break, or nil. It catches edited bodies,
// edited or forged hashes, deleted, inserted and reordered events.
func VerifyChain(events []Chained) *Break {
	return VerifyChainFrom(1, Genesis, events)
}

// VerifyChainFrom checks a chain whose first event must be number first,
// linked to prev: the rest of a chain whose head was removed by retention
// (see [Retention]).
func VerifyChainFrom(first int64, prev []byte, events []Chained) *Break {
	for i, e := range events {
		want := first + int64(i)
		switch {
		case e.Seq != want:
			return &Break{Seq: e.Seq, Reason: fmt.Sprintf("sequence number %d where %d was expected (an event was deleted, inserted or reordered)", e.Seq, want)}
		case !bytes.Equal(e.PrevHash, prev):
			return &Break{Seq: e.Seq, Reason: "its previous-hash does not match the event before it"}
		case !bytes.Equal(e.Hash, Link(prev, e.Body)):
			return &Break{Seq: e.Seq, Reason: "its hash does not match its contents (the event was edited)"}
		}
		var ev Event
		if err := json.Unmarshal(e.Body, &ev); err != nil {
			return &Break{Seq: e.Seq, Reason: "its body is not an event"}
		}
		prev = e.Hash
	}
	return nil
}

// Checkpoint is a signed statement that the chain had hash Hash at Seq.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"` // hex
	At        time.Time `json:"at"`
	KeyID     string    `json:"kid"`
	Signature string    `json:"signature"` // hex HMAC-SHA256
}

func (c Checkpoint) signed() []byte {
	return fmt.Appendf(nil, "bulkhead-audit-checkpoint.v1.%d.%s.%d", c.Seq, c.Hash, c.At.UTC().UnixMicro())
}

// Sign returns the checkpoint signed with key.
func (c Checkpoint) Sign(kid string, key []byte) Checkpoint {
	c.KeyID = kid
	m := hmac.New(sha256.New, key)
	m.Write(c.signed())
	c.Signature = hex.EncodeToString(m.Sum(nil))
	return c
}

// Valid reports whether the signature verifies under key. It compares
// the signature's text with the expected lowercase hex, so a record has one
// spelling: an edit to its case is a change [Valid] sees.
func (c Checkpoint) Valid(key []byte) bool {
	m := hmac.New(sha256.New, key)
	m.Write(c.signed())
	return hmac.Equal([]byte(c.Signature), []byte(hex.EncodeToString(m.Sum(nil))))
}

// Retention is the signed record a retention run leaves: it removed the
// events up to and including ThroughSeq, whose hash was ThroughHash, so
// the chain that remains can still be verified from there.
type Retention struct {
	ThroughSeq  int64     `json:"through_seq"`
	ThroughHash string    `json:"through_hash"` // hex
	Removed     int64     `json:"removed"`
	Before      time.Time `json:"before"` // events older than this were removed
	At          time.Time `json:"at"`
	KeyID       string    `json:"kid"`
	Signature   string    `json:"signature"` // hex HMAC-SHA256
}

func (r Retention) signed() []byte {
	return fmt.Appendf(nil, "bulkhead-audit-retention.v1.%d.%s.%d.%d.%d", r.ThroughSeq, r.ThroughHash, r.Removed,
		r.Before.UTC().UnixMicro(), r.At.UTC().UnixMicro())
}

// Sign returns the record signed with key.
func (r Retention) Sign(kid string, key []byte) Retention {
	r.KeyID = kid
	m := hmac.New(sha256.New, key)
	m.Write(r.signed())
	r.Signature = hex.EncodeToString(m.Sum(nil))
	return r
}

// Valid reports whether the signature verifies under key. It compares
// the signature's text with the expected lowercase hex, so a record has one
// spelling: an edit to its case is a change [Valid] sees.
func (r Retention) Valid(key []byte) bool {
	m := hmac.New(sha256.New, key)
	m.Write(r.signed())
	return hmac.Equal([]byte(r.Signature), []byte(hex.EncodeToString(m.Sum(nil))))
}
