package postgres

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/fault"
)

var _ audit.Store = (*DB)(nil)

// AppendEvents writes events to the audit inbox in one transaction. When it
// returns nil they are durable (committed); the sequencer chains them later.
func (db *DB) AppendEvents(ctx context.Context, events []audit.Event) (err error) {
	defer fault.Wrap(&err, "postgres.AppendEvents")
	if len(events) == 0 {
		return nil
	}
	docs := make([]string, len(events))
	for i, e := range events {
		if e.EventID == "" {
			e.EventID = uuid.NewString()
		}
		if e.At.IsZero() {
			e.At = db.now()
		}
		b, err := e.Canonical()
		if err != nil {
			return fmt.Errorf("event %d of %d: %w", i+1, len(events), errors.Join(audit.ErrRejected, err))
		}
		docs[i] = string(b)
	}
	_, err = db.admin.Exec(ctx, `INSERT INTO bulkhead_audit.inbox (event) SELECT e::jsonb FROM unnest($1::text[]) e`, docs)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "54")) {
		// A data exception or a program limit: an event's content, not
		// the commit; the writer retries the batch's events one by one.
		return &fault.Error{Kind: fault.Invalid, Code: "audit_event_rejected", Message: "The audit trail cannot hold this event.",
			Err: errors.Join(audit.ErrRejected, err)}
	}
	return Translate(err)
}

// Sequence moves up to max events from the inbox into the hash chain, in
// one transaction, and returns them as chained. Only one sequencer extends
// the chain at a time (an EXCLUSIVE lock on the events table, which readers
// do not wait for); tenant transactions never touch the chain head.
//
// An empty inbox ends it at one statement, without a transaction or the
// lock: the server calls it every half second, busy or not, and an idle
// one need not queue behind a retention run's hold on the chain.
func (db *DB) Sequence(ctx context.Context, max int) (out []audit.Chained, err error) {
	defer fault.Wrap(&err, "postgres.Sequence")
	var pending bool
	if err := db.admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM bulkhead_audit.inbox)`).Scan(&pending); err != nil {
		return nil, Translate(err)
	}
	if !pending {
		return nil, nil
	}
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE bulkhead_audit.events IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		seq, prev, err := chainHead(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, event::text FROM bulkhead_audit.inbox ORDER BY id LIMIT $1`, max)
		if err != nil {
			return err
		}
		type item struct {
			id  int64
			raw string
		}
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (item, error) {
			var it item
			err := r.Scan(&it.id, &it.raw)
			return it, err
		})
		if err != nil || len(items) == 0 {
			return err
		}
		rowsOut := make([][]any, 0, len(items))
		ids := make([]int64, 0, len(items))
		for _, it := range items {
			var e audit.Event
			if err := json.Unmarshal([]byte(it.raw), &e); err != nil {
				// An event that cannot be read must not stop the chain for
				// every tenant: it is chained as what it is, with its text.
				e = unreadableEvent(it.id, it.raw, err, db.now())
				db.log.ErrorContext(ctx, "audit: an inbox event cannot be read; chained as audit:Unreadable", "inbox_id", it.id, "err", err)
			}
			if e.EventID == "" {
				e.EventID = uuid.NewString()
			}
			body, err := e.Canonical()
			if err != nil {
				return err
			}
			seq++
			h := audit.Link(prev, body)
			var tid *string
			if e.TenantID != "" {
				tid = &e.TenantID
			}
			rowsOut = append(rowsOut, []any{seq, e.EventID, e.At, tid, e.Subject, e.Action, e.Decision, visibility(e), string(body), prev, h})
			out = append(out, audit.Chained{Seq: seq, Body: body, PrevHash: prev, Hash: h})
			prev = h
			ids = append(ids, it.id)
		}
		// COPY: one statement for the whole batch, not one INSERT per event.
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"bulkhead_audit", "events"},
			[]string{"seq", "event_id", "at", "tenant_id", "sub", "action", "decision", "visibility", "body", "prev_hash", "hash"},
			pgx.CopyFromRows(rowsOut)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM bulkhead_audit.inbox WHERE id = ANY($1)`, ids)
		return err
	})
	if err != nil {
		return nil, Translate(err)
	}
	return out, nil
}

// chainHead returns the sequence number and hash the next event links to:
// the last chained event's, or, when a retention run removed every event,
// the last removed one's, from the latest retention record, so that
// sequence numbers are never reused and the chain verifies from that
// record; the genesis hash before the first event ever.
func chainHead(ctx context.Context, tx pgx.Tx) (seq int64, hash []byte, err error) {
	err = tx.QueryRow(ctx, `SELECT seq, hash FROM bulkhead_audit.events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if !errors.Is(err, pgx.ErrNoRows) {
		return seq, hash, err
	}
	err = tx.QueryRow(ctx, `SELECT through_seq, through_hash FROM bulkhead_audit.retention ORDER BY through_seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, audit.Genesis, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("the latest retention record: %w", err)
	}
	return seq, hash, nil
}

// unreadableEvent stands in the chain for an inbox row that does not
// decode as an event: visible to platform administrators only (its text
// may name any tenant), with the row's text cut to 4 KiB.
func unreadableEvent(id int64, raw string, err error, now time.Time) audit.Event {
	if len(raw) > 4096 {
		raw = raw[:4096]
	}
	detail, _ := json.Marshal(map[string]any{"inbox_id": id, "error": err.Error(), "text": strings.ToValidUTF8(raw, "\ufffd")})
	return audit.Event{At: now, Action: "audit:Unreadable", Decision: audit.Invalid, Detail: detail, Visibility: audit.VisiblePlatform}
}

func visibility(e audit.Event) string {
	if e.Visibility == audit.VisiblePlatform {
		return audit.VisiblePlatform
	}
	return audit.VisibleTenant
}

// Checkpoint signs the chain's head with the audit key and stores it. It
// returns the zero Checkpoint when the chain is empty.
func (db *DB) Checkpoint(ctx context.Context) (c audit.Checkpoint, err error) {
	defer fault.Wrap(&err, "postgres.Checkpoint")
	var h []byte
	err = db.admin.QueryRow(ctx, `SELECT seq, hash FROM bulkhead_audit.events ORDER BY seq DESC LIMIT 1`).Scan(&c.Seq, &h)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.Checkpoint{}, nil
	}
	if err != nil {
		return c, err
	}
	k, err := db.SigningKey(ctx, KeyAudit)
	if err != nil {
		return c, err
	}
	c.Hash, c.At = hex.EncodeToString(h), db.now().UTC().Truncate(time.Microsecond)
	c = c.Sign(k.ID, k.Secret)
	_, err = db.admin.Exec(ctx, `INSERT INTO bulkhead_audit.checkpoints (seq, hash, at, kid, signature) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (seq) DO NOTHING`, c.Seq, h, c.At, c.KeyID, c.Signature)
	return c, Translate(err)
}

// ChainedRow is a chained event as bulkhead_audit.events stores it: the
// chain's fields, and the columns copied out of the body for queries
// (FindEvents filters on them, PruneAudit selects by At). Verification
// checks them against the body: they are not hashed themselves.
type ChainedRow struct {
	audit.Chained
	EventID    string
	At         time.Time
	TenantID   *string // NULL for an event without a tenant
	Subject    *string
	Action     string
	Decision   string
	Visibility string
}

// ChainPage returns chained events with seq > after, in order, at most limit.
func (db *DB) ChainPage(ctx context.Context, after int64, limit int) ([]ChainedRow, error) {
	page, err := chainPage(ctx, db.admin, after, limit)
	return page, Translate(err)
}

type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

func chainPage(ctx context.Context, q querier, after int64, limit int) ([]ChainedRow, error) {
	rows, err := q.Query(ctx, `SELECT seq, body, prev_hash, hash, event_id::text, at, tenant_id::text, sub, action, decision, visibility
		FROM bulkhead_audit.events WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChainedRow, error) {
		var c ChainedRow
		var body string
		err := r.Scan(&c.Seq, &body, &c.PrevHash, &c.Hash, &c.EventID, &c.At, &c.TenantID, &c.Subject, &c.Action, &c.Decision, &c.Visibility)
		c.Body = []byte(body)
		return c, err
	})
}

// mismatchedColumn returns the first column of r that does not hold what
// Sequence copies out of its body, or "" when they all do. body is r's
// body, parsed.
func mismatchedColumn(r ChainedRow, body audit.Event) string {
	sameUUID := func(col string, text string) bool {
		id, err := uuid.Parse(text)
		return err == nil && id.String() == col
	}
	switch {
	case !sameUUID(r.EventID, body.EventID):
		return "event_id"
	case !r.At.Equal(body.At.Truncate(time.Microsecond)):
		return "at"
	case (r.TenantID == nil) != (body.TenantID == "") || (r.TenantID != nil && !sameUUID(*r.TenantID, body.TenantID)):
		return "tenant_id"
	case r.Subject == nil || *r.Subject != body.Subject:
		return "sub"
	case r.Action != body.Action:
		return "action"
	case r.Decision != body.Decision:
		return "decision"
	case r.Visibility != visibility(body):
		return "visibility"
	}
	return ""
}

// verifyRow checks one event of the chain: that it is number want, links to
// prev, hashes to its hash, and that its columns match its body.
func verifyRow(want int64, prev []byte, r ChainedRow) *audit.Break {
	if b := audit.VerifyChainFrom(want, prev, []audit.Chained{r.Chained}); b != nil {
		return b
	}
	var body audit.Event
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return &audit.Break{Seq: r.Seq, Reason: "its body is not an event"}
	}
	if col := mismatchedColumn(r, body); col != "" {
		return &audit.Break{Seq: r.Seq, Reason: fmt.Sprintf("its columns do not match its body (%s)", col)}
	}
	return nil
}

// VerifyReport is what VerifyAudit found.
type VerifyReport struct {
	Events      int64
	Checkpoints int
	Retained    *audit.Retention // the last retention run, if any
	Break       *audit.Break     // nil when the chain verifies
}

// VerifyAudit reads the whole chain and checks every link, and every
// event's columns against its body, then every stored checkpoint
// (signature, and that the chain has that hash at that sequence number).
// external are checkpoints kept outside the database (the JSON-lines
// sink): each must match the chain too, so a chain cut off after a
// checkpoint was written is caught.
//
// The chain, the latest retention record and the stored checkpoints are
// read in one REPEATABLE READ transaction, one snapshot, so that a server
// chaining and signing meanwhile cannot make an untouched trail look cut
// off: a stored checkpoint names an event of the same snapshot. An
// external checkpoint past the snapshot's last event (signed after it
// began) is checked against the events chained since, read after the
// snapshot, before the tail is declared cut.
func (db *DB) VerifyAudit(ctx context.Context, external []audit.Checkpoint, progress func(n int64)) (rep *VerifyReport, err error) {
	defer fault.Wrap(&err, "postgres.VerifyAudit")
	rep = &VerifyReport{}
	// The hashes of the events that checkpoints name, and no others: the
	// chain can be long.
	hashes := map[int64][]byte{}
	for _, c := range external {
		hashes[c.Seq] = nil
	}
	var keys map[string][]byte
	var stored []audit.Checkpoint
	var head int64
	var headHash []byte
	var ret *audit.Retention
	err = pgx.BeginTxFunc(ctx, db.admin, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if keys, err = allKeys(ctx, tx, KeyAudit); err != nil {
			return fmt.Errorf("the audit keys: %w", err)
		}
		if stored, err = storedCheckpoints(ctx, tx); err != nil {
			return fmt.Errorf("the stored checkpoints: %w", err)
		}
		for _, c := range stored {
			hashes[c.Seq] = nil
		}
		// A retention run removed the head: verify from its signed record.
		first, prev := int64(1), audit.Genesis
		r, rh, err := latestRetention(ctx, tx)
		if err != nil {
			return fmt.Errorf("the latest retention record: %w", err)
		}
		if r != nil {
			if key, ok := keys[r.KeyID]; !ok || !r.Valid(key) {
				rep.Break = &audit.Break{Seq: r.ThroughSeq, Reason: "the retention record's signature does not verify"}
				return nil
			}
			first, prev = r.ThroughSeq+1, rh
			ret, rep.Retained = r, r
		}
		head, headHash, rep.Break, err = scanChain(ctx, tx, 0, first, prev, hashes, &rep.Events, progress)
		return err
	})
	if err != nil {
		return nil, Translate(err)
	}
	if rep.Break != nil {
		return rep, nil
	}
	// External checkpoints past the snapshot: read the events chained
	// since, in a snapshot of their own, before calling the tail cut.
	newer := false
	for _, c := range external {
		if c.Seq > head {
			newer, hashes[c.Seq] = true, nil
		}
	}
	if newer {
		err = pgx.BeginTxFunc(ctx, db.admin, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			first, prev := head+1, headHash
			// A retention run since the snapshot may have removed them.
			r, rh, err := latestRetention(ctx, tx)
			if err != nil {
				return fmt.Errorf("the latest retention record: %w", err)
			}
			if r != nil && r.ThroughSeq > head {
				if keys, err = allKeys(ctx, tx, KeyAudit); err != nil {
					return fmt.Errorf("the audit keys: %w", err)
				}
				if key, ok := keys[r.KeyID]; !ok || !r.Valid(key) {
					rep.Break = &audit.Break{Seq: r.ThroughSeq, Reason: "the retention record's signature does not verify"}
					return nil
				}
				first, prev = r.ThroughSeq+1, rh
				ret, rep.Retained = r, r
			}
			_, _, rep.Break, err = scanChain(ctx, tx, head, first, prev, hashes, &rep.Events, progress)
			return err
		})
		if err != nil {
			return nil, Translate(err)
		}
		if rep.Break != nil {
			return rep, nil
		}
	}
	var through int64
	if ret != nil {
		through = ret.ThroughSeq
	}
	for _, c := range append(stored, external...) {
		rep.Checkpoints++
		key, ok := keys[c.KeyID]
		if !ok {
			// Signed with a key made after the snapshot, perhaps.
			if keys, err = allKeys(ctx, db.admin, KeyAudit); err != nil {
				return nil, fmt.Errorf("the audit keys: %w", Translate(err))
			}
			key, ok = keys[c.KeyID]
		}
		switch {
		case !ok || !c.Valid(key):
			rep.Break = &audit.Break{Seq: c.Seq, Reason: "a checkpoint's signature does not verify"}
			return rep, nil
		case c.Seq <= through:
			// Removed by retention; its signature still verified.
		case hashes[c.Seq] == nil:
			rep.Break = &audit.Break{Seq: c.Seq, Reason: fmt.Sprintf("a signed checkpoint names event %d, which the chain no longer has (the tail was cut off)", c.Seq)}
			return rep, nil
		case hex.EncodeToString(hashes[c.Seq]) != c.Hash:
			rep.Break = &audit.Break{Seq: c.Seq, Reason: "the chain's hash differs from the signed checkpoint's"}
			return rep, nil
		}
	}
	return rep, nil
}

// scanChain reads the chain's events after seq after, page by page, and
// checks each (see verifyRow): the first must be number first and link to
// prev. It keeps in hashes the hash of each event whose seq is a key of
// hashes, adds to *n the events read, and returns the last event's seq and
// hash (first-1 and prev when there is none), or the first break.
func scanChain(ctx context.Context, q querier, after, first int64, prev []byte, hashes map[int64][]byte, n *int64,
	progress func(int64)) (last int64, lastHash []byte, b *audit.Break, err error) {
	next := first
	for {
		page, err := chainPage(ctx, q, after, 5000)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("the events after %d: %w", after, err)
		}
		if len(page) == 0 {
			return next - 1, prev, nil, nil
		}
		for _, r := range page {
			if b := verifyRow(next, prev, r); b != nil {
				return 0, nil, b, nil
			}
			if _, ok := hashes[r.Seq]; ok {
				hashes[r.Seq] = r.Hash
			}
			next, prev = next+1, r.Hash
		}
		*n += int64(len(page))
		after = page[len(page)-1].Seq
		if progress != nil {
			progress(*n)
		}
	}
}

// latestRetention returns the latest retention record, with its hash as
// bytes, or nil when no retention run has removed anything.
func latestRetention(ctx context.Context, q rowQuerier) (*audit.Retention, []byte, error) {
	var ret audit.Retention
	var rh []byte
	err := q.QueryRow(ctx, `SELECT through_seq, through_hash, removed, before, at, kid, signature
		FROM bulkhead_audit.retention ORDER BY through_seq DESC LIMIT 1`).
		Scan(&ret.ThroughSeq, &rh, &ret.Removed, &ret.Before, &ret.At, &ret.KeyID, &ret.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	ret.ThroughHash = hex.EncodeToString(rh)
	return &ret, rh, nil
}

// storedCheckpoints returns the checkpoints in bulkhead_audit.checkpoints.
func storedCheckpoints(ctx context.Context, q querier) ([]audit.Checkpoint, error) {
	rows, err := q.Query(ctx, `SELECT seq, hash, at, kid, signature FROM bulkhead_audit.checkpoints ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Checkpoint, error) {
		var c audit.Checkpoint
		var h []byte
		err := r.Scan(&c.Seq, &h, &c.At, &c.KeyID, &c.Signature)
		c.Hash = hex.EncodeToString(h)
		return c, err
	})
}

// allKeys returns every key of purpose, retired ones too: old checkpoints
// stay checkable.
func allKeys(ctx context.Context, q querier, purpose KeyPurpose) (map[string][]byte, error) {
	rows, err := q.Query(ctx, `SELECT kid, secret FROM bulkhead_control.keys WHERE purpose = $1`, string(purpose))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var kid string
		var secret []byte
		if err := rows.Scan(&kid, &secret); err != nil {
			return nil, err
		}
		out[kid] = secret
	}
	return out, rows.Err()
}

// EventFilter narrows FindEvents. Nil fields do not filter.
type EventFilter struct {
	TenantID     *string
	Subject      *string
	Action       *string
	Decision     *string
	Since, Until *time.Time
	// PlatformOnly includes events visible to platform admins only.
	PlatformOnly bool
	After        int64 // seq
	// AfterEvent, when set, starts after this event instead of After: the
	// event_id of an event the filter's tenant and visibility allow. Any
	// other id, of another tenant's event or of none, is ErrUnknownEvent,
	// the same for both.
	AfterEvent *string
	Limit      int
	// MaxScan, when positive, bounds the events one call examines: the
	// first MaxScan visible events after After (of TenantID, when set),
	// whatever the other filters say. A page that finds fewer than Limit
	// among them ends at the last one examined, so that a filter that
	// matches little costs each call at most MaxScan rows however long
	// the trail is; the caller pages on until a call examines nothing.
	MaxScan int
	// OmitSeq leaves the chain's sequence numbers out of the events. They
	// count every tenant's events, so a tenant that saw them would learn
	// how much the others do; it pages with event ids instead.
	OmitSeq bool
}

// EventPage is what FindEvents found, and where the next page starts.
type EventPage struct {
	Events []json.RawMessage
	// Next and NextEvent are the seq and the event_id of the last event
	// returned, or with MaxScan of the last one examined when that is
	// further; 0 and "" when the call examined no event.
	Next      int64
	NextEvent string
}

// ErrUnknownEvent is FindEvents' answer to an AfterEvent it may not use.
var ErrUnknownEvent = fault.E(fault.Invalid, "invalid_parameter", "after must be the next_after of an earlier page of this trail.")

// FindEvents returns chained events in sequence order.
func (db *DB) FindEvents(ctx context.Context, f EventFilter) (EventPage, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	where := eventsWhere(f)
	if f.AfterEvent != nil {
		id, err := uuid.Parse(*f.AfterEvent)
		if err != nil {
			return EventPage{}, ErrUnknownEvent
		}
		err = db.admin.QueryRow(ctx, `SELECT seq FROM bulkhead_audit.events
			WHERE event_id = $1 AND `+where, id, f.TenantID).Scan(&f.After)
		if errors.Is(err, pgx.ErrNoRows) {
			return EventPage{}, ErrUnknownEvent
		}
		if err != nil {
			return EventPage{}, Translate(err)
		}
	}
	sql, args := eventsQuery(f)
	rows, err := db.admin.Query(ctx, sql, args...)
	if err != nil {
		return EventPage{}, Translate(err)
	}
	defer rows.Close()
	var page EventPage
	for rows.Next() {
		var body string
		if err := rows.Scan(&page.Next, &page.NextEvent, &body); err != nil {
			return EventPage{}, err
		}
		ev := json.RawMessage(body)
		if !f.OmitSeq {
			ev = json.RawMessage(fmt.Sprintf(`{"seq":%d,%s`, page.Next, body[1:]))
		}
		page.Events = append(page.Events, ev)
	}
	if err := rows.Err(); err != nil {
		return EventPage{}, Translate(err)
	}
	if f.MaxScan <= 0 || len(page.Events) == f.Limit {
		return page, nil
	}
	// A short page examined the whole window: the next starts after it.
	var end int64
	var endEvent string
	err = db.admin.QueryRow(ctx, `SELECT seq, event_id::text FROM (SELECT seq, event_id FROM bulkhead_audit.events
		WHERE seq > $1 AND `+where+`
		ORDER BY seq LIMIT $3) AS w ORDER BY seq DESC LIMIT 1`, f.After, f.TenantID, f.MaxScan).Scan(&end, &endEvent)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return EventPage{}, Translate(err)
	case end > page.Next:
		page.Next, page.NextEvent = end, endEvent
	}
	return page, nil
}

// eventsWhere is the condition on an event's tenant (parameter $2) and
// visibility for a read by f. Isolation: it is spelled out, not left to
// parameters (a generic plan cannot match a parameter to an index's
// predicate), so that a read pinned to one tenant that excludes
// platform-only events can go through the partial index
// events_tenant_visible, which holds that tenant's visible events and
// nothing else. The events a tenant may not see include the cross-tenant
// probe findings recorded under its own tenant id, one for each of its
// requests that asked for another tenant's id: were they read and dropped
// one by one, each would make its later reads slower, and a tenant could
// time its reads to learn which of the ids it asked for exist elsewhere.
func eventsWhere(f EventFilter) string {
	where := `$2::uuid IS NULL`
	if f.TenantID != nil {
		where = `tenant_id = $2`
	}
	if !f.PlatformOnly {
		where += ` AND visibility = 'tenant'`
	}
	return where
}

// eventsQuery is FindEvents' query of a page for f, whose After is
// already resolved, and its arguments.
func eventsQuery(f EventFilter) (string, []any) {
	where := eventsWhere(f)
	const filters = `($3::text IS NULL OR sub = $3)
		  AND ($4::text IS NULL OR action = $4)
		  AND ($5::text IS NULL OR decision = $5)
		  AND ($6::timestamptz IS NULL OR at >= $6)
		  AND ($7::timestamptz IS NULL OR at < $7)`
	args := []any{f.After, f.TenantID, f.Subject, f.Action, f.Decision, f.Since, f.Until, f.Limit}
	if f.MaxScan > 0 {
		// The window: the visible events after After, in order, at most
		// MaxScan of them. The page: those of the window that pass the
		// other filters.
		args = append(args, f.MaxScan)
		return `SELECT seq, event_id::text, body FROM (SELECT seq, event_id, at, sub, action, decision, body FROM bulkhead_audit.events
		WHERE seq > $1 AND ` + where + `
		ORDER BY seq LIMIT $9) AS w WHERE ` + filters + ` ORDER BY seq LIMIT $8`, args
	}
	// Without a bound, one flat query, which the planner may run however
	// it likes; with one, the filters apply to the window.
	return `SELECT seq, event_id::text, body FROM bulkhead_audit.events
		WHERE seq > $1 AND ` + where + `
		  AND ` + filters + `
		ORDER BY seq LIMIT $8`, args
}

// OwnersOf returns, for each id, the tenant other than except whose rows
// in table carry it, looking in the pool and in every silo. It runs as
// bulkhead_maint (row security does not hide other tenants from it) and
// is for the trusted cross-tenant probe check only, after the response.
func (db *DB) OwnersOf(ctx context.Context, table string, ids []string, except string) (owners map[string]string, err error) {
	defer fault.Wrap(&err, "postgres.OwnersOf(%s)", table)
	if !slicesContains(TenantTableNames, table) || len(ids) == 0 {
		return nil, nil
	}
	owners = map[string]string{}
	err = pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT placement FROM bulkhead_control.tenants WHERE tier = 'silo' AND status <> 'offboarded'`)
		if err != nil {
			return err
		}
		schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		schemas = append([]string{PoolSchema}, schemas...)
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_maint`); err != nil {
			return err
		}
		for _, s := range schemas {
			rows, err := tx.Query(ctx, `SELECT id::text, tenant_id::text FROM `+quoteIdent(s)+`.`+quoteIdent(table)+
				` WHERE id = ANY($1::uuid[]) AND tenant_id <> $2::uuid`, ids, except)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id, owner string
				if err := rows.Scan(&id, &owner); err != nil {
					rows.Close()
					return err
				}
				owners[id] = owner
			}
			rows.Close()
		}
		return nil
	})
	return owners, Translate(err)
}

func slicesContains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// PruneAudit removes chained events older than before, and leaves a
// record of what it removed, signed with the audit key, in the same
// transaction: the remaining chain verifies from the last removed event.
// It is the only way events are ever deleted.
func (db *DB) PruneAudit(ctx context.Context, before time.Time) (ret *audit.Retention, err error) {
	defer fault.Wrap(&err, "postgres.PruneAudit")
	k, err := db.SigningKey(ctx, KeyAudit)
	if err != nil {
		return nil, err
	}
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE bulkhead_audit.events IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var through int64
		var h []byte
		// Remove a prefix of the chain: every event before the first one
		// that is not older than before.
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM bulkhead_audit.events
			WHERE seq = coalesce((SELECT min(seq) - 1 FROM bulkhead_audit.events WHERE at >= $1),
			                     (SELECT max(seq) FROM bulkhead_audit.events))`, before).Scan(&through, &h)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM bulkhead_audit.events WHERE seq <= $1`, through)
		if err != nil {
			return err
		}
		r := audit.Retention{ThroughSeq: through, ThroughHash: hex.EncodeToString(h), Removed: tag.RowsAffected(),
			Before: before.UTC().Truncate(time.Microsecond), At: db.now().UTC().Truncate(time.Microsecond)}.Sign(k.ID, k.Secret)
		if _, err := tx.Exec(ctx, `INSERT INTO bulkhead_audit.retention (through_seq, through_hash, removed, before, at, kid, signature)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.ThroughSeq, h, r.Removed, r.Before, r.At, r.KeyID, r.Signature); err != nil {
			return err
		}
		ret = &r
		return nil
	})
	return ret, Translate(err)
}
