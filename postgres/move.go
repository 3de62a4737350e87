package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// MoveOptions tune MoveTenant.
type MoveOptions struct {
	// Settle is how long a move keeps the tenant stopped, counted from
	// the moment it stopped, before it makes the tenant active in its new
	// place. Contexts issued before Settle less MoveClockSkew has passed
	// since the stop are refused from then on, so Settle must be at least
	// MoveClockSkew longer than every minter's tenant cache
	// (bulkhead.Config.TenantCacheTTL, 2 s by default): no minter still
	// routes the tenant to its old place, and a minter whose clock is
	// behind by up to MoveClockSkew still has its new contexts accepted.
	// Zero means DefaultMoveSettle.
	Settle time.Duration
	// Progress, if set, is told each step as it starts.
	Progress func(step string)
	// LockTimeout bounds how long the copy and the removal of the old copy
	// wait for a lock on a table: any app role may lock a pool table, or
	// another tenant's silo, for as long as its transaction lasts. Zero
	// means DefaultMoveLockTimeout.
	LockTimeout time.Duration
	// Drain bounds the wait for transactions that began before the tenant
	// stopped; zero means 35 s (the watchdog ends a transaction idle for
	// 30 s). A move that still finds one open is undone
	// (older_transactions): such a transaction may still see the tenant
	// active and commit a row the copy does not hold.
	Drain time.Duration
}

// DefaultMoveSettle is MoveOptions.Settle's default.
const DefaultMoveSettle = 5 * time.Second

// MoveClockSkew is how far behind the mover's clock a minter's may be:
// contexts it issues right after a move are still accepted.
const MoveClockSkew = 2 * time.Second

// DefaultMoveLockTimeout is MoveOptions.LockTimeout's default.
const DefaultMoveLockTimeout = 5 * time.Second

// MoveReport says what MoveTenant did.
type MoveReport struct {
	TenantID tenant.ID   `json:"tenant_id"`
	Slug     tenant.Slug `json:"slug"`
	From     tenant.Tier `json:"from"`
	To       tenant.Tier `json:"to"`
	// Placement is where the tenant lives now: "pool" or its silo schema.
	Placement string `json:"placement"`
	// Moved is false when the tenant was already on the tier asked for.
	Moved bool `json:"moved"`
	// Resumed is true when this call finished a move that had stopped
	// half-way.
	Resumed bool `json:"resumed"`
	// Copied counts the rows copied into the new place, per table; each
	// table's copy was compared with its source, row for row.
	Copied map[string]int64 `json:"copied_rows"`
	// Removed counts the rows deleted from the pool after a move into a
	// silo; DroppedSchema names the silo dropped after a move into the
	// pool.
	Removed       map[string]int64 `json:"removed_rows,omitempty"`
	DroppedSchema string           `json:"dropped_schema,omitempty"`
}

// MoveTenant moves an active tenant between the pool and a silo of its
// own, in four steps:
//
//  1. stop: the tenant's status becomes "moving" and the catalog records
//     where it is going. Its contexts stop verifying at their next
//     statement (the verifier accepts only active tenants) and its tokens
//     stop working, so nothing writes to either copy of its data; then the
//     move waits for transactions that began before that (as offboarding
//     does);
//  2. copy, in one transaction, only once no transaction that began
//     before the stop is open (else the move is undone): make the silo
//     (when moving into one), copy every row of the tenant tables as
//     bulkhead_maint, compare each table's copy with its source row for
//     row (EXCEPT ALL both ways), and point the catalog at the new place.
//     Either all of it commits or none;
//  3. settle: wait until Settle has passed since step 1, so that no minter
//     still holds the tenant's old place in its cache;
//  4. finish, in one transaction: remove the old copy (delete the pool
//     rows as bulkhead_maint and check that none remain, or drop the old
//     silo), and make the tenant active again, refusing every context
//     issued before Settle less MoveClockSkew after the stop
//     (contexts_from): one minted before the move, or by a minter whose
//     cache had not yet seen it, carries the old place.
//
// A move that stopped (a crash, a cancelled context) leaves the tenant
// "moving", with the catalog saying where it was going and which place
// holds its data; calling MoveTenant again with the same tier resumes it.
// The tenant is unavailable to its users from step 1 to step 4: seconds,
// plus the copy.
//
// Only bulkhead's tenant tables move. A move refuses, and changes nothing,
// when another table with a tenant_id column holds the tenant's rows, when
// the destination already holds rows of the tenant (its own code wrote them
// there), when its silo is on an older tenant-table version than this
// release (run MigrateSilos first), or when the admin role cannot see other
// roles' transactions (grant it pg_monitor), which it must wait for.
func (db *DB) MoveTenant(ctx context.Context, id tenant.ID, to tenant.Tier, o MoveOptions) (rep *MoveReport, err error) {
	defer fault.Wrap(&err, "postgres.MoveTenant(%s, %s)", id, to)
	if !to.Valid() {
		return nil, fault.E(fault.Invalid, "invalid_tier", `The tier must be "pool" or "silo".`)
	}
	if o.Settle <= 0 {
		o.Settle = DefaultMoveSettle
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultMoveLockTimeout
	}
	if o.Drain <= 0 {
		o.Drain = offboardDrain
	}
	step := func(s string) {
		if o.Progress != nil {
			o.Progress(s)
		}
	}
	rep = &MoveReport{TenantID: id, To: to, Copied: map[string]int64{}}

	// 1. Stop the tenant, or find the move to resume.
	step("stopping the tenant")
	var done bool
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		var slug, tier, status, placement string
		var moveTo *string
		err := tx.QueryRow(ctx, `SELECT slug, tier, status, placement, move_to FROM bulkhead_control.tenants WHERE id = $1 FOR UPDATE`,
			string(id)).Scan(&slug, &tier, &status, &placement, &moveTo)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenant.ErrNotFound
		}
		if err != nil {
			return err
		}
		rep.Slug, rep.From, rep.Placement = tenant.Slug(slug), tenant.Tier(tier), placement
		switch {
		case tenant.Status(status) == tenant.Moving && moveTo != nil && *moveTo == string(to):
			rep.Resumed, rep.From = true, otherTier(to)
			return nil
		case tenant.Status(status) == tenant.Moving && moveTo != nil:
			return fault.Errorf(fault.Conflict, "move_in_progress", "The tenant is being moved to %s; move it to %s again to finish that move first.", *moveTo, *moveTo)
		case tenant.Status(status) != tenant.Active:
			return fault.Errorf(fault.Conflict, "tenant_not_active", "Only an active tenant can be moved; this one is %s.", status)
		case tenant.Tier(tier) == to:
			done = true
			return nil
		}
		// Isolation: a transaction that began before the stop may still
		// write the tenant's rows; the move must see every one of them.
		var sees bool
		if err := tx.QueryRow(ctx, `SELECT has_table_privilege(session_user, 'pg_catalog.pg_stat_activity', 'SELECT')
			AND pg_has_role(session_user, 'pg_read_all_stats', 'USAGE')`).Scan(&sees); err != nil {
			return err
		}
		if !sees {
			return fault.E(fault.Conflict, "move_blind", "The admin role cannot see other roles' transactions, which a move must wait for; grant it pg_monitor.")
		}
		// The checks the copy makes again under its lock, first here: a
		// move refused for them changes nothing, not even the status.
		if err := checkMove(ctx, tx, id, to, placement); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'moving', move_to = $2 WHERE id = $1`, string(id), string(to)); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "tenants:Move", controlResource(string(id), policy.KindTenant, string(id)), string(id), slug,
			map[string]string{"step": "stopped", "from": tier, "to": string(to)})
	})
	if err != nil {
		return nil, Translate(err)
	}
	if done {
		return rep, nil
	}
	rep.Moved = true
	step("waiting for transactions that began before the stop")
	var mark time.Time // after the stop committed, by the database's clock
	if err := db.admin.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&mark); err != nil {
		return nil, Translate(err)
	}
	stopped := time.Now() // no earlier than mark: the settling ends after mark + Settle
	if _, err = db.drainSince(ctx, mark, o.Drain); err != nil {
		return nil, Translate(err)
	}

	// 2. Copy, compare and point the catalog at the new place.
	target := "pool"
	if to == tenant.Silo {
		target = id.SchemaName()
	}
	step("copying the tenant's rows")
	if err := db.moveCopy(ctx, id, to, target, mark, o.Drain, o.LockTimeout, rep); err != nil {
		// The copy rolled back: the tenant's data and the catalog are as
		// they were, so it resumes where it is, unless the copy did commit
		// (a connection lost at COMMIT), which abandonMove sees.
		if aerr := db.abandonMove(ctx, id, to, rep); aerr != nil {
			db.log.WarnContext(ctx, "a move that failed could not be abandoned; run it again to finish it", "tenant_id", string(id), "err", aerr)
		}
		return nil, lockTimeout(err, o.LockTimeout, "the move was undone and the tenant is active where it was; try again")
	}
	rep.Placement = target

	// 3. Let every minter's cache forget the old place.
	wait := max(0, time.Until(stopped.Add(o.Settle)))
	step(fmt.Sprintf("letting the servers' caches settle (%s)", wait.Round(time.Millisecond)))
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(wait):
	}

	// 4. Remove the old copy and make the tenant active again.
	step("removing the old copy and resuming the tenant")
	// Isolation: contexts_from is on the database's clock (mark), which
	// the verifier goes by, not this host's: an operator's clock behind
	// would let a context minted for the old place through, one ahead
	// would refuse the tenant's fresh contexts. MoveClockSkew leaves room
	// for minters whose clocks are behind the database's.
	if err := db.moveFinish(ctx, id, to, target, mark.Add(o.Settle-MoveClockSkew), o.LockTimeout, rep); err != nil {
		return nil, lockTimeout(err, o.LockTimeout, "the tenant is left moving, its rows whole in the new place; run the same move again to finish it")
	}
	if to == tenant.Silo {
		// Statistics of the pool tables still describe the removed rows.
		for _, tb := range TenantTableNames {
			if _, err := db.admin.Exec(ctx, `ANALYZE `+quoteIdent(PoolSchema)+`.`+quoteIdent(tb)); err != nil {
				db.log.WarnContext(ctx, "analyze after a move failed", "table", tb, "err", err)
			}
		}
	}
	return rep, nil
}

// lockMoving begins a step of a move in tx: it bounds the step's lock
// waits by lockWait, takes the owner's role, locks the catalog row of a
// tenant that is moving to to, and returns its placement. Isolation:
// whatever happened since the move began (an offboarding, another move),
// the step that follows runs only on a tenant still moving there.
func lockMoving(ctx context.Context, tx pgx.Tx, id tenant.ID, to tenant.Tier, lockWait time.Duration) (placement string, err error) {
	if err := setLockTimeout(ctx, tx, lockWait); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
		return "", err
	}
	var status string
	var moveTo *string
	err = tx.QueryRow(ctx, `SELECT status, move_to, placement FROM bulkhead_control.tenants WHERE id = $1 FOR UPDATE`,
		string(id)).Scan(&status, &moveTo, &placement)
	if err != nil {
		return "", err
	}
	if tenant.Status(status) != tenant.Moving || moveTo == nil || *moveTo != string(to) {
		return "", fault.Errorf(fault.Conflict, "move_changed", "The tenant is no longer moving to %s (it is %s).", to, status)
	}
	return placement, nil
}

// moveCopy is step 2 of MoveTenant, one transaction. A tenant whose
// catalog already points at target was copied by an earlier call. It
// refuses while a transaction that began before mark is open.
func (db *DB) moveCopy(ctx context.Context, id tenant.ID, to tenant.Tier, target string, mark time.Time, drain, lockWait time.Duration, rep *MoveReport) error {
	return pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		placement, err := lockMoving(ctx, tx, id, to, lockWait)
		if err != nil {
			return err
		}
		if placement == target {
			return nil
		}
		// Isolation: a transaction that began before the stop (a long
		// statement, or one at REPEATABLE READ) still sees the tenant
		// active and may write its rows in the old place; committed after
		// the copy, such a row would be removed with the old copy, or left
		// there. None may be open when the copy reads its source (counted
		// as the admin role, which sees every role's transactions, before
		// the copy's first read: none can begin later).
		if _, err := tx.Exec(ctx, `RESET ROLE`); err != nil {
			return err
		}
		var older int
		if err := tx.QueryRow(ctx, olderTransactionsSQL, mark).Scan(&older); err != nil {
			return err
		}
		if older > 0 {
			what := fmt.Sprintf("%d transactions that began before the move stopped the tenant were", older)
			if older == 1 {
				what = "A transaction that began before the move stopped the tenant was"
			}
			return fault.Errorf(fault.Unavailable, "older_transactions",
				"%s still open after %s (a long transaction, or the tenant's own code holding one); the move was undone and the tenant is active where it was; try again.", what, drain)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
			return err
		}
		if err := checkMove(ctx, tx, id, to, placement); err != nil {
			return err
		}
		src, dst := PoolSchema, id.SchemaName()
		if to == tenant.Pool {
			src, dst = placement, PoolSchema
		} else {
			if err := createSilo(ctx, tx, id); err != nil {
				return err
			}
			// The new silo is this transaction's alone until it commits:
			// bulkhead_maint may fill it, and loses the grant before then.
			for _, tb := range TenantTableNames {
				if _, err := tx.Exec(ctx, `GRANT INSERT ON `+quoteIdent(dst)+`.`+quoteIdent(tb)+` TO bulkhead_maint`); err != nil {
					return err
				}
			}
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_maint`); err != nil {
			return err
		}
		for _, tb := range TenantTableNames {
			cols, err := tableColumns(ctx, tx, dst, tb)
			if err != nil {
				return err
			}
			from, into := quoteIdent(src)+"."+quoteIdent(tb), quoteIdent(dst)+"."+quoteIdent(tb)
			tag, err := tx.Exec(ctx, `INSERT INTO `+into+` (`+cols+`) SELECT `+cols+` FROM `+from+` WHERE tenant_id = $1`, string(id))
			if err != nil {
				return fmt.Errorf("copy %s into %s: %w", from, into, err)
			}
			rep.Copied[tb] = tag.RowsAffected()
			var missing, extra int64
			if err := tx.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM (SELECT `+cols+` FROM `+from+` WHERE tenant_id = $1 EXCEPT ALL SELECT `+cols+` FROM `+into+` WHERE tenant_id = $1) d),
				(SELECT count(*) FROM (SELECT `+cols+` FROM `+into+` WHERE tenant_id = $1 EXCEPT ALL SELECT `+cols+` FROM `+from+` WHERE tenant_id = $1) d)`,
				string(id)).Scan(&missing, &extra); err != nil {
				return fmt.Errorf("compare %s with %s: %w", into, from, err)
			}
			if missing != 0 || extra != 0 {
				return fmt.Errorf("the copy of %s differs from its source (%d rows missing, %d extra); nothing was moved", from, missing, extra)
			}
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
			return err
		}
		if to == tenant.Silo {
			for _, tb := range TenantTableNames {
				if _, err := tx.Exec(ctx, `REVOKE INSERT ON `+quoteIdent(dst)+`.`+quoteIdent(tb)+` FROM bulkhead_maint`); err != nil {
					return err
				}
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE bulkhead_control.tenants SET tier = $2, placement = $3,
			schema_version = CASE WHEN $2 = 'silo' THEN $4 ELSE schema_version END WHERE id = $1`,
			string(id), string(to), target, TenantSchemaVersion); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "tenants:Move", controlResource(string(id), policy.KindTenant, string(id)), string(id), string(rep.Slug),
			map[string]any{"step": "copied", "to": string(to), "placement": target, "copied_rows": rep.Copied})
	})
}

// checkMove refuses a move of the tenant at placement to the tier to
// that would leave rows of the tenant behind, mix them with rows already
// at the destination, or copy a silo whose tables are older than this
// release's. It runs as the owner and reads the tenant tables as
// bulkhead_maint, and returns to the owner.
func checkMove(ctx context.Context, tx pgx.Tx, id tenant.ID, to tenant.Tier, placement string) error {
	src, dst := PoolSchema, id.SchemaName()
	if to == tenant.Pool {
		src, dst = placement, PoolSchema
		var version int
		if err := tx.QueryRow(ctx, `SELECT schema_version FROM bulkhead_control.tenants WHERE id = $1`, string(id)).Scan(&version); err != nil {
			return err
		}
		if version != TenantSchemaVersion {
			return fault.Errorf(fault.Conflict, "silo_behind", "The tenant's silo is on tenant-table version %d, this release's is %d; run bulkhead migrate first.", version, TenantSchemaVersion)
		}
	} else {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, dst).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fault.Errorf(fault.Conflict, "schema_exists", "A schema named %s already exists and bulkhead does not adopt schemas it did not make; drop it or rename it first.", dst)
		}
	}
	if err := checkMaintSees(ctx, tx, src); err != nil {
		return err
	}
	if dst == PoolSchema {
		if err := checkMaintSees(ctx, tx, dst); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_maint`); err != nil {
		return err
	}
	if err := checkRows(ctx, tx, id, src, dst); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_owner`)
	return err
}

// checkRows refuses a move that would leave rows of the tenant behind in
// src or mix them with rows already in dst (when it exists).
func checkRows(ctx context.Context, tx pgx.Tx, id tenant.ID, src, dst string) error {
	tables, err := tenantTablesIn(ctx, tx, src)
	if err != nil {
		return err
	}
	for _, tb := range tables {
		if slices.Contains(TenantTableNames, tb) {
			continue
		}
		var n int64
		qt := quoteIdent(src) + "." + quoteIdent(tb)
		var readable bool
		if err := tx.QueryRow(ctx, `SELECT has_table_privilege('bulkhead_maint', $1::regclass, 'SELECT')`, qt).Scan(&readable); err != nil {
			return err
		}
		if !readable {
			return fault.Errorf(fault.Conflict, "unmovable_rows", "%s.%s has a tenant_id column and bulkhead_maint may not read it, so the move cannot tell whether the tenant has rows there; grant bulkhead_maint SELECT on it.", src, tb)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+qt+` WHERE tenant_id = $1`, string(id)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fault.Errorf(fault.Conflict, "unmovable_rows", "%s.%s holds %d rows of the tenant, and only bulkhead's tenant tables (%s) move; move or delete those rows first.", src, tb, n, strings.Join(TenantTableNames, ", "))
		}
	}
	if dst != PoolSchema {
		return nil // a silo that does not exist yet
	}
	for _, tb := range TenantTableNames {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+quoteIdent(dst)+`.`+quoteIdent(tb)+` WHERE tenant_id = $1`, string(id)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fault.Errorf(fault.Conflict, "rows_at_destination", "%s.%s already holds %d rows of the tenant (written there by its own code); delete them before the move.", dst, tb, n)
		}
	}
	return nil
}

// tableColumns lists the columns of schema.table, quoted, in order.
func tableColumns(ctx context.Context, tx pgx.Tx, schema, table string) (string, error) {
	rows, err := tx.Query(ctx, `SELECT quote_ident(a.attname) FROM pg_attribute a
		WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, schema, table)
	if err != nil {
		return "", err
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	return strings.Join(cols, ", "), nil
}

// moveFinish is step 4 of MoveTenant, one transaction.
func (db *DB) moveFinish(ctx context.Context, id tenant.ID, to tenant.Tier, target string, contextsFrom time.Time, lockWait time.Duration, rep *MoveReport) error {
	return pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		placement, err := lockMoving(ctx, tx, id, to, lockWait)
		if err != nil {
			return err
		}
		if placement != target {
			return fmt.Errorf("the catalog places the tenant in %s, not %s", placement, target)
		}
		if to == tenant.Silo {
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_maint`); err != nil {
				return err
			}
			rep.Removed = map[string]int64{}
			for i := len(TenantTableNames) - 1; i >= 0; i-- {
				qt := quoteIdent(PoolSchema) + "." + quoteIdent(TenantTableNames[i])
				tag, err := tx.Exec(ctx, `DELETE FROM `+qt+` WHERE tenant_id = $1`, string(id))
				if err != nil {
					return fmt.Errorf("delete from %s: %w", qt, err)
				}
				rep.Removed[TenantTableNames[i]] = tag.RowsAffected()
			}
			tables, err := tenantTablesIn(ctx, tx, PoolSchema)
			if err != nil {
				return err
			}
			for _, tb := range tables {
				var n int64
				qt := quoteIdent(PoolSchema) + "." + quoteIdent(tb)
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+qt+` WHERE tenant_id = $1`, string(id)).Scan(&n); err != nil {
					return err
				}
				if n != 0 {
					return fmt.Errorf("%d rows of the tenant remain in %s after the delete", n, qt)
				}
			}
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
				return err
			}
		} else {
			old := id.SchemaName()
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, old).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				if _, err := tx.Exec(ctx, `DROP SCHEMA `+quoteIdent(old)+` CASCADE`); err != nil {
					return err
				}
				rep.DroppedSchema = old
			}
		}
		// Contexts issued before the settling ended may carry the old
		// place; whole seconds, as iat is.
		if _, err := tx.Exec(ctx, `UPDATE bulkhead_control.tenants SET status = 'active', move_to = NULL,
			contexts_from = date_trunc('second', $2::timestamptz) WHERE id = $1`, string(id), contextsFrom); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "tenants:Move", controlResource(string(id), policy.KindTenant, string(id)), string(id), string(rep.Slug),
			map[string]any{"step": "done", "to": string(to), "placement": target, "removed_rows": rep.Removed, "dropped_schema": rep.DroppedSchema})
	})
}

// otherTier is the tier that is not t.
func otherTier(t tenant.Tier) tenant.Tier {
	if t == tenant.Pool {
		return tenant.Silo
	}
	return tenant.Pool
}

// abandonMove makes a tenant whose copy failed active again where it was,
// if the catalog still places it there (the copy did not commit).
func (db *DB) abandonMove(ctx context.Context, id tenant.ID, to tenant.Tier, rep *MoveReport) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return db.ownerTx(ctx, func(tx pgx.Tx) error {
		var slug string
		err := tx.QueryRow(ctx, `UPDATE bulkhead_control.tenants SET status = 'active', move_to = NULL
			WHERE id = $1 AND status = 'moving' AND move_to = $2 AND tier <> $2 RETURNING slug`, string(id), string(to)).Scan(&slug)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // the copy committed, or someone else changed the tenant
		}
		if err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "tenants:Move", controlResource(string(id), policy.KindTenant, string(id)), string(id), slug,
			map[string]string{"step": "abandoned", "to": string(to)})
	})
}

// setLockTimeout bounds, for the rest of tx, how long a statement waits
// for a lock.
func setLockTimeout(ctx context.Context, tx pgx.Tx, d time.Duration) error {
	_, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('lock_timeout', $1, true)`, strconv.FormatInt(max(1, d.Milliseconds()), 10))
	return err
}

// lockTimeout turns a lock wait that ran out into an error that says so
// and what became of the tenant (then), and translates any other.
func lockTimeout(err error, d time.Duration, then string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55P03" {
		return &fault.Error{Kind: fault.Unavailable, Code: "lock_timeout",
			Message: fmt.Sprintf("A table the move needs stayed locked for more than %s (a long transaction, or a tenant's code holding a lock; the watchdog ends those); %s.", d, then), Err: err}
	}
	return Translate(err)
}
