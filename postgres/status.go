package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// MigrationStatus says where a database and its silos stand against this
// build: what `bulkhead migrate` would do, read without doing it.
type MigrationStatus struct {
	// SetUp is false when the database has no bulkhead catalog yet; the
	// other fields are then empty but for Pending and TenantVersion.
	SetUp bool
	// Applied lists the versioned migrations the database has, Pending
	// those of this build it has not, and Unknown those it has that this
	// build does not know (it was migrated by a newer bulkhead).
	Applied, Pending, Unknown []int64
	// TenantVersion is the tenant-table version this build brings silos to.
	TenantVersion int
	// Silos counts the silos that are not being offboarded, by
	// tenant-table version; Behind lists those below TenantVersion, by slug.
	Silos  map[int]int
	Behind []SiloVersion
}

// SiloVersion is a silo and the tenant-table version the catalog says its
// schema is on.
type SiloVersion struct {
	Slug    tenant.Slug
	Version int
}

// Current reports whether `bulkhead migrate` would have nothing to do.
func (s *MigrationStatus) Current() bool {
	return s.SetUp && len(s.Pending) == 0 && len(s.Behind) == 0
}

// Status reads, as the role of adminURL, which of this build's migrations
// the database has and which tenant-table version each silo is on. It
// changes nothing: no roles, no schemas, not even goose's version table.
func Status(ctx context.Context, adminURL string) (st *MigrationStatus, err error) {
	defer fault.Wrap(&err, "postgres.Status")
	conn, cfg, err := connectAdmin(ctx, adminURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := newProvider(db, nil)
	if err != nil {
		return nil, err
	}
	var known []int64
	for _, src := range p.ListSources() {
		known = append(known, src.Version)
	}
	st = &MigrationStatus{TenantVersion: TenantSchemaVersion, Silos: map[int]int{}}

	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, migrationsTable).Scan(&st.SetUp); err != nil {
		return nil, err
	}
	if !st.SetUp {
		st.Pending = known
		return st, nil
	}
	// goose appends a row per change; a version's latest row says whether
	// it is applied. Version 0 is goose's own starting row.
	rows, err := conn.Query(ctx, `SELECT version_id FROM (
		SELECT DISTINCT ON (version_id) version_id, is_applied FROM `+migrationsTable+`
		 ORDER BY version_id, id DESC) v
		WHERE is_applied AND version_id > 0 ORDER BY version_id`)
	if err != nil {
		return nil, Translate(err)
	}
	st.Applied, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, Translate(err)
	}
	for _, v := range known {
		if !slices.Contains(st.Applied, v) {
			st.Pending = append(st.Pending, v)
		}
	}
	for _, v := range st.Applied {
		if !slices.Contains(known, v) {
			st.Unknown = append(st.Unknown, v)
		}
	}

	var hasTenants bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('bulkhead_control.tenants') IS NOT NULL`).Scan(&hasTenants); err != nil {
		return nil, err
	}
	if !hasTenants {
		return st, nil
	}
	rows, err = conn.Query(ctx, `SELECT slug, schema_version FROM bulkhead_control.tenants
		WHERE tier = 'silo' AND status NOT IN ('offboarding', 'offboarded') ORDER BY slug`)
	if err != nil {
		return nil, Translate(err)
	}
	silos, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SiloVersion, error) {
		var s SiloVersion
		err := r.Scan(&s.Slug, &s.Version)
		return s, err
	})
	if err != nil {
		return nil, Translate(err)
	}
	for _, s := range silos {
		st.Silos[s.Version]++
		if s.Version < TenantSchemaVersion {
			st.Behind = append(st.Behind, s)
		}
	}
	return st, nil
}
