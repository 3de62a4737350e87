package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/policy"
)

// Actor says who makes a control-plane change: it stamps the audit event
// that every change writes in its own transaction.
type Actor struct {
	Subject   string // the principal's sub, or "cli:<user>"
	Role      string
	RequestID string
	SourceIP  string
	UserAgent string
	// Statement is the policy statement that allowed the change.
	Statement string
}

type actorKey struct{}

// WithActor returns a copy of ctx carrying the actor of the changes made
// with it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

func actorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	if a.Subject == "" {
		a.Subject = "unknown"
	}
	return a
}

// changeEvent writes the audit event of a control-plane change inside the
// change's own transaction: both commit or neither does. target is the
// tenant the change is about ("" for the platform's own objects).
func (db *DB) changeEvent(ctx context.Context, tx pgx.Tx, action, resource, targetID, targetSlug string, detail any) error {
	a := actorFrom(ctx)
	e := audit.Event{EventID: uuid.NewString(), At: db.now().UTC().Truncate(time.Microsecond), RequestID: a.RequestID,
		TenantID: targetID, Tenant: targetSlug, Subject: a.Subject, Role: a.Role, Action: action, Resource: resource,
		Decision: audit.Allow, SourceIP: a.SourceIP, UserAgent: a.UserAgent, Statement: a.Statement, Visibility: audit.VisibleTenant}
	if targetID == "" {
		e.Visibility = audit.VisiblePlatform
	}
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		e.Detail = b
	}
	body, err := e.Canonical()
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO bulkhead_audit.inbox (event) VALUES ($1::text::jsonb)`, string(body))
	return err
}

// controlResource names the object of a change as the policy vocabulary
// does, with "-" for the platform's own objects (keys, functions, tokens).
func controlResource(tenantID, kind, name string) string {
	if tenantID == "" {
		tenantID = "-"
	}
	return policy.ControlResource(tenantID, kind, name)
}
