package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// TenantCreate is what CreateTenant needs.
type TenantCreate struct {
	Slug tenant.Slug
	Name string
	Tier tenant.Tier
	Plan string // "basic" (default) or "premium"
}

// ErrTenantExists is returned when a slug is taken by a different tenant,
// or was used by a tenant that has since been offboarded.
var ErrTenantExists = fault.E(fault.Conflict, "tenant_exists", "That tenant id is taken, or was used before and is never reused.")

const tenantColumns = `id, slug, name, tier, status, placement, plan, created_at`

func scanTenant(row pgx.Row) (*tenant.Tenant, error) {
	var t tenant.Tenant
	var id uuid.UUID
	var slug, tier, status string
	if err := row.Scan(&id, &slug, &t.Name, &tier, &status, &t.Placement, &t.Plan, &t.CreatedAt); err != nil {
		return nil, err
	}
	t.ID, t.Slug, t.Tier, t.Status = tenant.ID(id.String()), tenant.Slug(slug), tenant.Tier(tier), tenant.Status(status)
	return &t, nil
}

// Normalized checks c and returns it with its defaults filled in: the
// name defaults to the slug, the plan to "basic". CreateTenant refuses
// exactly what it refuses, so a bulk import can check every line before it
// creates anything.
func (c TenantCreate) Normalized() (TenantCreate, error) {
	if _, err := tenant.ParseSlug(string(c.Slug)); err != nil {
		return c, err
	}
	if !c.Tier.Valid() {
		return c, fault.E(fault.Invalid, "invalid_tier", `The tier must be "pool" or "silo".`)
	}
	if c.Name == "" {
		c.Name = string(c.Slug)
	}
	if c.Plan == "" {
		c.Plan = "basic"
	}
	if c.Plan != "basic" && c.Plan != "premium" {
		return c, fault.E(fault.Invalid, "invalid_plan", `The plan must be "basic" or "premium".`)
	}
	if len(c.Name) > 200 {
		return c, fault.E(fault.Invalid, "invalid_name", "A tenant name is at most 200 bytes.")
	}
	return c, nil
}

// CreateTenant onboards a tenant. A pool tenant gets a catalog row; a silo
// tenant also gets its own schema with the tenant tables, policies and
// grants. All of it commits together or not at all. A retry with the same
// slug, name and tier returns the existing tenant and created=false, also
// when the retry races with the call that creates it.
func (db *DB) CreateTenant(ctx context.Context, c TenantCreate) (t *tenant.Tenant, created bool, err error) {
	defer fault.Wrap(&err, "postgres.CreateTenant(%s)", c.Slug)
	if c, err = c.Normalized(); err != nil {
		return nil, false, err
	}
	if existing, err := db.sameTenant(ctx, c); existing != nil || err != nil {
		return existing, false, err
	}
	id := tenant.ID(uuid.New().String())
	placement := "pool"
	if c.Tier == tenant.Silo {
		placement = id.SchemaName()
	}
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		row := tx.QueryRow(ctx, `INSERT INTO bulkhead_control.tenants (id, slug, name, tier, placement, schema_version, plan)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+tenantColumns,
			string(id), string(c.Slug), c.Name, string(c.Tier), placement, TenantSchemaVersion, c.Plan)
		var err error
		if t, err = scanTenant(row); err != nil {
			return err
		}
		if c.Tier == tenant.Silo {
			if err := createSilo(ctx, tx, id); err != nil {
				return err
			}
		}
		return db.changeEvent(ctx, tx, "tenants:Create", controlResource(string(id), policy.KindTenant, string(id)), string(id), string(c.Slug),
			map[string]string{"tier": string(c.Tier), "plan": c.Plan, "placement": placement})
	})
	if err != nil {
		if fault.KindOf(Translate(err)) == fault.Conflict {
			// Another call created the slug since the check above: the
			// same tenant is "already there", a different one is taken.
			if existing, err := db.sameTenant(ctx, c); existing != nil || err != nil {
				return existing, false, err
			}
			return nil, false, ErrTenantExists
		}
		return nil, false, Translate(err)
	}
	return t, true, nil
}

// sameTenant returns the tenant with c's slug when it is c (same tier,
// name and plan, not offboarded), nil when there is none, and
// ErrTenantExists when the slug belongs to another.
func (db *DB) sameTenant(ctx context.Context, c TenantCreate) (*tenant.Tenant, error) {
	existing, err := db.FindTenantBySlug(ctx, c.Slug, true)
	if tenant.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if existing.Status != tenant.Offboarded && existing.Status != tenant.Offboarding &&
		existing.Tier == c.Tier && existing.Name == c.Name && existing.Plan == c.Plan {
		return existing, nil
	}
	return nil, ErrTenantExists
}

// createSilo makes the tenant's own schema. CREATE SCHEMA without IF NOT
// EXISTS: provisioning refuses to adopt a schema it has no catalog row for.
func createSilo(ctx context.Context, tx pgx.Tx, id tenant.ID) error {
	schema := id.SchemaName()
	if _, err := tx.Exec(ctx, `CREATE SCHEMA `+quoteIdent(schema)+` AUTHORIZATION bulkhead_owner`); err != nil {
		return fmt.Errorf("create silo schema (refusing to adopt an existing one): %w", err)
	}
	if _, err := tx.Exec(ctx, `REVOKE ALL ON SCHEMA `+quoteIdent(schema)+` FROM PUBLIC`); err != nil {
		return err
	}
	for _, m := range tenantMigrations {
		for _, s := range m.DDL(schema, id) {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
	}
	return nil
}

// FindTenantBySlug returns the tenant with that slug. Offboarded tenants are
// returned only when withGone is set.
func (db *DB) FindTenantBySlug(ctx context.Context, slug tenant.Slug, withGone bool) (*tenant.Tenant, error) {
	t, err := scanTenant(db.admin.QueryRow(ctx, `SELECT `+tenantColumns+` FROM bulkhead_control.tenants WHERE slug = $1`, string(slug)))
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !withGone && t.Status == tenant.Offboarded) {
		return nil, tenant.ErrNotFound
	}
	return t, Translate(err)
}

// FindTenantByID returns the tenant with that UUID, offboarded ones excluded.
func (db *DB) FindTenantByID(ctx context.Context, id tenant.ID) (*tenant.Tenant, error) {
	if _, err := tenant.ParseID(string(id)); err != nil {
		return nil, tenant.ErrNotFound
	}
	t, err := scanTenant(db.admin.QueryRow(ctx, `SELECT `+tenantColumns+` FROM bulkhead_control.tenants WHERE id = $1`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && t.Status == tenant.Offboarded) {
		return nil, tenant.ErrNotFound
	}
	return t, Translate(err)
}

// TenantFilter narrows FindTenants. Nil fields do not filter.
type TenantFilter struct {
	Slug     *tenant.Slug
	Tier     *tenant.Tier
	WithGone bool // include offboarded tombstones
	Limit    int  // 0 means 1000
	After    tenant.Slug
}

// FindTenants lists tenants ordered by slug.
func (db *DB) FindTenants(ctx context.Context, f TenantFilter) ([]*tenant.Tenant, error) {
	if f.Limit <= 0 || f.Limit > 10000 {
		f.Limit = 1000
	}
	rows, err := db.admin.Query(ctx, `SELECT `+tenantColumns+` FROM bulkhead_control.tenants
		WHERE ($1::text IS NULL OR slug = $1) AND ($2::text IS NULL OR tier = $2)
		  AND ($3 OR status <> 'offboarded') AND slug > $4
		ORDER BY slug LIMIT $5`, (*string)(f.Slug), (*string)(f.Tier), f.WithGone, string(f.After), f.Limit)
	if err != nil {
		return nil, Translate(err)
	}
	defer rows.Close()
	var out []*tenant.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, Translate(rows.Err())
}

// SetTenantStatus suspends or reactivates a tenant. A suspended tenant's
// contexts stop verifying at the next statement.
func (db *DB) SetTenantStatus(ctx context.Context, id tenant.ID, s tenant.Status) (err error) {
	defer fault.Wrap(&err, "postgres.SetTenantStatus(%s)", id)
	return db.UpdateTenant(ctx, id, TenantUpdate{Status: s})
}

// SetTenantPlan moves a tenant to another plan. The plan bounds what its
// users may do (its template) and sets its limits; contexts issued before
// the change keep the commands they carry until they expire.
func (db *DB) SetTenantPlan(ctx context.Context, id tenant.ID, plan string) (err error) {
	defer fault.Wrap(&err, "postgres.SetTenantPlan(%s)", id)
	return db.UpdateTenant(ctx, id, TenantUpdate{Plan: plan})
}

// TenantUpdate is a change to a tenant: its status, its plan, or both.
// An empty field is left as it is.
type TenantUpdate struct {
	Status tenant.Status
	Plan   string
}

// ErrNoUpdate refuses a change that changes nothing.
var ErrNoUpdate = fault.E(fault.Invalid, "invalid_body", `Give a "status", a "plan", or both.`)

// Valid checks the change before anything is written.
func (u TenantUpdate) Valid() error {
	if u.Status == "" && u.Plan == "" {
		return ErrNoUpdate
	}
	if u.Status != "" && u.Status != tenant.Active && u.Status != tenant.Suspended {
		return fault.E(fault.Invalid, "invalid_status", `The status must be "active" or "suspended".`)
	}
	if u.Plan != "" && u.Plan != "basic" && u.Plan != "premium" {
		return fault.E(fault.Invalid, "invalid_plan", `The plan must be "basic" or "premium".`)
	}
	return nil
}

// UpdateTenant applies u to a tenant that is active or suspended, in one
// transaction with its audit event (action tenants:Update; the detail
// names what was set, and the plan before it when the plan is set).
// Setting what the tenant already has is not an error. A moving tenant
// gets ErrMoving, an offboarded or unknown one ErrNotFound.
func (db *DB) UpdateTenant(ctx context.Context, id tenant.ID, u TenantUpdate) (err error) {
	defer fault.Wrap(&err, "postgres.UpdateTenant(%s)", id)
	if err := u.Valid(); err != nil {
		return err
	}
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		var slug, status, plan string
		err := tx.QueryRow(ctx, `SELECT slug, status, plan FROM bulkhead_control.tenants WHERE id = $1 FOR UPDATE`, string(id)).Scan(&slug, &status, &plan)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenant.ErrNotFound
		}
		if err != nil {
			return err
		}
		switch tenant.Status(status) {
		case tenant.Active, tenant.Suspended:
		case tenant.Moving:
			// A moving tenant exists and is active again in seconds: say
			// so, rather than that it does not exist.
			return tenant.ErrMoving
		default:
			return tenant.ErrNotFound
		}
		detail := map[string]string{}
		if u.Status != "" {
			status = string(u.Status)
			detail["status"] = status
		}
		if u.Plan != "" {
			detail["plan"], detail["plan_before"] = u.Plan, plan
			plan = u.Plan
		}
		if _, err := tx.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = $2, plan = $3 WHERE id = $1`, string(id), status, plan); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "tenants:Update", controlResource(string(id), policy.KindTenant, string(id)), string(id), slug, detail)
	})
	return Translate(err)
}

// OffboardRecord is the signed record left when a tenant is offboarded.
type OffboardRecord struct {
	TenantID      tenant.ID        `json:"tenant_id"`
	Slug          tenant.Slug      `json:"slug"`
	Tier          tenant.Tier      `json:"tier"`
	DeletedRows   map[string]int64 `json:"deleted_rows"`
	DroppedSchema string           `json:"dropped_schema,omitempty"`
	DeletedUsers  int64            `json:"deleted_users"`
	// DeletedPolicies counts the tenant's policy documents, which its
	// admins wrote and which may name its addresses, users or data.
	DeletedPolicies int64     `json:"deleted_policies"`
	At              time.Time `json:"at"`
	Remains         []string  `json:"remains"`
}

// offboardDrain bounds how long offboarding waits for transactions that
// began before it (the watchdog ends one idle in a transaction after 30 s).
const offboardDrain = 35 * time.Second

// drainOlderTransactions waits, at most max, until no other client backend
// of this database is in a transaction that began before now, and returns
// how many still are. Without a superuser (or pg_read_all_stats) admin,
// other roles' transactions are not visible and it does not wait for them.
func (db *DB) drainOlderTransactions(ctx context.Context, max time.Duration) (int, error) {
	var mark time.Time
	if err := db.admin.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&mark); err != nil {
		return 0, err
	}
	return db.drainSince(ctx, mark, max)
}

// olderTransactionsSQL counts the other client backends of this database,
// logged in as an app role, in a transaction that began before $1. Only
// app roles (members of bulkhead_app; pg_has_role counts a superuser a
// member of every role, so superusers are left out) write tenant rows
// under a context, as the tenant tables' policies name bulkhead_app; a
// backup's, a monitor's or an operator's session does not hold up an
// offboarding or a move. In a transaction, the first read of
// pg_stat_activity fixes what later reads see.
const olderTransactionsSQL = `SELECT count(*) FROM pg_stat_activity
	WHERE datname = current_database() AND backend_type = 'client backend'
	  AND pid <> pg_backend_pid() AND xact_start < $1
	  AND usesysid IS NOT NULL AND pg_has_role(usesysid, 'bulkhead_app', 'MEMBER')
	  AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = usesysid)`

// drainSince waits, at most max, until no other client backend of this
// database is in a transaction that began before mark, and returns how
// many still are.
func (db *DB) drainSince(ctx context.Context, mark time.Time, max time.Duration) (int, error) {
	deadline := time.Now().Add(max)
	for {
		var n int
		if err := db.admin.QueryRow(ctx, olderTransactionsSQL, mark).Scan(&n); err != nil {
			return 0, err
		}
		if n == 0 || time.Now().After(deadline) {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// OffboardTenant removes a tenant, in this order: mark it offboarding (its
// contexts stop verifying at the next statement, its tokens stop working);
// wait for transactions that began before the mark to end (a row one of
// them writes would otherwise commit after the deletion);
// delete every row of every table with a tenant_id column in the pool as
// bulkhead_maint (under FORCE the owner's DELETE silently deletes nothing);
// count again and refuse to go on unless zero rows remain; drop the silo
// schema; delete its users; mark it offboarded, keeping the slug as a
// tombstone that is never reused; write a signed record of what still
// exists elsewhere. The second step commits as one transaction, so a crash
// leaves the tenant "offboarding" and a retry resumes.
func (db *DB) OffboardTenant(ctx context.Context, id tenant.ID) (rec *OffboardRecord, err error) {
	defer fault.Wrap(&err, "postgres.OffboardTenant(%s)", id)
	// The key that signs the record first: without one, nothing changes.
	key, err := db.SigningKey(ctx, KeyRecord)
	if err != nil {
		return nil, err
	}
	// Isolation: a silo tenant's schema is the one named by its own UUID,
	// never whatever the catalog's placement says (which could be another
	// tenant's). A catalog that disagrees was changed by hand: refuse
	// before anything changes, rather than skip the drop and leave the
	// tenant's schema and rows behind a tenant marked offboarded.
	var canonical, tier, placement string
	err = db.admin.QueryRow(ctx, `SELECT id::text, tier, placement FROM bulkhead_control.tenants WHERE id = $1`, string(id)).Scan(&canonical, &tier, &placement)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenant.ErrNotFound
	}
	if err != nil {
		return nil, Translate(err)
	}
	if own := tenant.ID(canonical).SchemaName(); tier == string(tenant.Silo) && placement != own {
		return nil, fmt.Errorf("silo tenant's placement %q is not its schema %q: the catalog was changed; refusing to offboard", placement, own)
	}
	// The deletion and its count of what remains go by what bulkhead_maint
	// sees: if it cannot see every row, both would say "nothing left".
	err = pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error { return checkMaintSees(ctx, tx, PoolSchema) })
	if err != nil {
		return nil, Translate(err)
	}
	t, err := scanTenant(db.admin.QueryRow(ctx, `UPDATE bulkhead_control.tenants SET status = 'offboarding', move_to = NULL
		WHERE id = $1 AND status <> 'offboarded' RETURNING `+tenantColumns, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tenant.ErrNotFound
	}
	if err != nil {
		return nil, Translate(err)
	}
	rec = &OffboardRecord{TenantID: t.ID, Slug: t.Slug, Tier: t.Tier, DeletedRows: map[string]int64{}, At: db.now().UTC()}
	// A statement that began before the tenant was marked verified its
	// context then, and its transaction may still commit a row after the
	// deletion below, which cannot see it uncommitted. Wait for every
	// transaction older than the mark to end first.
	left, err := db.drainOlderTransactions(ctx, offboardDrain)
	if err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_maint`); err != nil {
			return err
		}
		tables, err := tenantTablesIn(ctx, tx, PoolSchema)
		if err != nil {
			return err
		}
		// Children first would be needed without ON DELETE CASCADE; deleting
		// in reverse dependency order is correct either way.
		for i := len(tables) - 1; i >= 0; i-- {
			qt := quoteIdent(PoolSchema) + "." + quoteIdent(tables[i])
			tag, err := tx.Exec(ctx, `DELETE FROM `+qt+` WHERE tenant_id = $1`, string(t.ID))
			if err != nil {
				return fmt.Errorf("delete from %s: %w", qt, err)
			}
			rec.DeletedRows[PoolSchema+"."+tables[i]] += tag.RowsAffected()
		}
		for _, tb := range tables {
			var n int64
			qt := quoteIdent(PoolSchema) + "." + quoteIdent(tb)
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+qt+` WHERE tenant_id = $1`, string(t.ID)).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("offboarding %s: %d rows remain in %s after delete", t.ID, n, qt)
			}
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
			return err
		}
		if t.Tier == tenant.Silo && t.Placement != t.ID.SchemaName() {
			return fmt.Errorf("silo tenant's placement %q is not its schema", t.Placement)
		}
		// The tenant's silo, also when the catalog no longer places it
		// there: a move into the pool that stopped before its last step
		// leaves the old silo behind.
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, t.ID.SchemaName()).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			if _, err := tx.Exec(ctx, `DROP SCHEMA `+quoteIdent(t.ID.SchemaName())+` CASCADE`); err != nil {
				return err
			}
		}
		if n > 0 || (t.Tier == tenant.Silo && t.Placement == t.ID.SchemaName()) {
			rec.DroppedSchema = t.ID.SchemaName()
		}
		tag, err := tx.Exec(ctx, `DELETE FROM bulkhead_control.users WHERE tenant_id = $1`, string(t.ID))
		if err != nil {
			return err
		}
		rec.DeletedUsers = tag.RowsAffected()
		tag, err = tx.Exec(ctx, `DELETE FROM bulkhead_control.policies WHERE tenant_id = $1`, string(t.ID))
		if err != nil {
			return err
		}
		rec.DeletedPolicies = tag.RowsAffected()
		rec.Remains = []string{
			"WAL segments and base backups taken before " + rec.At.Format(time.RFC3339) + " still hold the tenant's rows until they age out of retention",
			"the tenant's catalog row remains as a tombstone (slug, UUID, dates) so the slug is never reused",
			"server logs may name the tenant's slug and UUID until they are rotated",
			"the audit trail keeps the tenant's events until bulkhead audit prune removes them",
		}
		if left > 0 {
			rec.Remains = append(rec.Remains, fmt.Sprintf("%d transactions that began before the offboarding were still open after %s; a row one of them commits later is not deleted (run the offboarding again)", left, offboardDrain))
		}
		body, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		h := hmac.New(sha256.New, key.Secret)
		h.Write(body)
		sig := base64.RawURLEncoding.EncodeToString(h.Sum(nil))
		if _, err := tx.Exec(ctx, `INSERT INTO bulkhead_control.offboard_records (tenant_id, record, kid, signature)
			VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE SET record = EXCLUDED.record, kid = EXCLUDED.kid, signature = EXCLUDED.signature`,
			string(t.ID), body, key.ID, sig); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'offboarded', offboarded_at = now() WHERE id = $1`, string(t.ID)); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "tenants:Delete", controlResource(string(t.ID), policy.KindTenant, string(t.ID)), string(t.ID), string(t.Slug), rec)
	})
	if err != nil {
		return nil, Translate(err)
	}
	// Statistics of the pool tables still describe the deleted rows (planner
	// estimates are a frequency oracle): refresh them.
	for _, tb := range TenantTableNames {
		if _, err := db.admin.Exec(ctx, `ANALYZE `+quoteIdent(PoolSchema)+`.`+quoteIdent(tb)); err != nil {
			db.log.WarnContext(ctx, "analyze after offboarding failed", "table", tb, "err", err)
		}
	}
	return rec, nil
}

// tenantTablesIn lists the tables of schema that have a tenant_id column,
// in creation order.
func tenantTablesIn(ctx context.Context, tx pgx.Tx, schema string) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.oid`, schema)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
