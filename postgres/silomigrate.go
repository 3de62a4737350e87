package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// MigrateOptions tune MigrateSilos.
type MigrateOptions struct {
	// Concurrency bounds how many silos migrate at once; zero means 4.
	Concurrency int
	// Progress, if set, is called after each silo with the counts so far.
	Progress func(done, failed, total int)
	// LockTimeout bounds how long a silo's migration waits for a lock on
	// one of its tables; zero means DefaultMigrateLockTimeout.
	LockTimeout time.Duration
}

// DefaultMigrateLockTimeout is how long a silo's migration waits for a
// lock on one of its tables before it gives up on that silo for this run.
const DefaultMigrateLockTimeout = 5 * time.Second

// MigrateReport says what MigrateSilos did.
type MigrateReport struct {
	Total    int               // silos that were behind
	Migrated int               // brought to TenantSchemaVersion
	Failed   map[string]string // slug → why, for silos left on their old version
}

// MigrateSilos brings every silo's tables to TenantSchemaVersion, several
// at once. Each silo migrates in one transaction that also records its new
// version in the catalog, so a silo is either on its old version or on the
// new one, the catalog says which, and a run that crashed resumes where it
// stopped. A silo that fails is reported and left as it was; the others go
// on.
func (db *DB) MigrateSilos(ctx context.Context, o MigrateOptions) (rep *MigrateReport, err error) {
	defer fault.Wrap(&err, "postgres.MigrateSilos")
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultMigrateLockTimeout
	}
	rows, err := db.admin.Query(ctx, `SELECT `+tenantColumns+` FROM bulkhead_control.tenants
		WHERE tier = 'silo' AND status NOT IN ('offboarding', 'offboarded') AND schema_version < $1 ORDER BY slug`, TenantSchemaVersion)
	if err != nil {
		return nil, Translate(err)
	}
	var todo []*tenant.Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		todo = append(todo, t)
	}
	rows.Close()
	rep = &MigrateReport{Total: len(todo), Failed: map[string]string{}}
	var mu sync.Mutex
	work := make(chan *tenant.Tenant)
	var wg sync.WaitGroup
	for i := 0; i < o.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range work {
				err := db.migrateSilo(ctx, t, o.LockTimeout)
				mu.Lock()
				if err != nil {
					rep.Failed[string(t.Slug)] = err.Error()
				} else {
					rep.Migrated++
				}
				if o.Progress != nil {
					o.Progress(rep.Migrated, len(rep.Failed), rep.Total)
				}
				mu.Unlock()
			}
		}()
	}
	for _, t := range todo {
		select {
		case work <- t:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

// migrateSilo applies the pending versions to one silo in one transaction.
// Isolation: the catalog row is locked first, so two migrators never work
// on one silo, and the version and status read under the lock are the
// truth: a tenant being offboarded meanwhile is left to the offboarding.
// Every lock the DDL needs is waited for at most lockTimeout: any app role
// can lock a silo's tables (it has UPDATE and DELETE on them), and a
// migration that waited for as long as another tenant's transaction held
// one would hold the locks it already had on the silo's other tables, and
// queue the silo's own traffic behind it, as long.
func (db *DB) migrateSilo(ctx context.Context, t *tenant.Tenant, lockTimeout time.Duration) error {
	return db.ownerTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_catalog.set_config('lock_timeout', $1, true)`, strconv.FormatInt(lockTimeout.Milliseconds(), 10)); err != nil {
			return err
		}
		var version int
		var placement, status string
		err := tx.QueryRow(ctx, `SELECT schema_version, placement, status FROM bulkhead_control.tenants WHERE id = $1 FOR UPDATE`, string(t.ID)).Scan(&version, &placement, &status)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenant.ErrNotFound
		}
		if err != nil {
			return err
		}
		if status == string(tenant.Offboarding) || status == string(tenant.Offboarded) {
			return fmt.Errorf("the tenant is %s: its silo is not migrated", status)
		}
		if placement != t.ID.SchemaName() {
			return fmt.Errorf("placement %q is not the tenant's silo schema", placement)
		}
		for _, m := range tenantMigrations {
			if m.Version <= version {
				continue
			}
			for _, s := range m.DDL(placement, t.ID) {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("version %d (%s): %w", m.Version, m.Name, err)
				}
			}
		}
		_, err = tx.Exec(ctx, `UPDATE bulkhead_control.tenants SET schema_version = $2 WHERE id = $1`, string(t.ID), TenantSchemaVersion)
		return err
	})
}
