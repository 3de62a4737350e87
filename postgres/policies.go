package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// StoredPolicy is a policy document a tenant's admin attached.
type StoredPolicy struct {
	Name      string    `json:"name"`
	Document  string    `json:"document"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ErrPolicyNotFound is returned for a policy the tenant does not have.
var ErrPolicyNotFound = fault.E(fault.NotFound, "policy_not_found", "No such policy.")

// FindPolicies returns the tenant's attached policies, by name.
func (db *DB) FindPolicies(ctx context.Context, tid tenant.ID) ([]StoredPolicy, error) {
	rows, err := db.admin.Query(ctx, `SELECT name, document, updated_at FROM bulkhead_control.policies WHERE tenant_id = $1 ORDER BY name`, string(tid))
	if err != nil {
		return nil, Translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredPolicy, error) {
		var p StoredPolicy
		err := r.Scan(&p.Name, &p.Document, &p.UpdatedAt)
		return p, err
	})
}

// ErrTooManyPolicies refuses a tenant's document past [policy.MaxDocuments].
var ErrTooManyPolicies = fault.Errorf(fault.Conflict, "too_many_policies",
	"A tenant has at most %d policy documents: delete one, or put these statements into one it has.", policy.MaxDocuments)

// PutPolicy creates or replaces a tenant's policy. The caller validates
// the document first.
func (db *DB) PutPolicy(ctx context.Context, tid tenant.ID, name, document string) (created bool, err error) {
	defer fault.Wrap(&err, "postgres.PutPolicy(%s)", tid)
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		// The tenant's row, locked, serialises its puts, so that two at
		// once cannot both pass the bound on its documents.
		// The lock also waits for an offboarding that has begun, and the
		// status is then read again: an offboarding or offboarded tenant
		// gets no documents (offboarding deletes them). A suspended or
		// moving tenant can still have its policies changed, as they can be
		// listed and deleted (a move does not touch them).
		var others int
		var exists bool
		var slug string
		err := tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM bulkhead_control.policies WHERE tenant_id = t.id AND name <> $2),
			EXISTS (SELECT 1 FROM bulkhead_control.policies WHERE tenant_id = t.id AND name = $2),
			t.slug
			FROM bulkhead_control.tenants t WHERE t.id = $1 AND t.status IN ('active', 'suspended', 'moving')
			FOR NO KEY UPDATE OF t`, string(tid), name).Scan(&others, &exists, &slug)
		if err != nil {
			return err
		}
		if !exists && others >= policy.MaxDocuments {
			return ErrTooManyPolicies
		}
		err = tx.QueryRow(ctx, `INSERT INTO bulkhead_control.policies (tenant_id, name, document)
			VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id, name) DO UPDATE SET document = EXCLUDED.document, updated_at = now()
			RETURNING (xmax = 0)`, string(tid), name, document).Scan(&created)
		if err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "policies:Put", controlResource(string(tid), policy.KindPolicy, name), string(tid), slug,
			map[string]string{"policy": name})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, tenant.ErrNotFound
	}
	if errors.Is(err, ErrTooManyPolicies) {
		return false, err
	}
	if err != nil {
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23514" { // check_violation: the name's CHECK
			return false, fault.E(fault.Invalid, "invalid_policy_name", "A policy name is 1 to 64 letters, digits, '_' or '-'.")
		}
		return false, Translate(err)
	}
	return created, nil
}

// DeletePolicy removes a tenant's policy.
func (db *DB) DeletePolicy(ctx context.Context, tid tenant.ID, name string) error {
	err := db.ownerTx(ctx, func(tx pgx.Tx) error {
		var slug string
		err := tx.QueryRow(ctx, `DELETE FROM bulkhead_control.policies p WHERE p.tenant_id = $1 AND p.name = $2
			RETURNING (SELECT t.slug FROM bulkhead_control.tenants t WHERE t.id = p.tenant_id)`, string(tid), name).Scan(&slug)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrPolicyNotFound
		}
		if err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "policies:Delete", controlResource(string(tid), policy.KindPolicy, name), string(tid), slug,
			map[string]string{"policy": name})
	})
	return Translate(err)
}
